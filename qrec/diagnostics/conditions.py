"""Weight sparsity, the conditions of Liu et al. 2023, and their quantum vs classical cost estimate.

Liu, Liu, Liu, Ye, Wang, Alexeev, Eisert & Jiang, "Towards provably efficient quantum algorithms for
large-scale machine-learning models" (Nat. Commun. 15, 434, 2024; arXiv 2303.03428) map (S)GD on ``n``
parameters to an ODE, linearise it (Carleman) and solve it with a quantum linear-ODE solver on
``log2(n)`` qubits. Their end-to-end guarantee needs three things, which this module checks on
measured quantities (thresholds in :class:`ConditionThresholds`, all configurable):

1. **Sparse model** - the ODE matrix (the Hessian, to first Carleman order) must be sparse so it can be
   block-encoded cheaply: each parameter couples to ``s = O(polylog n)`` others. Measured as the mean
   non-zeros per sampled Hessian row (:func:`qrec.diagnostics.hessian.hessian_row_nnz`); holds when it is
   ``<= log2(n) ** polylog_power``.
2. **Sparse weights** - the weights are uploaded to and downloaded from the quantum computer (state
   preparation and tomography), which is only cheap for few non-zeros (the paper prunes after a
   classical warm-up). Holds when the fraction of non-zero weights is ``<= max_weight_density``.
3. **Dissipative dynamics** - the Hessian is positive (semi-)definite along the trajectory, so the
   linearised dynamics contract and the Carleman truncation error stays bounded. Judged on the curved
   part of the spectrum (``neg_fraction_curved``: exactly flat directions neither grow nor decay).
   *Fully dissipative* (runtime ``O(T polylog(n, 1/eps))``) when that fraction is ``<= full_neg_fraction``
   and ``-lambda_min / lambda_max <= full_neg_ratio``; *almost dissipative* (``O(T^2 polylog)``) when the
   fraction is ``<= almost_neg_fraction``; otherwise no guarantee (error can grow exponentially in T).

The cost estimate (:func:`cost_estimate`) is an order-of-magnitude comparison with every constant set
to 1. Assumptions: a fault-tolerant quantum computer whose logical operation costs as much as one
classical flop; efficient (QRAM-like) upload of the ``s`` non-zero weights; ``polylog(n) =
log2(n) ** polylog_power``; download by tomography of the ``s`` non-zeros at precision ``eps``
(``s / eps**2`` repetitions); the classical baseline is plain (S)GD, ``n`` operations per step
(``poly(n)`` with the smallest possible degree, so the classical cost is if anything underestimated).
None of the quantum hardware exists; the numbers say where the argument could apply, not a speed-up.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn


def effective_weights(model: nn.Module, trainable_only: bool = True) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of the weights the model actually uses.

    ``torch.nn.utils.prune`` (what Lightning's ``ModelPruning`` uses) replaces ``weight`` by a trainable
    ``weight_orig`` and a ``weight_mask`` buffer; the pruned zeros live only in the product, exposed as the
    plain attribute ``weight``. This yields that product instead of the dense ``*_orig``.
    """
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if trainable_only and not param.requires_grad:
                continue
            if name.endswith("_orig") and hasattr(module, name[: -len("_orig")] + "_mask"):
                name = name[: -len("_orig")]
                param = getattr(module, name)
            yield (f"{module_name}.{name}" if module_name else name), param


def weight_sparsity(model: nn.Module, atol: float = 0.0) -> dict[str, float]:
    """Fraction of weights with ``|w| <= atol`` (pruning masks applied), and the counts.

    Returns:
        ``weight_sparsity`` (fraction of zeros), ``n_params`` (n) and ``n_nonzero`` (s).
    """
    total, zeros = 0, 0
    for _, w in effective_weights(model):
        total += w.numel()
        zeros += int((w.detach().abs() <= atol).sum())
    return {
        "weight_sparsity": zeros / total if total else 0.0,
        "n_params": float(total),
        "n_nonzero": float(total - zeros),
    }


