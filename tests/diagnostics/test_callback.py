"""DissipationProbe: Lanczos vs dense Hessian on a tiny two-tower, pruning, closed-form models, bad input."""

import json

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelPruning

from qrec.callbacks.diagnostics import DissipationProbe
from qrec.data.implicit import ImplicitDataModule
from qrec.data.synthetic import make_synthetic_ratings
from qrec.diagnostics import HessianOperator
from qrec.models.two_tower import TwoTowerModule
from qrec.pipeline import run


def _implicit(batch_size: int, **synthetic) -> ImplicitDataModule:
    return ImplicitDataModule(lambda: make_synthetic_ratings(**synthetic), features=None, threshold=3.0,
                              batch_size=batch_size)  # fmt: skip


def _tiny(head: str) -> tuple[TwoTowerModule, ImplicitDataModule]:
    dm = _implicit(32, n_users=30, n_items=20, density=0.3, seed=0)
    dm.setup("fit")
    model = TwoTowerModule(dim=4, head=head, out_dim=2, n_qubits_out=1, layers=1, seed=0)
    model.build(dm)
    return model.double() if head == "linear" else model, dm


@pytest.mark.parametrize("head", ["linear", "qi"])
def test_probe_top_eigenvalue_matches_dense_hessian_on_tiny_two_tower(head):
    model, dm = _tiny(head)
    batch = next(iter(dm.train_dataloader()))
    probe = DissipationProbe(lanczos_steps=30, row_samples=0, max_batch=None)
    record = probe.measure(model, batch)
    op = HessianOperator(lambda: model.diagnostic_loss(batch), list(model.parameters()))
    exact = torch.linalg.eigvalsh(op.dense())
    assert op.dim > 30  # Lanczos sees fewer directions than the Hessian has
    assert abs(record["lambda_max"] - exact[-1].item()) <= 1e-3 * abs(exact[-1].item())


def test_probe_reads_model_pruning_masks(tmp_path):
    dm = _implicit(64, seed=0)
    model = TwoTowerModule(dim=8, head="linear", out_dim=4, item_bias=False)  # no zero-initialised weights
    probe = DissipationProbe(every_n_steps=1, lanczos_steps=4, row_samples=2, output_dir=str(tmp_path))
    pruning = ModelPruning(
        "l1_unstructured", amount=0.5, parameters_to_prune=[(model.head, "weight")], verbose=0
    )
    trainer = L.Trainer(
        max_epochs=2,
        limit_train_batches=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[pruning, probe],
    )
    trainer.fit(model, datamodule=dm)
    first, second = probe.records
    assert first["n_nonzero"] == first["n_params"]  # before the first epoch-end pruning
    assert second["n_params"] == first["n_params"] and second["n_nonzero"] == first["n_params"] - 16
    report = json.loads((tmp_path / "diagnostics.json").read_text())
    assert report["probed_steps"] == [1, 2] and isinstance(report["statement"], str)


def test_closed_form_model_is_not_applicable(make_cfg, tmp_path):
    cfg = make_cfg(
        "model=als", "data=synthetic", "logger=none", "callbacks=diagnostics", "trainer.max_epochs=1"
    )
    run(cfg)
    report = json.loads((tmp_path / "diagnostics.json").read_text())
    assert not report["applicable"] and "not applicable" in report["statement"]
    assert "closed form" in report["statement"]


@pytest.mark.parametrize("interval", [0, -5])
def test_probe_interval_must_be_positive(interval):
    with pytest.raises(ValueError, match="every_n_steps"):
        DissipationProbe(every_n_steps=interval)


def test_summary_window_and_cost():
    probe = DissipationProbe(every_n_steps=10)
    base = {
        "n_params": 1e6,
        "n_nonzero": 1e4,
        "sparse_model": True,
        "sparse_weights": True,
        "almost_dissipative": True,
    }
    flags = [True, True, False, True]
    probe.records = [
        {**base, "step": s, "all_hold": f, "regime": "T"} for s, f in zip([1, 10, 20, 30], flags)
    ]
    summary = probe.summary(total_steps=40)
    assert summary["steps_where_conditions_hold"] == [1, 10, 30]
    cost = summary["cost_estimate"]
    assert cost["first_step"] == 1 and cost["steps"] == 19  # until the next (failing) probe at step 20
    assert np.isclose(cost["classical_ops"], 19 * 1e6)
