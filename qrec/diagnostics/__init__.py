"""Training diagnostics (pure torch): Hessian spectrum by Lanczos, weight sparsity, and the conditions and
cost estimate of Liu et al. 2023 for quantum-accelerated (sparse, dissipative) training."""

from qrec.diagnostics.conditions import (
    ConditionThresholds,
    check_conditions,
    cost_estimate,
    effective_weights,
    weight_sparsity,
)
from qrec.diagnostics.hessian import HessianOperator, hessian_row_nnz, hessian_spectrum, lanczos

__all__ = [
    "ConditionThresholds",
    "HessianOperator",
    "check_conditions",
    "cost_estimate",
    "effective_weights",
    "hessian_row_nnz",
    "hessian_spectrum",
    "lanczos",
    "weight_sparsity",
]
