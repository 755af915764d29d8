"""CAQUBO retrain=true trains with the compared model's early stopping and best-checkpoint selection."""

import functools
import json

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

import qrec.callbacks.caqubo as caqubo_module
from qrec.callbacks.caqubo import CAQUBOCallback
from qrec.data import make_synthetic_ratings
from qrec.data.implicit import ImplicitDataModule
from qrec.models.mlp_dp import MLPDPModule

pytest.importorskip("dwave.samplers")


def test_retrain_uses_the_same_early_stopping_and_best_checkpoint(tmp_path, monkeypatch):
    make = functools.partial(make_synthetic_ratings, n_users=50, n_items=40, density=0.5, seed=1)
    dm = ImplicitDataModule(make, features="kg", n_features=8, threshold=3.0, seed=0, batch_size=128)
    seen = []

    class SpyTrainer(L.Trainer):
        def fit(self, *args, **kwargs):
            out = super().fit(*args, **kwargs)
            seen.append(self)
            return out

    monkeypatch.setattr(caqubo_module.L, "Trainer", SpyTrainer)
    callback = CAQUBOCallback(solver="steepest", k=4, retrain=True, output_dir=str(tmp_path), heatmap=False,
                              progress=False)  # fmt: skip
    torch.manual_seed(0)
    trainer = L.Trainer(
        max_epochs=5, logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        num_sanity_val_steps=0, callbacks=[ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/ndcg_10",
                                                           mode="max"),
                                           EarlyStopping("val/ndcg_10", mode="max", patience=1), callback],
    )  # fmt: skip
    model = MLPDPModule(dim=8, hidden=16)
    trainer.fit(model, datamodule=dm)
    (retrain,) = [t for t in seen if t is not trainer]  # L is lightning itself: the test's trainer is a spy too
    stop = next(c for c in retrain.callbacks if isinstance(c, EarlyStopping))
    best = next(c for c in retrain.callbacks if isinstance(c, ModelCheckpoint))
    assert (stop.monitor, stop.mode, stop.patience) == ("val/ndcg_10", "max", 1)
    assert (best.monitor, best.mode) == ("val/ndcg_10", "max")
    assert retrain.max_epochs == 5
    selection = json.loads((tmp_path / "selection.json").read_text())
    assert len(selection["selected_labels"]) == len(selection["selected"]) == 4  # readable labels beside raw ids
    result = selection["retrain"]
    # The retrained model reported is the best validation checkpoint, not the last epoch.
    assert result["val_ndcg_10"] == pytest.approx(float(best.best_model_score), abs=1e-6)
    assert result["epochs"] <= retrain.current_epoch
    assert result["monitor"] == "val/ndcg_10" and result["early_stopping"]
    # ... and lands in metrics.json beside the masked model's score (extra_metrics)
    assert model.extra_metrics["caqubo/test_ndcg_10_retrained"] == result["test_ndcg_10"]
    assert model.extra_metrics["caqubo/val_ndcg_10_retrained"] == result["val_ndcg_10"]
