"""Item-KNN content-based filtering maths (pure numpy/scipy), shared by the model and the analysis.

The QuantumCLEF / CAQUBO base model (docs/qubo.md):

- ``S_ij = <f_i, f_j> / (‖f_i‖‖f_j‖ + shrink)``, self-similarity excluded (``S_jj = 0``);
- each target item ``j`` keeps its ``k`` most similar items ``i`` (column ``j`` of ``W``);
- ``score(u, j) = Σ_{i ∈ train(u)} W_ij``.

Tie rule: binary features make equal similarities common (an item with one feature is equally
similar to every item with the same feature count), so the k-th place is often shared. Exactly
``k`` neighbours are kept, ties broken by the lower item index (reference implementations break them
arbitrarily through ``argpartition``); a fixed rule lets the incremental counterfactual analysis
reproduce full re-scoring exactly. Zero similarities are never kept.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def as_dense_features(features: np.ndarray | sp.spmatrix, n_items: int | None = None) -> np.ndarray:
    """(items, features) float64 dense copy, validated.

    Raises:
        ValueError: wrong number of rows, non-finite or negative values.
    """
    F = features.toarray() if sp.issparse(features) else np.asarray(features)
    F = np.array(F, dtype=np.float64)
    if F.ndim != 2:
        raise ValueError(f"features must be a 2-D (items, features) matrix, got shape {F.shape}.")
    if n_items is not None and F.shape[0] != n_items:
        raise ValueError(
            f"The feature matrix has {F.shape[0]} rows but the data has {n_items} items: rows must be "
            "item codes 0..n_items-1 in the data module's order."
        )
    if not np.isfinite(F).all():
        raise ValueError("The feature matrix holds NaN or inf values.")
    return F


def cosine_from_gram(gram: np.ndarray, sq_norms: np.ndarray, shrink: float) -> np.ndarray:
    """Shrunk cosine ``S = G / (‖f_i‖‖f_j‖ + shrink)`` with a zero diagonal.

    Args:
        gram: (items, items) ``F Fᵀ``.
        sq_norms: (items,) squared feature norms (``diag(F Fᵀ)``).
    """
    norms = np.sqrt(sq_norms)
    S = gram / (np.outer(norms, norms) + shrink)  # exact formula reused by the incremental path
    np.fill_diagonal(S, 0.0)
    return S


def kth_largest(values: np.ndarray, k: int, axis: int = 0) -> np.ndarray:
    """k-th largest entry along ``axis`` (0 where there are fewer than ``k`` entries)."""
    n = values.shape[axis]
    if k > n:
        shape = list(values.shape)
        del shape[axis]
        return np.zeros(shape)
    return np.partition(values, n - k, axis=axis).take(n - k, axis=axis)


def prune_rows(S: np.ndarray, k: int) -> np.ndarray:
    """Keep the ``k`` largest positive entries of every row (ties by lower column index), zero the rest.

    Args:
        S: (rows, n) values; columns are in index order.
    """
    threshold = kth_largest(S, k, axis=1)[:, None]
    above = S > threshold
    need = k - above.sum(axis=1, keepdims=True)
    tie = S == threshold
    keep = (above | (tie & (np.cumsum(tie, axis=1) <= need))) & (S > 0)
    return np.where(keep, S, 0.0)


def itemknn_weights(features: np.ndarray, k: int = 100, shrink: float = 5.0) -> np.ndarray:
    """Item-KNN neighbour weights.

    Args:
        features: (items, features) dense item feature matrix (masked columns are zeros).
        k: neighbours kept per target item.
        shrink: added to the cosine denominator; damps similarities of items with few features.

    Returns:
        (items, items) ``W``: ``W[i, j]`` is the weight of train item ``i`` for candidate ``j``.
    """
    if k < 1:
        raise ValueError(f"k={k} neighbours must be ≥ 1.")
    if shrink < 0:
        raise ValueError(f"shrink={shrink} must be ≥ 0.")
    gram = features @ features.T
    # S is symmetric, so pruning row j (the similarities of target j) prunes column j of W.
    return prune_rows(cosine_from_gram(gram, np.diag(gram).copy(), shrink), k).T


def itemknn_scores(train: sp.spmatrix, weights: np.ndarray) -> np.ndarray:
    """(users, items) scores ``train @ W`` (train: (users, items) binary interactions)."""
    return np.asarray(sp.csr_matrix(train, dtype=np.float64) @ weights)
