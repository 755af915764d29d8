"""refit_on_val: nothing in the refit is chosen on ratings it trains on; ensembles report out-of-sample scores."""

import numpy as np
import pytest

from qrec.models import ensemble, stage1
from qrec.models.ensemble import crossfit_folds
from qrec.pipeline import run


def _spy_stage1(monkeypatch, early_stop_at: int | None = None) -> list[dict]:
    """Record every stage-1 training: data, requested/kept epochs, epochs run, validation steps taken.

    ``early_stop_at``: a validated fit reports it kept at most this many epochs (as if early stopping had
    picked that epoch), so the test can tell "the recorded epochs" from "the configured maximum"."""
    calls: list[dict] = []
    real = stage1._train

    def spy(module, dm, epochs):
        steps = []
        original = module.validation_step
        module.validation_step = lambda *a, **k: (steps.append(1), original(*a, **k))[1]
        kept = real(module, dm, epochs)
        if early_stop_at is not None and not dm.train_on_val:
            kept = min(kept, early_stop_at)
        calls.append({"train_on_val": dm.train_on_val, "n_train": len(dm.train), "requested": epochs, "kept": kept,
                      "run": module.trainer.current_epoch, "val_steps": len(steps)})  # fmt: skip
        return kept

    monkeypatch.setattr(stage1, "_train", spy)
    return calls


def test_refit_hybrid_stage1_trains_the_recorded_epochs_without_validation(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    calls = _spy_stage1(monkeypatch, early_stop_at=2)
    cfg = make_cfg("model=als_lstm", "data=synthetic", "data.batch_size=2048", "logger=none", "trainer.max_epochs=1",
                   "refit_on_val=true", "model.base.rank=4", "model.base_epochs=4")  # fmt: skip
    run(cfg)
    first, refit = calls
    assert not first["train_on_val"] and first["val_steps"] > 0  # the first stage 1 validates (early stopping)
    assert first["kept"] == 2 < first["requested"] == 4
    assert refit["train_on_val"] and refit["n_train"] > first["n_train"]
    assert refit["requested"] == refit["run"] == first["kept"]  # exactly the validated epochs
    assert refit["val_steps"] == 0  # no validation loop on ratings it trains on


def _ensemble(make_cfg, tmp_path, monkeypatch, *extra):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    return make_cfg("model=ensemble", "data=synthetic", "data.batch_size=null", "logger=none",
                    "model.members=[bias,als]", *extra)  # fmt: skip


def test_ensemble_validation_score_is_cross_fitted_and_is_what_sweeps_get(make_cfg, tmp_path, monkeypatch):
    metrics = run(_ensemble(make_cfg, tmp_path, monkeypatch))
    assert metrics["val/rmse"] == pytest.approx(metrics["ensemble/val_rmse_crossfit"], rel=1e-5)
    assert metrics["ensemble/val_rmse_crossfit"] >= metrics["ensemble/val_rmse_in_sample"]
    assert metrics["optimized"] == metrics["val/rmse"]


def test_refit_ensemble_keeps_the_validated_weights_and_member_epochs(make_cfg, tmp_path, monkeypatch):
    calls = _spy_stage1(monkeypatch, early_stop_at=1)
    fits = []
    real_nnls = ensemble.nnls
    monkeypatch.setattr(ensemble, "nnls", lambda *a: fits.append(1) or real_nnls(*a))
    metrics = run(_ensemble(make_cfg, tmp_path, monkeypatch, "refit_on_val=true"))
    assert len(fits) == 1 + 5  # the validated fit: all-validation weights + one per fold; the refit: none
    first = [c for c in calls if not c["train_on_val"]]
    refit = [c for c in calls if c["train_on_val"]]
    assert len(first) == len(refit) == 2
    assert [c["requested"] for c in refit] == [c["kept"] for c in first] == [c["run"] for c in refit]
    assert all(c["val_steps"] == 0 for c in refit)
    # The validated fit's cross-fitted score is kept; the refit reports no validation score of its own members
    # (they trained on those ratings), so the one member/als/val_rmse is the validated fit's.
    assert metrics["val/rmse"] == pytest.approx(metrics["ensemble/val_rmse_crossfit"], rel=1e-5)
    assert metrics["member/als/weight"] > 0


def test_crossfit_folds_are_seeded_and_keep_pairs_together():
    users, items = np.array([0, 0, 1, 1, 2, 2, 0]), np.array([1, 2, 1, 3, 0, 1, 1])
    folds = crossfit_folds(users, items, 4, 3, seed=0)
    assert folds[0] == folds[6]  # the repeated (0, 1) pair
    assert np.array_equal(folds, crossfit_folds(users, items, 4, 3, seed=0))
    assert set(folds) <= {0, 1, 2}
