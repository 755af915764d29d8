"""Two-tower model: fast_dev_run with both heads and in distillation mode; bad configurations."""

import json
import math

import lightning as L
import pytest
import torch

from qrec.models.two_tower import TwoTowerModule, fidelity_score
from qrec.pipeline import run

FAST = (
    "experiment=two_tower",
    "data=synthetic_implicit",
    "logger=none",
    "callbacks=none",
    "++trainer.fast_dev_run=true",
)


@pytest.mark.parametrize("head", ["linear", "qi"])
def test_fast_dev_run_both_heads(make_cfg, head):
    cfg = make_cfg(*FAST, f"model.head={head}", "model.dim=16", "model.out_dim=8", "model.n_qubits_out=4")
    metrics = run(cfg)
    for key in ("val/ndcg_10", "test/ndcg_10", "test/recall_10", "test/hr_10"):
        assert 0.0 <= metrics[key] <= 1.0 and math.isfinite(metrics[key])
    assert metrics["linear_head_params_same_out"] == 16 * 8 + 8
    if head == "qi":
        assert metrics["head_params"] == 1 * 2 * 15  # shared su4 gates, 1 layer x 2 sub-layers


def test_default_qi_head_has_16x_fewer_parameters():
    counts = TwoTowerModule(head="qi").head_parameter_counts()
    assert counts["linear_head_params_same_out"] == 64 * 16 + 16 and counts["head_param_ratio"] >= 16


def test_distillation_mode_trains_only_the_head(make_cfg, tmp_path):
    cfg = make_cfg(
        *FAST,
        "model.mode=distill",
        "model.head=qi",
        "model.dim=16",
        "model.n_qubits_out=4",
        "model.teacher_sweeps=3",
    )
    metrics = run(cfg)
    assert 0.0 <= metrics["test/teacher_overlap_10"] <= 1.0
    assert 0.0 <= metrics["test/teacher_ndcg_10"] <= 1.0
    model = TwoTowerModule(mode="distill", head="linear", dim=16)
    assert [n for n, p in model.named_parameters()] == ["head.weight", "head.bias"]


def test_probe_runs_on_two_tower_and_writes_json(make_cfg, tmp_path):
    cfg = make_cfg(
        *FAST,
        "model.head=qi",
        "model.dim=8",
        "model.n_qubits_out=2",
        "callbacks=diagnostics",
        "callbacks.dissipation_probe.every_n_steps=1",
        "callbacks.dissipation_probe.lanczos_steps=4",
    )
    run(cfg)
    report = json.loads((tmp_path / "diagnostics.json").read_text())
    assert report["applicable"] and report["probed_steps"] == [1]
    assert report["probe_seconds"] > 0 and report["report_seconds"] > 0  # the bench's overhead inputs
    assert (tmp_path / "diagnostics.png").is_file()
    record = report["records"][0]
    assert record["lambda_max"] >= record["lambda_min"] and 0.0 <= record["neg_fraction"] <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"head": "qi", "dim": 15}, "even"),
        ({"head": "qi", "dim": 8, "n_qubits_out": 5}, "encodes only 4 qubits"),
        ({"head": "mlp"}, "head"),
        ({"mode": "finetune"}, "mode"),
        ({"temperature": 0.0}, "temperature"),
        ({"fidelity_link": "exp"}, "fidelity_link"),
        ({"lr_schedule": "step"}, "lr_schedule"),
    ],
)
def test_bad_configurations_fail_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TwoTowerModule(**kwargs)


def test_cosine_schedule_anneals_to_zero_over_max_epochs_and_needs_a_budget():
    model = TwoTowerModule(lr=0.02)
    model.trainer = L.Trainer(max_epochs=4, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(4):
        optimizer.step()
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == 0.02 and all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] == pytest.approx(0.0, abs=1e-12)
    model.trainer = L.Trainer(max_epochs=-1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match="lr_schedule=constant"):
        model.configure_optimizers()
    assert isinstance(TwoTowerModule(lr_schedule="constant").configure_optimizers(), torch.optim.Adam)


def test_distillation_teacher_never_sees_held_out_interactions(monkeypatch):
    """The ALS teacher trains on every rating except the validation and test interactions."""
    from hydra.utils import instantiate

    from qrec.config import compose_config
    from qrec.models import two_tower

    seen = {}
    real_fit = two_tower.L.Trainer.fit

    def spy(trainer, model, datamodule=None, **kwargs):
        seen["train"] = set(zip(datamodule.train.users.tolist(), datamodule.train.items.tolist()))
        return real_fit(trainer, model, datamodule=datamodule, **kwargs)

    monkeypatch.setattr(two_tower.L.Trainer, "fit", spy)
    dm = instantiate(compose_config(["data=synthetic_implicit", "data.batch_size=64"], ".").data)
    dm.setup()
    two_tower.fit_als_factors(dm, rank=4, reg=0.1, sweeps=1)
    held_out = set(zip(*(dm.val + dm.test).nonzero()))
    assert seen["train"] and not seen["train"] & held_out
    assert len(seen["train"]) == len(dm.table.ratings) - len(held_out)


@pytest.mark.parametrize("link", ["root", "log"])
def test_fidelity_score_ranks_like_the_fidelity_and_has_finite_gradients(link):
    fid = torch.tensor([0.0, 1e-9, 0.003, 0.2, 1.0], requires_grad=True)
    score = fidelity_score(fid, n_qubits=8, temperature=0.2, link=link)
    assert torch.all(score[1:] > score[:-1])  # strictly monotone: the ranking is the fidelity's
    score.sum().backward()
    assert torch.isfinite(fid.grad).all()


def test_root_fidelity_score_is_the_geometric_mean_of_per_qubit_fidelities():
    per_qubit = torch.tensor([[0.9, 0.5, 0.2, 0.7]])
    score = fidelity_score(per_qubit.prod(-1), n_qubits=4, temperature=0.5)
    assert torch.allclose(score * 0.5, per_qubit.log().mean(-1).exp())
    assert fidelity_score(torch.tensor(1.0), n_qubits=8, temperature=0.2) == pytest.approx(5.0)
