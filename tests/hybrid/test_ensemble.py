"""Stacked ensembles: members trained on train only, weights chosen on validation, clear errors."""

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from qrec.pipeline import run


def _run(make_cfg, tmp_path, monkeypatch, *extra):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))  # member cache
    return make_cfg("model=ensemble", "data=synthetic", "data.batch_size=null", "logger=none",
                    "model.members=[bias,als]", *extra)  # fmt: skip


def test_weights_are_nnls_on_validation_and_predictions_their_blend(make_cfg, tmp_path, monkeypatch):
    from hydra.utils import instantiate

    cfg = _run(make_cfg, tmp_path, monkeypatch)
    metrics = run(cfg)
    dm = instantiate(cfg.data)
    dm.setup()
    model = instantiate(cfg.model)
    model.attach(dm)  # members come from the cache the run filled
    val = torch.stack([m.predict_clipped(dm.val.users, dm.val.items) for m in model.members], 1)
    expected, _ = nnls(val.double().numpy(), dm.val.ratings.double().numpy())
    np.testing.assert_allclose(model.weights.numpy(), expected, rtol=1e-5)
    assert metrics["member/als/weight"] == pytest.approx(expected[1], rel=1e-5)
    test = torch.stack([m.predict_clipped(dm.test.users, dm.test.items) for m in model.members], 1)
    torch.testing.assert_close(model.predict(dm.test.users, dm.test.items), test @ model.weights)
    assert np.isfinite(metrics["test/rmse"]) and metrics["member/als/cached"] in (True, False)


def test_equal_weights(make_cfg, tmp_path, monkeypatch):
    metrics = run(_run(make_cfg, tmp_path, monkeypatch, "model.weights=equal"))
    assert metrics["member/bias/weight"] == metrics["member/als/weight"] == 0.5


@pytest.mark.parametrize(
    ("override", "message"),
    [("model.members=[als]", "at least two"), ("model.weights=mean", "model.weights='mean' is unknown")],
)
def test_bad_options_fail_at_start(make_cfg, tmp_path, monkeypatch, override, message):
    with pytest.raises(Exception, match=message):
        run(_run(make_cfg, tmp_path, monkeypatch, override))


def test_history_aware_members_are_refused(make_cfg, tmp_path, monkeypatch):
    cfg = _run(make_cfg, tmp_path, monkeypatch, "model.members=[als,lstm_only]")
    from qrec import config

    real = config.compose_model

    def with_history(name, seed):
        composed = real(name, seed)
        if name == "lstm_only":
            composed.model.history = 3
        return composed

    monkeypatch.setattr("qrec.models.ensemble.compose_model", with_history)
    with pytest.raises(ValueError, match="history-aware"):
        run(cfg)
