"""Solve a feature-selection QUBO by name, optionally with exactly K features kept.

``solve(Q, "sa", k=130)`` -> :class:`Selection`. Solvers (dimod / dwave-samplers / dwave-system are
imported lazily, inside the functions, so ``import qrec`` stays light):

========== ===============================================================================
``sa``       ``dwave.samplers.SimulatedAnnealingSampler`` (dwave-neal 0.6 is a re-export of it)
``tabu``     ``dwave.samplers.TabuSampler`` (``timeout`` ms per read, default 20)
``steepest`` ``dwave.samplers.SteepestDescentSolver`` from random starts
``exact``    exhaustive enumeration in numpy, n ≤ 22 (with ``k``: only the C(n, k) feasible states)
``qpu``      ``dwave.system.DWaveSampler`` + ``EmbeddingComposite`` (needs a D-Wave token)
``hybrid``   ``dwave.system.LeapHybridSampler`` (needs a D-Wave token)
========== ===============================================================================

Cardinality Σx = K is added as ``λ(Σx − K)²``. The strength decides everything (docs/qubo.md): λ = 1
gave 0% feasible samples for n ≥ 150, the "safe" max-energy-delta strength rescales SA's
temperature schedule and made it far worse, ~9–18 × mean|Q_ij| worked. Default ``penalty="auto"``:
λ = 10 × mean |U_ij| over the non-zero off-diagonal entries of the upper-triangular Q (diagonal
mean if there are none). ``penalty="paper"`` uses CAQUBO's λ = max_i Σ_j |Q_ij|. Every sample is then
*repaired* to exactly K (greedy: drop or add the feature whose flip lowers the unpenalised energy
most), and the best repaired sample is returned.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field

import numpy as np

from qrec.selection.qubo import energy, to_upper

SOLVERS = ("sa", "tabu", "steepest", "exact", "qpu", "hybrid")
EXACT_MAX_N = 22


class SolverError(RuntimeError):
    """A solver cannot run here (no D-Wave token, problem too large for exact enumeration...)."""


@dataclass
class Selection:
    """The outcome of :func:`solve`.

    Attributes:
        x: (n,) bool, True = feature kept.
        energy: xᵀQx of ``x`` under the *unpenalised* Q.
        feasible_fraction: share of raw samples with Σx = K before repair (1.0 without ``k``).
        solve_s: wall-clock seconds of sampling + repair.
        solver, k, num_reads, penalty: what was run.
        energies: (reads,) unpenalised energies of every (repaired) sample, for stability plots.
    """

    x: np.ndarray
    energy: float
    feasible_fraction: float
    solve_s: float
    solver: str
    k: int | None
    num_reads: int
    penalty: float = 0.0
    energies: np.ndarray = field(default_factory=lambda: np.zeros(0))
    info: dict = field(default_factory=dict)

    @property
    def selected(self) -> np.ndarray:
        """Indices of the kept features."""
        return np.flatnonzero(self.x)


def penalty_strength(Q: np.ndarray, rule: str | float = "auto", scale: float = 10.0) -> float:
    """λ for λ(Σx − K)² (see the module docstring for the rules)."""
    if not isinstance(rule, str):
        if rule <= 0:
            raise ValueError(f"penalty={rule} must be > 0.")
        return float(rule)
    U = to_upper(Q)
    if rule == "auto":
        off = np.abs(U[np.triu_indices_from(U, 1)])
        off = off[off > 0]
        base = off.mean() if len(off) else np.abs(np.diag(U)).mean()
        return float(scale * base) if base > 0 else 1.0
    if rule == "paper":
        S = U + U.T - np.diag(np.diag(U))
        return float(np.abs(S).sum(axis=1).max()) or 1.0
    raise ValueError(f"penalty={rule!r}: use 'auto', 'paper' or a positive number.")


def add_cardinality(Q: np.ndarray, k: int, strength: float) -> np.ndarray:
    """Upper-triangular Q + λ(Σx − K)², dropping the constant λK² (x_i² = x_i for binaries)."""
    U = to_upper(Q)
    n = len(U)
    U = U + 2.0 * strength * np.triu(np.ones((n, n)), 1)
    U[np.diag_indices(n)] += strength * (1 - 2 * k)
    return U


def repair(Q: np.ndarray, X: np.ndarray, k: int) -> np.ndarray:
    """Greedily move every sample to exactly ``k`` ones, lowering the unpenalised energy most per flip.

    Args:
        Q: (n, n) unpenalised QUBO. X: (reads, n) 0/1 samples.

    Returns:
        (reads, n) int8 samples with Σx = k each.
    """
    U = to_upper(Q)
    M = U + U.T - np.diag(np.diag(U))  # symmetric couplings, diagonal = linear terms
    X = np.asarray(X, dtype=np.float64).copy()
    lin = np.diag(U)
    coup = M - np.diag(np.diag(M))
    field_ = X @ coup  # (reads, n) Σ_j M_ij x_j
    counts = X.sum(axis=1).astype(np.int64)
    rows = np.arange(len(X))
    while True:
        over, under = counts > k, counts < k
        if not (over.any() or under.any()):
            break
        gain = lin[None, :] + field_  # energy change of setting x_i from 0 to 1
        # Removing i changes E by −gain_i; adding i by +gain_i. Pick the best allowed move per row.
        remove = np.where(X > 0, -gain, np.inf)
        add = np.where(X < 1, gain, np.inf)
        choice = np.where(over[:, None], remove, np.where(under[:, None], add, np.inf))
        active = over | under
        i = np.argmin(choice, axis=1)
        r = rows[active]
        i = i[active]
        delta = np.where(X[r, i] > 0, -1.0, 1.0)
        X[r, i] += delta
        field_[r] += delta[:, None] * coup[i]
        counts[r] += delta.astype(np.int64)
    return X.astype(np.int8)


def has_dwave_token() -> bool:
    """True if a D-Wave token is configured (env ``DWAVE_API_TOKEN`` or a dwave config file). No network."""
    if os.environ.get("DWAVE_API_TOKEN"):
        return True
    try:
        from dwave.cloud.config import load_config  # reads local files only
    except ImportError:
        return False
    try:
        return bool(load_config().get("token"))
    except Exception:  # a malformed config file means "no usable token", not a crash here
        return False


def _bqm(U: np.ndarray):
    import dimod

    return dimod.as_bqm(U, "BINARY")  # dense array: diagonal -> linear, U_ij (i < j) -> coupling


def _sample(U: np.ndarray, solver: str, num_reads: int, seed: int | None, **kwargs) -> np.ndarray:
    """Run a dimod sampler on the upper-triangular U; returns (reads, n) int8 samples."""
    bqm = _bqm(U)
    n = len(U)
    if solver == "sa":
        from dwave.samplers import SimulatedAnnealingSampler

        sampleset = SimulatedAnnealingSampler().sample(bqm, num_reads=num_reads, seed=seed, **kwargs)
    elif solver == "tabu":
        from dwave.samplers import TabuSampler

        kwargs.setdefault("timeout", 20)
        sampleset = TabuSampler().sample(bqm, num_reads=num_reads, seed=seed, **kwargs)
    elif solver == "steepest":
        from dwave.samplers import SteepestDescentSolver

        sampleset = SteepestDescentSolver().sample(
            bqm, num_reads=num_reads, seed=seed, initial_states_generator="random", **kwargs
        )
    elif solver == "qpu":
        from dwave.system import DWaveSampler, EmbeddingComposite

        sampleset = EmbeddingComposite(DWaveSampler()).sample(bqm, num_reads=num_reads, **kwargs)
    elif solver == "hybrid":
        from dwave.system import LeapHybridSampler

        sampleset = LeapHybridSampler().sample(bqm, **kwargs)
    else:  # pragma: no cover - checked by solve()
        raise ValueError(solver)
    # Column order must follow variable labels 0..n-1; sums of int8 samples are done in int64 later.
    return (
        np.asarray(sampleset.record.sample)[:, np.argsort(np.asarray(sampleset.variables, dtype=np.int64))]
        .reshape(-1, n)
        .astype(np.int8)
    )


def _exact(U: np.ndarray, k: int | None, chunk: int = 1 << 16) -> np.ndarray:
    """Exhaustive minimum of xᵀUx (all 2ⁿ states, or the C(n, k) states with Σx = k)."""
    n = len(U)
    best_e, best_x = np.inf, None
    if k is None:
        bits = np.arange(n)
        for start in range(0, 1 << n, chunk):
            codes = np.arange(start, min(start + chunk, 1 << n))
            X = ((codes[:, None] >> bits[None, :]) & 1).astype(np.float64)
            e = np.einsum("ri,ij,rj->r", X, U, X)
            i = int(np.argmin(e))
            if e[i] < best_e:
                best_e, best_x = e[i], X[i]
    else:
        combos = itertools.combinations(range(n), k)
        while True:
            block = list(itertools.islice(combos, chunk))
            if not block:
                break
            X = np.zeros((len(block), n))
            X[np.repeat(np.arange(len(block)), k), np.asarray(block).ravel()] = 1.0
            e = np.einsum("ri,ij,rj->r", X, U, X)
            i = int(np.argmin(e))
            if e[i] < best_e:
                best_e, best_x = e[i], X[i]
    return best_x[None, :].astype(np.int8)


def solve(
    Q: np.ndarray,
    solver: str = "sa",
    k: int | None = None,
    num_reads: int = 100,
    seed: int | None = 0,
    penalty: str | float = "auto",
    penalty_scale: float = 10.0,
    **solver_kwargs,
) -> Selection:
    """Minimise xᵀQx, optionally subject to Σx = k.

    Args:
        Q: (n, n) QUBO (any layout; converted to the equivalent upper-triangular matrix).
        solver: one of :data:`SOLVERS`.
        k: number of features to keep (1 ≤ k ≤ n), or None for the unconstrained optimum.
        num_reads: samples to draw (ignored by ``exact`` and ``hybrid``).
        seed: sampler seed (classical samplers).
        penalty, penalty_scale: cardinality strength rule, see :func:`penalty_strength`.
        solver_kwargs: passed to the sampler (e.g. ``timeout`` for tabu, ``num_sweeps`` for SA).

    Raises:
        ValueError: unknown solver, bad k, bad Q. SolverError: ``exact`` with n > 22, or ``qpu`` /
            ``hybrid`` without a D-Wave token (raised before any network call).
    """
    U = to_upper(Q)
    n = len(U)
    if solver not in SOLVERS:
        raise ValueError(f"Unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}.")
    if n < 1:
        raise ValueError("Q is empty: there are no features to select.")
    if k is not None:
        if isinstance(k, bool) or int(k) != k:
            raise ValueError(f"k={k!r} must be an integer.")
        k = int(k)
        if not 1 <= k <= n:
            raise ValueError(f"k={k} must satisfy 1 ≤ k ≤ n = {n} (number of features).")
    if num_reads < 1:
        raise ValueError(f"num_reads={num_reads} must be ≥ 1.")
    if solver == "exact" and n > EXACT_MAX_N:
        raise SolverError(
            f"solver='exact' enumerates 2^n states and is limited to n ≤ {EXACT_MAX_N} (got n = {n}). "
            "Use 'sa', 'tabu' or 'steepest'."
        )
    if solver in ("qpu", "hybrid") and not has_dwave_token():
        raise SolverError(
            f"solver={solver!r} needs a D-Wave Leap token: set DWAVE_API_TOKEN or run `dwave config "
            "create`. No network call was made. Use 'sa', 'tabu', 'steepest' or 'exact' locally."
        )
    start = time.perf_counter()
    strength = 0.0
    if solver == "exact":
        X = _exact(U, k)
        feasible = 1.0
    else:
        target = U
        if k is not None:
            strength = penalty_strength(U, penalty, penalty_scale)
            target = add_cardinality(U, k, strength)
        X = _sample(target, solver, num_reads, seed, **solver_kwargs)
        if k is not None:
            counts = X.astype(np.int64).sum(axis=1)  # int8 sums overflow past 127 under NumPy 2
            feasible = float((counts == k).mean())
            X = repair(U, X, k)
        else:
            feasible = 1.0
    energies = energy(U, X)
    best = int(np.argmin(energies))
    return Selection(
        x=X[best].astype(bool),
        energy=float(energies[best]),
        feasible_fraction=feasible,
        solve_s=time.perf_counter() - start,
        solver=solver,
        k=k,
        num_reads=len(X),
        penalty=strength,
        energies=energies,
    )
