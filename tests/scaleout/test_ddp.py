"""DDP with 2 CPU processes (gloo): evaluation gathers every rating once, in order, and equals one process."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qrec.config import compose_config
from qrec.distributed import gather_rows
from qrec.metrics import RatingMetrics
from qrec.pipeline import run

RATING = ["model=lstm_only", "data=synthetic", "data.eval_batch_size=50", "logger=none", "trainer.max_epochs=1"]
EXACT = ("val/rmse", "val/mae", "val/pred_std", "test/rmse", "test/mae", "test/pred_min", "test/pred_max")


def test_gather_rows_drops_padding_and_restores_order():
    rows = torch.tensor([3, 0, 1, 3, 2, 0])  # two ranks' shares, the last batch padded with repeats
    values = rows.double() * 10
    got_rows, got = gather_rows(rows, values)
    assert got_rows.tolist() == [0, 1, 2, 3] and got.tolist() == [0.0, 10.0, 20.0, 30.0]


def test_rating_metrics_ignore_repeated_rows():
    preds, target = torch.rand(10) * 4 + 1, torch.randint(1, 6, (10,)).float()
    once, padded = RatingMetrics("t"), RatingMetrics("t")
    once.update(preds, target)
    for rows in (torch.tensor([5, 6, 7, 8, 9, 5]), torch.arange(5)):  # shard order and a padded repeat
        padded.update(preds[rows], target[rows], rows)
    assert {k: float(v) for k, v in padded.compute().items()} == {k: float(v) for k, v in once.compute().items()}
    assert torch.equal(padded.predictions(), preds)


def test_closed_form_model_refuses_ddp_before_training(tmp_path):
    cfg = compose_config(["model=bias", "data=synthetic", "logger=none", "trainer=ddp"], tmp_path)
    with pytest.raises(ValueError, match="closed form.*trainer.devices=1"):
        run(cfg)
    assert not (tmp_path / "metrics.json").exists()


def test_ddp_sweep_equals_one_process_and_counts_each_rating_once(tmp_path, train, metrics):
    """Inside `-m`: one sweep directory, each job's ranks in the job's directory. No training batch (job 0)
    compares the evaluation path exactly (same initial weights); job 1 trains one epoch on 2 ranks."""
    sweep = tmp_path / "sweep"
    train("-m", *RATING, "trainer=ddp", "+trainer.limit_train_batches=0,1.0", f"hydra.sweep.dir={sweep}")
    assert {p.name for p in tmp_path.iterdir()} <= {"cache", "sweep"}  # no second sweep or run directory
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert all((sweep / job / "train_ddp_process_1.log").is_file() for job in ("0", "1"))

    single = run(compose_config([*RATING, "trainer=cpu", "+trainer.limit_train_batches=0"], tmp_path / "single"))
    ddp = metrics(sweep / "0")
    for key in EXACT:
        assert ddp[key] == pytest.approx(single[key], abs=1e-6), key
    np.testing.assert_allclose(np.load(sweep / "0" / "test_predictions.npy"), np.load(tmp_path / "single" /
                               "test_predictions.npy"), atol=1e-6)  # fmt: skip

    trained = metrics(sweep / "1")
    preds, ratings = np.load(sweep / "1" / "test_predictions.npy"), np.load(sweep / "1" / "test_ratings.npy")
    assert preds.shape == ratings.shape == np.load(tmp_path / "single" / "test_ratings.npy").shape
    assert np.sqrt(np.mean((preds - ratings) ** 2)) == pytest.approx(trained["test/rmse"], abs=1e-6)


def test_two_tower_ddp_equals_one_process(tmp_path, train, metrics):
    overrides = ["model=two_tower", "data=synthetic_implicit", "data.eval_batch_size=7", "logger=none",
                 "trainer.max_epochs=1", "+trainer.limit_train_batches=0"]  # fmt: skip
    train(*overrides, "trainer=ddp", f"hydra.run.dir={tmp_path / 'ddp'}")
    single = run(compose_config([*overrides, "trainer=cpu"], tmp_path / "single"))
    ddp = metrics(tmp_path / "ddp")
    for key in ("val/ndcg_10", "val/recall_10", "test/ndcg_10", "test/recall_10", "test/hr_10"):
        assert ddp[key] == pytest.approx(single[key], abs=1e-6), key
