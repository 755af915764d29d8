"""QuantumErrorLSTM and its ablations: leakage-free windows, stage-1 caching, fast_dev_run, bad input."""

import logging

import numpy as np
import pytest
import torch

from qrec.data import RatingsDataModule, make_synthetic_ratings
from qrec.models.components.history import UserHistory
from qrec.models.hybrid import QuantumErrorLSTMModule
from qrec.models.stage1 import fit_or_load_base
from qrec.pipeline import run

ALS_BASE = {"_target_": "qrec.models.als.ALSModule", "rank": 3}


def datamodule(seed: int = 0, split: str = "random") -> RatingsDataModule:
    dm = RatingsDataModule(lambda: make_synthetic_ratings(seed=1), split=split, seed=seed, batch_size=32,
                           with_timestamps=True)  # fmt: skip
    dm.setup()
    return dm


@pytest.mark.parametrize("split", ["random", "temporal"])
def test_history_windows_hold_only_earlier_training_ratings(split):
    dm = datamodule(split=split)
    t = dm.train
    history = UserHistory(t.users, t.items, t.ratings, t.timestamps, dm.n_users)
    train_pairs = {(int(u), int(i)): int(ts) for u, i, ts in zip(t.users, t.items, t.timestamps)}
    for part in (dm.train, dm.val, dm.test):
        items, ratings, valid = history.window(part.users, part.timestamps, 6)
        for q in range(len(part)):
            user, when = int(part.users[q]), int(part.timestamps[q])
            window = [int(i) for i, v in zip(items[q], valid[q]) if v]
            assert all(train_pairs.get((user, i), when) < when for i in window)  # train only, strictly earlier
            earlier = sorted(ts for (u, _), ts in train_pairs.items() if u == user and ts < when)
            assert len(window) == min(6, len(earlier))


def test_residual_head_trains_on_training_split_only(make_cfg, tmp_path):
    """Corrupting validation/test ratings cannot change the fitted stage 1 or the head's first steps."""
    import lightning as L

    def fit(corrupt: bool, tmp: str):
        table = make_synthetic_ratings(seed=1)
        dm = RatingsDataModule(lambda: table, batch_size=32)
        dm.setup()
        if corrupt:
            dm.val.ratings.fill_(5.0)
            dm.test.ratings.fill_(1.0)
        L.seed_everything(0)
        module = QuantumErrorLSTMModule(base=ALS_BASE, base_epochs=2, base_batch_size=None, cache_dir=tmp)
        L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                  limit_val_batches=0).fit(module, datamodule=dm)  # fmt: skip
        return module

    a, b = fit(False, str(tmp_path / "a")), fit(True, str(tmp_path / "b"))  # fresh caches: stage 1 is fitted
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        if "metrics" not in name:
            torch.testing.assert_close(x, y, msg=name)


def test_stage1_cache_hit_miss_and_corruption(tmp_path, caplog):
    dm = datamodule()
    _, cached = fit_or_load_base(ALS_BASE, dm, seed=0, epochs=2, batch_size=None, cache_dir=str(tmp_path))
    assert not cached
    model, cached = fit_or_load_base(ALS_BASE, dm, seed=0, epochs=2, batch_size=None, cache_dir=str(tmp_path))
    assert cached
    # Another seed, another config, other data: never reused.
    assert not fit_or_load_base(ALS_BASE, dm, seed=1, epochs=2, batch_size=None, cache_dir=str(tmp_path))[1]
    assert not fit_or_load_base({**ALS_BASE, "rank": 4}, dm, 0, 2, None, str(tmp_path))[1]
    assert not fit_or_load_base(ALS_BASE, datamodule(seed=5), 0, 2, None, str(tmp_path))[1]
    # A corrupt file is reported and retrained, not trusted and not fatal.
    for path in tmp_path.glob("*.pt"):
        path.write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING):
        again, cached = fit_or_load_base(ALS_BASE, dm, seed=0, epochs=2, batch_size=None, cache_dir=str(tmp_path))
    assert not cached and "unusable" in caplog.text
    torch.testing.assert_close(again.user_factors, model.user_factors)


EXTRAS = [[], ["model.history=3", "model.cell=gru"], ["model.cell=transformer", "model.loss=huber"]]


@pytest.mark.parametrize("model", ["lstm_only", "als_lstm"])
@pytest.mark.parametrize("extra", EXTRAS)
def test_fast_dev_run(make_cfg, tmp_path, monkeypatch, model, extra):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    cfg = make_cfg(f"model={model}", "data=synthetic", "data.with_timestamps=true", "trainer.fast_dev_run=true",
                   "logger=none", "model.base_epochs=1", *extra)  # fmt: skip
    metrics = run(cfg)
    assert np.isfinite(metrics["test/rmse"]) and 1 <= metrics["test/pred_min"] <= metrics["test/pred_max"] <= 5
    if model == "als_lstm":
        assert "stage1/test_rmse" in metrics


def test_joint_mode_needs_a_gradient_base(make_cfg, tmp_path):
    cfg = make_cfg("model=als_lstm", "data=synthetic", "trainer.fast_dev_run=true", "logger=none", "model.joint=true")
    with pytest.raises(ValueError, match="gradient-trained base"):
        run(cfg)


@pytest.mark.parametrize(
    ("override", "message"),
    [("model.cell=rnn", "model.cell='rnn' is unknown"), ("model.loss=l3", "model.loss='l3' is unknown"),
     ("model.history=-1", "model.history=-1 must be ≥ 0")],
)  # fmt: skip
def test_bad_options_fail_at_start(make_cfg, override, message):
    with pytest.raises(Exception, match=message):
        run(make_cfg("model=lstm_only", "data=synthetic", override))


def test_history_needs_timestamps(make_cfg):
    cfg = make_cfg("model=lstm_only", "data=synthetic", "data.with_timestamps=false", "model.history=2",
                   "trainer.fast_dev_run=true", "logger=none")  # fmt: skip
    with pytest.raises(ValueError, match="data.with_timestamps=true"):
        run(cfg)


def test_same_metrics_on_stage1_cache_miss_and_hit(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    overrides = ["model=als_lstm", "data=synthetic", "logger=none", "trainer.max_epochs=2", "model.base_epochs=2"]
    miss = run(make_cfg(*overrides))
    hit = run(make_cfg(*overrides))
    assert not miss["stage1/cached"] and hit["stage1/cached"]
    assert miss["test/rmse"] == hit["test/rmse"]


def test_history_model_falls_back_to_biases_for_unknown_users():
    import lightning as L

    dm = datamodule()
    module = QuantumErrorLSTMModule(base=None, history=3)
    L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
              limit_val_batches=0).fit(module, datamodule=dm)  # fmt: skip
    item = dm.train.items[:1]
    batch = (torch.tensor([dm.n_users, 10**6]), item.repeat(2), torch.ones(2), torch.tensor([10**9, 10**9]))
    expected = (module.mu + module.b_item[item]).clamp(1, 5).repeat(2)
    torch.testing.assert_close(module.evaluate(batch), expected)