@dataclass
class ConditionThresholds:
    """When the paper's conditions count as holding (see the module docstring).

    Attributes:
        max_weight_density: sparse weights if (non-zeros / n) <= this. The paper prunes to ~10%.
        polylog_power: sparse model if mean Hessian-row nnz <= log2(n) ** this; also the polylog exponent
            of the quantum cost.
        full_neg_fraction: fully dissipative if the negative-curvature fraction is <= this ...
        full_neg_ratio: ... and ``-lambda_min / lambda_max`` <= this.
        almost_neg_fraction: almost dissipative (T^2 runtime) if the fraction is <= this.
    """

    max_weight_density: float = 0.1
    polylog_power: float = 2.0
    full_neg_fraction: float = 0.01
    full_neg_ratio: float = 0.01
    almost_neg_fraction: float = 0.1


def check_conditions(
    spectrum: dict[str, float],
    sparsity: dict[str, float],
    row_nnz: dict[str, float],
    thresholds: ConditionThresholds | None = None,
) -> dict[str, object]:
    """Which of the paper's conditions hold for one measurement.

    Args:
        spectrum: from :func:`qrec.diagnostics.hessian.hessian_spectrum`.
        sparsity: from :func:`weight_sparsity`.
        row_nnz: from :func:`qrec.diagnostics.hessian.hessian_row_nnz`.
    Returns:
        booleans ``sparse_model``, ``sparse_weights``, ``fully_dissipative``, ``almost_dissipative``,
        ``all_hold`` (sparse model, sparse weights and at least almost dissipative), ``regime``
        (``"T"``, ``"T^2"`` or ``"none"``) and the thresholds used.
    """
    th = thresholds or ConditionThresholds()
    n = max(sparsity["n_params"], 2.0)
    density = sparsity["n_nonzero"] / n
    sparse_model = row_nnz["row_nnz_mean"] <= math.log2(n) ** th.polylog_power
    sparse_weights = density <= th.max_weight_density
    # Flat directions neither grow nor decay: judge dissipation on the curved part of the spectrum.
    neg = spectrum.get("neg_fraction_curved", spectrum["neg_fraction"])
    full = neg <= th.full_neg_fraction and spectrum["neg_ratio"] <= th.full_neg_ratio
    almost = neg <= th.almost_neg_fraction
    regime = "T" if full else ("T^2" if almost else "none")
    return {
        "sparse_model": sparse_model,
        "sparse_weights": sparse_weights,
        "fully_dissipative": full,
        "almost_dissipative": almost,
        "all_hold": bool(sparse_model and sparse_weights and almost),
        "regime": regime,
        "thresholds": asdict(th),
    }


def cost_estimate(
    n_params: int,
    n_nonzero: int,
    steps: int,
    eps: float = 1e-2,
    regime: str = "T",
    polylog_power: float = 2.0,
) -> dict[str, float | str]:
    """Order-of-magnitude operation counts, quantum vs classical (assumptions in the module docstring).

    Args:
        n_params: n, model size.
        n_nonzero: s, non-zero weights to upload/download.
        steps: T, training steps.
        eps: target precision of the downloaded weights.
        regime: ``"T"`` (fully dissipative), ``"T^2"`` (almost) or ``"none"`` (no guarantee: quantum = inf).
    Returns:
        ``classical_ops`` = T n, ``quantum_ops`` = T^a log2(n)^p / eps + s / eps^2 (a = 1 or 2),
        ``ratio`` = classical / quantum (> 1 would favour the quantum route), and ``formula``.
    """
    if n_params < 1 or steps < 1 or eps <= 0:
        raise ValueError(f"need n_params >= 1, steps >= 1, eps > 0; got {n_params}, {steps}, {eps}.")
    classical = float(steps) * n_params
    polylog = max(math.log2(n_params), 1.0) ** polylog_power
    if regime == "none":
        quantum = math.inf
    else:
        power = {"T": 1, "T^2": 2}[regime]
        quantum = float(steps) ** power * polylog / eps + n_nonzero / eps**2
    if regime == "none":
        formula = "no guarantee (not dissipative)"
    else:
        formula = f"quantum = T^{1 if regime == 'T' else 2} * log2(n)^{polylog_power:g} / eps + s / eps^2"
    return {
        "classical_ops": classical,
        "quantum_ops": quantum,
        "ratio": classical / quantum,
        "formula": formula + "; classical = T * n",
    }
