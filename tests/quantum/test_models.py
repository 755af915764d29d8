"""SwapTestModule and VarNetModule: fast_dev_run on synthetic data, exactness, backends, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from qrec.models.swap_test import SwapTestModule
from qrec.models.varnet import VarNetModule
from qrec.pipeline import run

FAST = ("data=synthetic", "logger=none", "trainer.fast_dev_run=true")


@pytest.mark.parametrize(
    "overrides",
    [
        ("model=swap_test", "model.k=3"),
        ("model=swap_test", "model.k=3", "model.backend=pennylane"),
        ("model=varnet",),
        ("model=varnet", "model.k=2", "model.backend=pennylane"),
        ("model=varnet_seed",),
    ],
)
def test_fast_dev_run_writes_metrics(make_cfg, overrides):
    cfg = make_cfg(*overrides, *FAST)
    metrics = run(cfg)
    saved = json.loads(open(cfg.paths.output_dir + "/metrics.json").read())
    for key in (
        "val/rmse",
        "test/rmse",
        "test/mae",
        "test/pred_min",
        "test/pred_max",
        "test/infer_s_per_20k",
    ):
        assert key in saved, key
    assert (
        np.isfinite(metrics["test/rmse"]) and 1.0 <= metrics["test/pred_min"] <= metrics["test/pred_max"] <= 5
    )


def test_exact_swap_test_equals_svd(make_cfg):
    svd = run(make_cfg("model=svd", "model.rank=3", "data=synthetic", "logger=none"))
    swap = run(make_cfg("model=swap_test", "model.k=3", "data=synthetic", "logger=none"))
    assert abs(swap["test/rmse"] - svd["test/rmse"]) < 1e-6
    seed = run(
        make_cfg("model=swap_test", "model.k=3", "model.estimator=seed", "data=synthetic", "logger=none")
    )
    assert abs(seed["test/rmse"] - svd["test/rmse"]) > 1e-3  # the seed's formula is not the dot product


def _attached(make_cfg, **model):
    cfg = make_cfg("data=synthetic")
    dm = instantiate(cfg.data)
    torch.manual_seed(0)
    module = VarNetModule(**model) if "n_layers" in model else SwapTestModule(**model)
    module.attach(dm)
    if isinstance(module, SwapTestModule):
        module.fit_step(*dm.train[:3])  # the closed-form SVD fit (one training "epoch")
        assert module.user_factors.abs().sum() > 0
    return module, dm


def test_swap_test_shots_and_pennylane_backend(make_cfg):
    exact, dm = _attached(make_cfg, k=3)
    users, items = dm.test.users, dm.test.items
    classical = (exact.user_factors[users] * exact.item_factors[items]).sum(-1).double()
    torch.testing.assert_close(exact.dot(users, items), classical, atol=1e-6, rtol=0)
    circuit, _ = _attached(make_cfg, k=3, backend="pennylane")
    torch.testing.assert_close(circuit.dot(users, items), classical, atol=1e-6, rtol=0)
    sampled, _ = _attached(make_cfg, k=3, shots=100)
    error = (sampled.dot(users, items) - exact.dot(users, items)).abs()
    assert 0 < error.mean() < 1.0


def test_varnet_backends_agree_and_state_dict_round_trip(make_cfg):
    design = dict(k=2, n_layers=2, entangler="ring", readout="all_z")
    fast, dm = _attached(make_cfg, **design)
    slow, _ = _attached(make_cfg, **design, backend="pennylane")
    with torch.no_grad():
        slow.layer.weights.copy_(fast.weights)
    slow.load_state_dict({k: v for k, v in fast.state_dict().items() if k != "weights"}, strict=False)
    users, items = dm.test.users, dm.test.items
    torch.testing.assert_close(slow.predict(users, items), fast.predict(users, items), atol=1e-5, rtol=0)
    fresh, _ = _attached(make_cfg, **design, backend="pennylane")
    fresh.load_state_dict(slow.state_dict())
    torch.testing.assert_close(fresh.predict(users, items), slow.predict(users, items))


def test_latents_scaled_on_train_only(make_cfg):
    module, dm = _attached(make_cfg, k=3, n_layers=1)
    seen = torch.unique(dm.train.users)
    x = module.user_x[seen]
    assert torch.allclose(x.min(0).values, torch.zeros(3)) and torch.allclose(x.max(0).values, torch.ones(3))
    assert ((module.item_x >= 0) & (module.item_x <= 1)).all()


def test_bad_configurations_fail_before_training(make_cfg):
    with pytest.raises(ValueError, match="shots"):
        VarNetModule(backend="pennylane", shots=0)
    with pytest.raises(ValueError, match="backend=pennylane"):
        VarNetModule(noise=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        VarNetModule(backend="pennylane", device="default.mixed", noise=2.0)
    with pytest.raises(ValueError, match="Unknown PennyLane device"):
        SwapTestModule(backend="pennylane", device="nope.qubit")
    with pytest.raises(ValueError, match="supports at most"):
        VarNetModule(k=8, backend="pennylane", device="default.mixed")
    with pytest.raises(ValueError, match="entangler"):
        VarNetModule(entangler="star")
    with pytest.raises(ValueError, match="SVD rank"):
        _attached(make_cfg, k=40, n_layers=1)  # synthetic data: 40 items
    with pytest.raises(ValueError, match="SVD rank"):
        _attached(make_cfg, k=40)


def test_circuit_drawing_shows_every_wire(make_cfg):
    from hydra.utils import instantiate

    from qrec.data import RatingsDataModule, make_synthetic_ratings

    cfg = make_cfg("model=varnet", "data=synthetic", "model.k=2")
    module = instantiate(cfg.model)
    module.attach(RatingsDataModule(lambda: make_synthetic_ratings(seed=0)))
    drawing = module.circuit_drawing()
    assert drawing.count("RY") >= 4 and all(f"{w}:" in drawing for w in range(4))
