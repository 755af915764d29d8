"""Item-KNN content-based filtering maths (pure numpy/scipy), shared by the model and the analysis.

The QuantumCLEF / CAQUBO base model (QUBO.md, "Base model"):

- ``S_ij = <f_i, f_j> / (‖f_i‖‖f_j‖ + shrink)``, self-similarity excluded (``S_jj = 0``);
- each target item ``j`` keeps its ``k`` most similar items ``i`` (column ``j`` of ``W``);
- ``score(u, j) = Σ_{i ∈ train(u)} W_ij``.

Tie rule (documented deviation): every item whose similarity equals the k-th largest similarity of
the column is kept, so a column may hold a few more than ``k`` neighbours. Binary features make such
ties common; keeping all of them makes the model independent of item order and lets the incremental
counterfactual analysis reproduce full re-scoring exactly.
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


def prune_columns(S: np.ndarray, k: int) -> np.ndarray:
    """Keep, in every column, the positive entries ≥ the column's k-th largest (ties kept)."""
    threshold = kth_largest(S, k, axis=0)
    return np.where((S >= threshold[None, :]) & (S > 0), S, 0.0)


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
    return prune_columns(cosine_from_gram(gram, np.diag(gram).copy(), shrink), k)


def itemknn_scores(train: sp.spmatrix, weights: np.ndarray) -> np.ndarray:
    """(users, items) scores ``train @ W`` (train: (users, items) binary interactions)."""
    return np.asarray(sp.csr_matrix(train, dtype=np.float64) @ weights)
