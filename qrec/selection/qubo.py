"""QUBO builders for feature selection: CAQUBO and the baselines MIQUBO, CoQUBO, QUBO-Boosting, CQFS.

Every builder returns a dense (n, n) float64 ``Q``; the selection minimises ``E(x) = xᵀ Q x`` over
``x ∈ {0, 1}ⁿ`` (``x_i = 1``: keep feature ``i``). Formulas: ``docs/qubo.md``.

Layouts. ``dimod.as_bqm(Q, "BINARY")`` turns the diagonal into linear terms and ``Q_ij + Q_ji`` into
the coupling, so a *symmetric* Q counts each pair twice. Builders return **upper-triangular** Q by
default (each pair once, what the formulas mean); :func:`to_upper` converts any Q to the
upper-triangular matrix with the same energy, which is what the solvers use.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

ALPHA = 0.5  # relevance/redundancy weight of Ferrari Dacrema et al. (SIGIR 2022)


def to_upper(Q: np.ndarray) -> np.ndarray:
    """Upper-triangular matrix with the same energy xᵀQx for every binary x (U_ij = Q_ij + Q_ji)."""
    Q = _square(Q)
    return np.triu(Q + Q.T, 1) + np.diag(np.diag(Q))


def energy(Q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """xᵀQx for one (n,) or many (reads, n) binary vectors (summed in float64)."""
    X = np.atleast_2d(np.asarray(x, dtype=np.float64))
    e = np.einsum("ri,ij,rj->r", X, np.asarray(Q, dtype=np.float64), X)
    return e if np.ndim(x) == 2 else e[0]


def _square(Q: np.ndarray) -> np.ndarray:
    Q = np.asarray(Q, dtype=np.float64)
    if Q.ndim != 2 or Q.shape[0] != Q.shape[1]:
        raise ValueError(f"Q must be a square (n, n) matrix, got shape {Q.shape}.")
    if not np.isfinite(Q).all():
        raise ValueError("Q holds NaN or inf entries.")
    return Q


def _normalise(Q: np.ndarray) -> np.ndarray:
    """Divide by the largest absolute entry (the papers' "m = largest entry"); all-zero Q stays 0."""
    m = np.abs(Q).max() if Q.size else 0.0
    return Q / m if m > 0 else Q


def _weighted(diag: np.ndarray, off: np.ndarray, alpha: float) -> np.ndarray:
    """α·diag(Q) + (1 − α)·offdiag(Q), as a diagonal matrix.

    Deviation: the authors' code broadcast the diagonal *vector* across rows, which weights relevance
    by α·K instead of α; we use a diagonal matrix, the clean reading of their energy.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha} must be in [0, 1].")
    off = off.copy()
    np.fill_diagonal(off, 0.0)
    return alpha * np.diag(diag) + (1.0 - alpha) * off


# --- CAQUBO --------------------------------------------------------------------------------------
def caqubo(
    delta_single: np.ndarray,
    delta_pair: np.ndarray,
    pair_term: Literal["raw", "interaction"] = "raw",
    layout: Literal["upper", "symmetric"] = "upper",
) -> np.ndarray:
    """Counterfactual-analysis QUBO (arXiv 2410.15272).

    Sign convention: ``δ > 0`` means removing the feature(s) lowers the metric, so ``Q_ii = −δ_i`` and
    ``Q_ij = −δ_ij`` make keeping helpful features lower the energy.

    Args:
        delta_single: (n,) δ_i = M(F) − M(F without i).
        delta_pair: (n, n) δ_ij = M(F) − M(F without i and j); only i ≠ j entries are read (either
            triangle; the matrix is symmetrised by averaging).
        pair_term: ``"raw"`` uses δ_ij as published (the sources suggest raw). ``"interaction"`` uses
            δ_ij − δ_i − δ_j, the part of the pair effect not explained by the two singles; with raw
            δ_ij ≈ δ_i + δ_j the pair terms double-count the singles and the optimum keeps more.
        layout: ``"upper"`` (default): Q_ij on i < j only, so xᵀQx = −Σ δ_i x_i − Σ_{i<j} δ_ij x_i x_j,
            each pair counted once. ``"symmetric"``: Q_ij = Q_ji = −δ_ij, the literal reading of the
            paper under which xᵀQx (and dimod) counts every pair twice.

    Returns:
        (n, n) Q.
    """
    d1 = np.asarray(delta_single, dtype=np.float64)
    d2 = np.asarray(delta_pair, dtype=np.float64)
    n = len(d1)
    if d1.ndim != 1 or d2.shape != (n, n):
        raise ValueError(f"delta_single must be (n,) and delta_pair (n, n); got {d1.shape} and {d2.shape}.")
    off = ~np.eye(n, dtype=bool)
    if not np.isfinite(d1).all() or not np.isfinite(d2[off]).all():
        raise ValueError("Counterfactual deltas hold NaN/inf (were all pairs computed?).")
    pair = (d2 + d2.T) / 2.0
    if pair_term == "interaction":
        pair = pair - d1[:, None] - d1[None, :]
    elif pair_term != "raw":
        raise ValueError(f"pair_term={pair_term!r}: choose 'raw' or 'interaction'.")
    Q = -pair * off
    if layout == "upper":
        Q = np.triu(Q, 1)
    elif layout != "symmetric":
        raise ValueError(f"layout={layout!r}: choose 'upper' or 'symmetric'.")
    Q[np.diag_indices(n)] = -d1
    return Q


# --- Ferrari Dacrema et al. (SIGIR 2022): MIQUBO, CoQUBO, QUBO-Boosting ----------------------------
def _discretise(X: np.ndarray) -> np.ndarray:
    """Floor continuous values to integers (the paper's discretisation); binary data is unchanged."""
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be (samples, features), got shape {X.shape}.")
    return np.floor(X).astype(np.int64)


def _entropy(counts: np.ndarray, axis) -> np.ndarray:
    total = counts.sum(axis=axis, keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    return -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(axis=axis)


def _onehot(values: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """(samples, Σ_i |values of feature i|) indicator matrix and the column block of each feature."""
    blocks, cols, start = [], [], 0
    for i in range(values.shape[1]):
        levels = np.unique(values[:, i])
        cols.append((values[:, i][:, None] == levels[None, :]).astype(np.float64))
        blocks.append(np.arange(start, start + len(levels)))
        start += len(levels)
    return np.hstack(cols), blocks


def mutual_information(X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> tuple:
    """MI(x_i; y) and CMI(x_i; y | x_j) of discretised features, in nats.

    Returns:
        ``(mi, cmi)``: (n,) and (n, n) with ``cmi[i, j] = CMI(x_i; y | x_j)`` (not symmetric).
    """
    V = _discretise(X)
    y = np.asarray(y).ravel()
    if len(y) != len(V):
        raise ValueError(f"y has {len(y)} entries for {len(V)} samples.")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    classes = np.unique(y)
    if V.min() >= 0 and V.max() <= 1:
        return _binary_mutual_information(V.astype(np.float64), y, w, classes)
    onehot, blocks = _onehot(V)
    # counts[c][a, b]: weighted number of samples of class c with one-hot columns a and b both on.
    counts = np.stack([(onehot * (w * (y == c))[:, None]).T @ onehot for c in classes], axis=-1)
    n = len(blocks)
    mi, cmi = np.zeros(n), np.zeros((n, n))
    total = counts[blocks[0]][:, blocks[0]].sum()
    for i, bi in enumerate(blocks):
        joint = np.stack([np.diag(counts[:, :, c])[bi] for c in range(len(classes))], axis=-1)  # (|x_i|, |y|)
        mi[i] = _mi_from_joint(joint)
        for j, bj in enumerate(blocks):
            if i == j:
                continue
            cube = counts[np.ix_(bi, bj)]  # (|x_i|, |x_j|, |y|)
            pj = cube.sum(axis=(0, 2)) / total
            cmi[i, j] = sum(pj[b] * _mi_from_joint(cube[:, b, :]) for b in range(cube.shape[1]))
    return mi, cmi


def _xlogx_ratio(joint: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    """Σ p(a,b) log(p(a,b) / (p(a) p(b))) summed over the leading axes' cells (arrays broadcast)."""
    ratio = np.divide(joint, pa * pb, out=np.ones_like(joint), where=(joint > 0) & (pa * pb > 0))
    return np.where(joint > 0, joint * np.log(ratio), 0.0)


def _binary_mutual_information(X: np.ndarray, y: np.ndarray, w: np.ndarray, classes: np.ndarray) -> tuple:
    """Vectorised MI/CMI for 0/1 features: all n² count tables from 2·2·|y| matrix products."""
    total = w.sum()
    ind = [1.0 - X, X]
    wc = [w * (y == c) for c in classes]
    # joint[a, b, c][i, j] = P(x_i = a, x_j = b, y = c)
    joint = (
        np.stack(
            [
                np.stack(
                    [
                        np.stack([(ind[a] * wc[c][:, None]).T @ ind[b] for c in range(len(classes))])
                        for b in range(2)
                    ]
                )
                for a in range(2)
            ]
        )
        / total
    )  # (2, 2, |y|, n, n)
    # MI(x_i; y): from the diagonal i == j with a == b.
    pxy = np.stack([np.diagonal(joint[a, a], axis1=-2, axis2=-1) for a in range(2)])  # (2, |y|, n)
    px = pxy.sum(1, keepdims=True)
    py = np.array([wc[c].sum() / total for c in range(len(classes))])[None, :, None]
    mi = _xlogx_ratio(pxy, px, py).sum((0, 1))
    # CMI(x_i; y | x_j) = Σ p(a,b,c) log(p(a,b,c) p(b) / (p(a,b) p(b,c)))
    p_ab = joint.sum(2, keepdims=True)
    p_bc = joint.sum(0, keepdims=True)
    p_b = joint.sum((0, 2), keepdims=True)
    num = joint * p_b
    den = p_ab * p_bc
    ratio = np.divide(num, den, out=np.ones_like(joint), where=(joint > 0) & (den > 0))
    cmi = np.where(joint > 0, joint * np.log(ratio), 0.0).sum((0, 1, 2))
    np.fill_diagonal(cmi, 0.0)
    return mi, cmi


def _mi_from_joint(joint: np.ndarray) -> float:
    """MI of a (|a|, |b|) count table: H(a) + H(b) − H(a, b)."""
    if joint.sum() <= 0:
        return 0.0
    return float(_entropy(joint.sum(1), 0) + _entropy(joint.sum(0), 0) - _entropy(joint.ravel(), 0))


def miqubo(
    X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, alpha: float = ALPHA
) -> np.ndarray:
    """MIQUBO: Q_ii = −MI(x_i; y)/m, Q_ij = −CMI(x_i; y | x_j)/m (i ≠ j, not symmetric), α-weighted.

    Args:
        X: (samples, n) features (floored to integers). For recommendation a sample is a (user, item)
            pair with the item's features; ``y`` is the interaction label with 1:1 negatives.
        y: (samples,) labels. sample_weight: optional (samples,) weights (duplicate counts).
        alpha: relevance weight (0.5 in the paper); see :func:`_weighted` for the diagonal-matrix fix.
    """
    mi, cmi = mutual_information(X, y, sample_weight)
    Q = _normalise(-cmi + np.diag(-mi))  # m = largest |entry|
    return _weighted(np.diag(Q), Q, alpha)


def _weighted_corr(A: np.ndarray, B: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pearson correlations between columns of A (s, p) and B (s, q) with sample weights; 0 if constant."""
    w = w / w.sum()
    A = A - w @ A
    B = B - w @ B
    cov = (A * w[:, None]).T @ B
    sa, sb = np.sqrt((A * A * w[:, None]).sum(0)), np.sqrt((B * B * w[:, None]).sum(0))
    denom = np.outer(sa, sb)
    return np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)


def coqubo(
    X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, alpha: float = ALPHA
) -> np.ndarray:
    """CoQUBO ("QUBO-Correlation"): Q_ij = +ρ(x_i, x_j)/m, Q_ii = −ρ(x_i, y)/m (signed), α-weighted.

    Features are standardised first (Pearson correlation is invariant to it, so this is implicit).
    """
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    Q = _weighted_corr(X, X, w)
    np.fill_diagonal(Q, -_weighted_corr(X, y, w)[:, 0])
    Q = _normalise(Q)
    return _weighted(np.diag(Q), Q, alpha)


def qubo_boosting(
    H: np.ndarray,
    y: np.ndarray,
    sample_weight: np.ndarray | None = None,
    lambda_reg: float = 0.5,
    alpha: float = ALPHA,
) -> np.ndarray:
    """QUBO-Boosting: Q_ij = ρ(h_i, h_j)/m, Q_ii = (N_s/n² + λ − 2ρ(h_i, y))/m (not negated), α-weighted.

    Args:
        H: (samples, n) in-sample predictions of n one-feature models (their code: LinearSVC; for a
            recommender, the base model restricted to feature i).
        y: (samples,) labels. lambda_reg: λ (0.5 in the paper). N_s = number of samples.
    """
    H = np.asarray(H, dtype=np.float64)
    n_s, n = H.shape
    w = np.ones(n_s) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    Q = _weighted_corr(H, H, w)
    rho_y = _weighted_corr(H, np.asarray(y, dtype=np.float64).reshape(-1, 1), w)[:, 0]
    np.fill_diagonal(Q, n_s / n**2 + lambda_reg - 2.0 * rho_y)
    Q = _normalise(Q)
    return _weighted(np.diag(Q), Q, alpha)


# --- CQFS (Nembrini, Ferrari Dacrema, Cremonesi, Entropy 2021) ---------------------------------------
def cqfs(
    icm: np.ndarray | sp.spmatrix,
    s_cf: np.ndarray | sp.spmatrix,
    alpha: float = 1.0,
    beta: float = 1e-3,
) -> np.ndarray:
    """Collaborative-driven QUBO: keep features whose item pairs are also collaboratively similar.

    The item-pair matrix IPM is −α where both the content similarity S_CBF = ICM·ICMᵀ and the
    collaborative similarity S_CF are non-zero ("keep"), +β where only the content one is ("drop");
    the self-pair diagonal is ignored. Q = ICMᵀ · IPM · ICM, divided by its largest |entry| so the
    penalty strengths of the paper's grid apply (they normalised after adding the penalty).

    Args:
        icm: (items, n) item content matrix. s_cf: (items, items) collaborative item-item weights
            (e.g. ItemKNN-CF on the training interactions); only its non-zero pattern is used.
        alpha: weight of "keep" pairs (1 in the paper). beta: weight of "drop" pairs; the paper sweeps
            {1, 1e-1, ..., 1e-4}; 1e-3 is the middle of that grid.
    """
    icm = sp.csr_matrix(icm, dtype=np.float64)
    s_cf = sp.csr_matrix(s_cf)
    n_items = icm.shape[0]
    if s_cf.shape != (n_items, n_items):
        raise ValueError(f"s_cf must be ({n_items}, {n_items}) like the ICM's items, got {s_cf.shape}.")
    cbf = (icm @ icm.T).astype(bool)
    cf = s_cf.astype(bool)
    both = cbf.multiply(cf).astype(bool)
    only_cbf = (cbf.astype(np.int8) - both.astype(np.int8)).astype(bool)
    ipm = (-alpha * both.astype(np.float64) + beta * only_cbf.astype(np.float64)).tolil()
    ipm.setdiag(0.0)
    Q = np.asarray((icm.T @ ipm.tocsr() @ icm).todense())
    return _normalise(Q)
