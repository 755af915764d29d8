"""The one place top-k ranking metrics are computed: nDCG@k, Recall@k, HR@k (pure numpy).

Why not torchmetrics: its retrieval metrics (``RetrievalNormalizedDCG`` ...) take one flat list of
(query, document, score) triples and group them per query; full ranking of 1,682 items for 943
users is 1.6M triples per evaluation and the counterfactual analysis runs ~10^4 evaluations. A
vectorised top-k over a dense (users, items) score matrix is orders of magnitude faster, and being
numpy-only it is shared with :mod:`qrec.selection` (which must not import torch or Lightning).

Conventions (docs/evaluation.md):

- binary relevance; DCG@k = Σ_p rel_p / log2(p + 1) for positions p = 1..k (= (2^rel − 1)/log2(p+1));
- IDCG@k over min(|relevant|, k) items; users without relevant items are skipped (not counted as 0);
- each user's training items are excluded from the ranking;
- ties are broken by the lower item index, and scores are compared after rounding to
  :data:`SCORE_DECIMALS` decimals, so every evaluation path (full re-scoring, incremental updates,
  different BLAS summation orders) ranks exactly-tied items identically.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

SCORE_DECIMALS = 9  # scores are O(1..100); float64 path differences are ~1e-13, far below 1e-9


def round_scores(scores: np.ndarray) -> np.ndarray:
    """``rint(scores · 10⁹) / 10⁹``: the one rounding every ranking path uses (−inf stays −inf)."""
    scale = 10.0**SCORE_DECIMALS
    return np.rint(np.asarray(scores, dtype=np.float64) * scale) / scale


def ranking_keys(scores: np.ndarray, exclude: np.ndarray | sp.spmatrix | None = None) -> np.ndarray:
    """Rounded scores with excluded (training) entries set to −inf.

    Args:
        scores: (users, items) float scores, higher is better.
        exclude: (users, items) bool (dense or sparse) entries that may not be recommended.

    Returns:
        (users, items) float64 keys; rank by (−key, item index).
    """
    keys = round_scores(scores)
    if exclude is not None:
        if sp.issparse(exclude):
            rows, cols = exclude.nonzero()
            keys[rows, cols] = -np.inf
        else:
            keys[np.asarray(exclude, dtype=bool)] = -np.inf
    return keys


def rank_candidates(rows: np.ndarray, cols: np.ndarray, keys: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Order candidate (row, col, key) triples by (row, −key, col) and keep the first ``k`` per row.

    The caller guarantees that each row's true top-k (under the same order) is among its candidates.

    Returns:
        ``(rows, cols, positions)`` of the kept triples; positions are 0-based ranks within the row.
    """
    order = np.lexsort((cols, -keys, rows))
    rows, cols = rows[order], cols[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, len(rows)])
    pos = np.arange(len(rows)) - np.repeat(starts, sizes)
    keep = pos < k
    return rows[keep], cols[keep], pos[keep]


def topk_candidates(keys: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Top-``k`` items of every row of a dense key matrix (ties by lower index).

    Returns:
        ``(rows, cols, positions)`` as :func:`rank_candidates`.
    """
    n_items = keys.shape[1]
    if n_items > k:
        kth = -np.partition(-keys, k - 1, axis=1)[:, k - 1]  # k-th largest key of each row
        rows, cols = np.nonzero(keys >= kth[:, None])  # every tie at the k-th key is a candidate
    else:
        rows, cols = np.nonzero(np.ones_like(keys, dtype=bool))
    return rank_candidates(rows, cols, keys[rows, cols], k)


def dcg_weights(k: int) -> np.ndarray:
    """(k,) 1 / log2(p + 1) for positions p = 1..k."""
    return 1.0 / np.log2(np.arange(2, k + 2))


def ranking_metrics(
    scores: np.ndarray,
    relevant: np.ndarray | sp.spmatrix,
    exclude: np.ndarray | sp.spmatrix | None = None,
    k: int = 10,
    per_user: bool = False,
) -> dict[str, float | np.ndarray]:
    """nDCG@k, Recall@k and HR@k of dense scores against held-out relevant items.

    Args:
        scores: (users, items) scores; higher is better.
        relevant: (users, items) bool held-out positives (dense or sparse).
        exclude: (users, items) bool training positives, removed from the ranking.
        k: cut-off.
        per_user: also return the per-user arrays (``users``, ``ndcg``, ``recall``, ``hr``).

    Returns:
        ``{"ndcg": ..., "recall": ..., "hr": ..., "n_users": ...}``: means over users with ≥ 1
        relevant item. Recall@k = hits / |relevant| (RecBole's convention); HR@k = [hits > 0].
    """
    relevant = sp.csr_matrix(relevant, dtype=bool)
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if len(users) == 0:
        raise ValueError("No user has a relevant item: the evaluation split is empty.")
    keys = ranking_keys(np.asarray(scores)[users], None if exclude is None else _rows(exclude, users))
    rows, cols, pos = topk_candidates(keys, k)
    rel = np.asarray(relevant[users][rows, cols]).ravel()
    n_rel = np.diff(relevant.indptr)[users]
    return _aggregate(users, rows, pos, rel, n_rel, k, per_user)


def _rows(matrix: np.ndarray | sp.spmatrix, users: np.ndarray) -> np.ndarray | sp.spmatrix:
    return sp.csr_matrix(matrix)[users] if sp.issparse(matrix) else np.asarray(matrix)[users]


def _aggregate(users, rows, pos, rel, n_rel, k, per_user) -> dict:
    weights = dcg_weights(k)
    dcg = np.bincount(rows, weights=rel * weights[pos], minlength=len(users))
    hits = np.bincount(rows, weights=rel.astype(float), minlength=len(users))
    idcg = np.cumsum(weights)[np.minimum(n_rel, k) - 1]
    ndcg, recall, hr = dcg / idcg, hits / n_rel, (hits > 0).astype(float)
    out: dict = {
        "ndcg": float(ndcg.mean()),
        "recall": float(recall.mean()),
        "hr": float(hr.mean()),
        "n_users": len(users),
    }
    if per_user:
        out.update(users=users, ndcg_per_user=ndcg, recall_per_user=recall, hr_per_user=hr)
    return out
