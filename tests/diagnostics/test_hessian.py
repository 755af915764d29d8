"""Hessian-vector products, Lanczos vs a dense Hessian, sparsity and the paper's conditions."""

import math

import pytest
import torch
import torch.nn.utils.prune
from torch import nn
from torch.func import functional_call, hessian

from qrec.diagnostics import (
    ConditionThresholds,
    HessianOperator,
    check_conditions,
    cost_estimate,
    hessian_row_nnz,
    hessian_spectrum,
    lanczos,
    weight_sparsity,
)


def _tiny_model_and_loss():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    x, y = torch.randn(32, 4, dtype=torch.float64), torch.randn(32, 1, dtype=torch.float64)
    return model, lambda: nn.functional.mse_loss(model(x), y), (x, y)


def _dense_hessian(model, x, y):
    """Independent reference: torch.func.hessian of the loss as a function of the flat parameters."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def loss(w):
        params, i = {}, 0
        for name, shape in zip(names, shapes, strict=True):
            params[name] = w[i : i + shape.numel()].reshape(shape)
            i += shape.numel()
        return nn.functional.mse_loss(functional_call(model, params, (x,)), y)

    return hessian(loss)(flat)


def test_lanczos_extreme_eigenvalues_match_dense_hessian():
    model, loss_fn, (x, y) = _tiny_model_and_loss()
    dense = _dense_hessian(model, x, y)
    exact = torch.linalg.eigvalsh(dense)
    op = HessianOperator(loss_fn, list(model.parameters()))
    assert op.dim == 49 and torch.allclose(op.dense(), dense, atol=1e-10)
    # 25 Krylov steps for a 49-dim operator: the extremes converge long before the interior.
    spec = hessian_spectrum(op.matvec, op.dim, steps=25, seed=1)
    assert abs(spec["lambda_max"] - exact[-1].item()) <= 1e-3 * abs(exact[-1].item())
    assert abs(spec["lambda_min"] - exact[0].item()) <= 1e-3 * abs(exact[-1].item())


def test_slq_negative_fraction_on_a_known_spectrum():
    torch.manual_seed(0)
    eigs = torch.cat([torch.linspace(-2.0, -0.5, 30), torch.linspace(0.5, 4.0, 170)]).double()
    q, _ = torch.linalg.qr(torch.randn(200, 200, dtype=torch.float64))
    mat = q @ torch.diag(eigs) @ q.T
    spec = hessian_spectrum(lambda v: mat @ v, 200, steps=40, probes=30, seed=0)
    assert spec["neg_fraction"] == pytest.approx(30 / 200, abs=0.04)
    assert spec["lambda_max"] == pytest.approx(4.0, rel=1e-4)
    assert spec["lambda_min"] == pytest.approx(-2.0, rel=1e-4)
    assert spec["neg_ratio"] == pytest.approx(0.5, rel=1e-4)
    assert spec["flat_fraction"] == pytest.approx(0.0, abs=1e-9)
    # Half the directions exactly flat: the negative share of all directions halves, of curved ones not.
    padded = torch.cat([eigs, torch.zeros(200, dtype=torch.float64)])
    q2, _ = torch.linalg.qr(torch.randn(400, 400, dtype=torch.float64))
    mat2 = q2 @ torch.diag(padded) @ q2.T
    spec2 = hessian_spectrum(lambda v: mat2 @ v, 400, steps=40, probes=30, seed=0)
    assert spec2["flat_fraction"] == pytest.approx(0.5, abs=0.06)
    assert spec2["neg_fraction"] == pytest.approx(30 / 400, abs=0.03)
    assert spec2["neg_fraction_curved"] == pytest.approx(30 / 200, abs=0.05)
    psd = hessian_spectrum(lambda v: eigs.abs() * v, 200, steps=30, probes=5)
    assert psd["neg_fraction"] == 0.0 and psd["neg_ratio"] == 0.0


def test_lanczos_stops_on_invariant_subspace_and_weights_sum_to_one():
    ritz, weights = lanczos(lambda v: 3.0 * v, 50, 10)
    assert ritz.tolist() == pytest.approx([3.0]) and weights.sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="steps"):
        lanczos(lambda v: v, 5, 0)


def test_hessian_row_nnz_sees_block_structure():
    # Loss separable in two blocks of 3 coordinates: each Hessian row has exactly 3 non-zeros.
    w = torch.randn(6, dtype=torch.float64, requires_grad=True)
    op = HessianOperator(lambda: (w[:3].sum() ** 4) + (w[3:].prod() ** 2), [w])
    rows = hessian_row_nnz(op.matvec, op.dim, samples=6)
    assert rows["row_nnz_mean"] == 3.0 and rows["row_nnz_max"] == 3.0
    assert op.active_coordinates().tolist() == list(range(6))
    unused = torch.randn(4, dtype=torch.float64, requires_grad=True)
    op2 = HessianOperator(lambda: (w[:3] ** 2).sum() + 0.0 * unused.sum(), [w, unused])
    assert op2.active_coordinates().tolist() == [0, 1, 2]


def test_linear_parameters_have_zero_hessian():
    w = torch.randn(4, requires_grad=True)
    op = HessianOperator(lambda: (2.0 * w).sum(), [w])
    assert torch.equal(op.matvec(torch.ones(4, dtype=torch.float64)), torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="requires_grad"):
        HessianOperator(lambda: w.sum(), [torch.randn(3)])


def test_weight_sparsity_reads_pruning_masks():
    model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 2))
    dense = weight_sparsity(model)
    assert dense["weight_sparsity"] == 0.0 and dense["n_params"] == 10 * 10 + 10 + 10 * 2 + 2
    torch.nn.utils.prune.l1_unstructured(model[0], "weight", amount=0.5)  # what ModelPruning calls
    pruned = weight_sparsity(model)
    assert pruned["n_params"] == dense["n_params"]  # weight_orig is not double-counted
    assert pruned["n_nonzero"] == dense["n_params"] - 50


def test_conditions_and_cost_estimate():
    spec = {"neg_fraction": 0.0, "neg_ratio": 0.0}
    sparse = {"n_params": 1e6, "n_nonzero": 5e4}
    rows = {"row_nnz_mean": 50.0}
    ok = check_conditions(spec, sparse, rows)
    assert ok["all_hold"] and ok["regime"] == "T"
    dense_weights = check_conditions(spec, {"n_params": 1e6, "n_nonzero": 5e5}, rows)
    assert not dense_weights["sparse_weights"] and not dense_weights["all_hold"]
    almost = check_conditions({"neg_fraction": 0.05, "neg_ratio": 0.3}, sparse, rows)
    assert almost["regime"] == "T^2" and almost["all_hold"]
    bad = check_conditions(
        {"neg_fraction": 0.4, "neg_ratio": 1.0},
        sparse,
        {"row_nnz_mean": 1e4},
        ConditionThresholds(polylog_power=1.0),
    )
    assert bad["regime"] == "none" and not bad["sparse_model"] and not bad["all_hold"]

    cost = cost_estimate(n_params=10**8, n_nonzero=10**6, steps=1000, eps=0.1, regime="T")
    assert cost["classical_ops"] == 1e11
    assert cost["quantum_ops"] == pytest.approx(1000 * math.log2(1e8) ** 2 / 0.1 + 1e6 / 0.01)
    assert cost_estimate(100, 10, 10, regime="T^2")["quantum_ops"] > cost_estimate(100, 10, 10)["quantum_ops"]
    assert cost_estimate(100, 10, 10, regime="none")["ratio"] == 0.0
    with pytest.raises(ValueError):
        cost_estimate(0, 0, 10)
