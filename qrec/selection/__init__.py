"""Feature selection as a QUBO: builders (CAQUBO + baselines), counterfactual analysis and solvers.

Pure numpy/scipy; dimod and dwave are imported lazily inside :func:`solve`. No Lightning, no torch.
"""

from qrec.selection.counterfactual import (
    Counterfactual,
    ItemKNNCounterfactual,
    ItemLocalCounterfactual,
    RankingCache,
    counterfactual_deltas,
    run_counterfactual,
)
from qrec.selection.qubo import caqubo, coqubo, cqfs, energy, miqubo, qubo_boosting, to_upper
from qrec.selection.solvers import SOLVERS, Selection, SolverError, has_dwave_token, penalty_strength, solve

__all__ = [
    "SOLVERS",
    "Counterfactual",
    "ItemKNNCounterfactual",
    "ItemLocalCounterfactual",
    "RankingCache",
    "Selection",
    "SolverError",
    "caqubo",
    "coqubo",
    "counterfactual_deltas",
    "cqfs",
    "energy",
    "has_dwave_token",
    "miqubo",
    "penalty_strength",
    "qubo_boosting",
    "run_counterfactual",
    "solve",
    "to_upper",
]
