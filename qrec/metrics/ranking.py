"""The one place top-k ranking metrics are computed: tie-aware nDCG@k, Recall@k and HR@k (numpy only).

Every metric is the **expected value over all orders of tied items** (McSherry & Najork, "Computing
information retrieval performance measures efficiently in the presence of tied scores", ECIR 2008),
so no result depends on item codes or on how a sort breaks ties. Definitions: ``docs/metrics.md``.

A ranking is summarised by its *tie groups*: maximal runs of candidate items with the same score, in
decreasing score order. A group of ``g`` items, ``r`` of them relevant, occupying positions
``s .. s+g−1`` (0-based) puts each relevant item at each of its positions with probability 1/g, so

- DCG@k gains ``(r/g) · Σ_{p=s}^{min(s+g,k)−1} w_p`` with ``w_p = 1/log2(p + 2)``;
- the expected number of hits in the top k is ``(r/g) · m`` with ``m = min(s+g, k) − s`` slots inside;
- the probability that none of its items in the top k is relevant is hypergeometric,
  ``C(g−r, m) / C(g, m) = Π_{i<m} (g−r−i)/(g−i)`` (exact: a product of at most k ratios), and
  HR@k = 1 − Π over groups of that probability (1 or 0 for groups wholly inside the top k).

Only groups that start before position k matter, and only one group can straddle k, so a user costs
one partial sort of its scores. :func:`expected_topk` is the single implementation of these formulas;
the incremental counterfactual paths (:mod:`qrec.selection.counterfactual` and its compiled kernel)
compute tie groups themselves and call it.

Why not torchmetrics: its retrieval metrics break ties by sort order and take one flat list of
(query, document, score) triples (1.6M per full MovieLens-100k evaluation; the counterfactual analysis
runs ~10^4 evaluations). The tests check equality with them on tie-free data.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

SCORE_DECIMALS = 9  # scores are O(1e-3..1e2); float64 path differences are ~1e-13, far below 1e-9


def round_scores(scores: np.ndarray) -> np.ndarray:
    """``rint(scores · 10⁹) / 10⁹``: the one rounding every ranking path applies before comparing scores.

    Why: scores that are equal in exact arithmetic (e.g. Item-KNN sums of the same weights) come out of
    different float paths (full re-scoring, incremental updates, BLAS summation orders) a few ulps
    apart; rounding makes every path see the same tie groups. −inf stays −inf.
    """
    scale = 10.0**SCORE_DECIMALS
    return np.rint(np.asarray(scores, dtype=np.float64) * scale) / scale


def dcg_weights(k: int) -> np.ndarray:
    """(k,) 1 / log2(p + 2) for 0-based positions p = 0..k−1."""
    return 1.0 / np.log2(np.arange(2, k + 2))


def ranking_keys(scores: np.ndarray, exclude: np.ndarray | sp.spmatrix | None = None) -> np.ndarray:
    """Rounded scores with excluded entries set to −inf (−inf keys are never ranked).

    Args:
        scores: (users, items) finite scores, higher is better.
        exclude: (users, items) bool (dense or sparse): entries that may not be recommended.

    Raises:
        ValueError: a score is NaN or infinite.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        bad = int((~np.isfinite(scores)).sum())
        raise ValueError(f"{bad} scores are NaN or infinite: a ranking needs finite scores (did the model diverge?).")
    keys = round_scores(scores)
    if exclude is not None:
        if sp.issparse(exclude):
            rows, cols = sp.coo_matrix(exclude).nonzero()
            keys[rows, cols] = -np.inf
        else:
            keys[np.asarray(exclude, dtype=bool)] = -np.inf
    return keys


def tie_groups(
    rows: np.ndarray, keys: np.ndarray, rel: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tie groups starting before position ``k`` of candidate (row, key, relevant) triples.

    The caller passes, for every row, at least every candidate whose key is ≥ the row's k-th largest
    key (extra lower-keyed candidates are fine: groups that start at or after ``k`` are dropped, so
    an incomplete group there never matters). −inf keys must not be passed.

    Returns:
        ``(rows, starts, sizes, rels)`` per group, sorted by row and then by decreasing key; ``starts``
        are 0-based positions within the row.
    """
    order = np.lexsort((-keys, rows))
    rows, keys, rel = rows[order], keys[order], np.asarray(rel, dtype=np.int64)[order]
    n = len(rows)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    new_row = np.r_[True, rows[1:] != rows[:-1]]
    first = np.flatnonzero(new_row | np.r_[False, keys[1:] != keys[:-1]])  # first item of each group
    row_first = np.maximum.accumulate(np.where(new_row, np.arange(n), 0))
    starts = first - row_first[first]
    sizes = np.diff(np.r_[first, n])
    rels = np.add.reduceat(rel, first)
    keep = starts < k
    return rows[first][keep], starts[keep], sizes[keep], rels[keep]


def expected_topk(
    rows: np.ndarray, starts: np.ndarray, sizes: np.ndarray, rels: np.ndarray, k: int, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected DCG@k, hits@k and P(hit@k) of each row over all orders of tied items.

    Args:
        rows, starts, sizes, rels: tie groups that start before ``k`` (see :func:`tie_groups`), sorted
            by row and then rank; each row's groups must be complete down to position k.
        n_rows: number of rows (rows without groups get 0).

    Returns:
        Three (n_rows,) float64 arrays: E[DCG@k], E[hits in the top k], E[HR@k].
    """
    starts, sizes, rels = (np.asarray(a, dtype=np.int64) for a in (starts, sizes, rels))
    cum_w = np.r_[0.0, np.cumsum(dcg_weights(k))]
    ends = np.minimum(starts + sizes, k)
    inside = ends - starts  # slots of the group in the top k
    dcg = np.bincount(rows, weights=rels * (cum_w[ends] - cum_w[starts]) / sizes, minlength=n_rows)
    hits = np.bincount(rows, weights=rels * inside / sizes, minlength=n_rows)
    # P(no relevant item among the group's `inside` top slots) = C(g − r, m) / C(g, m).
    i = np.arange(k)
    ratio = np.maximum(sizes[:, None] - rels[:, None] - i, 0) / np.maximum(sizes[:, None] - i, 1)
    miss = np.where(i < inside[:, None], ratio, 1.0).prod(axis=1)
    # At most one group straddles k and the others miss with probability 1 or 0: HR = min(1, Σ (1 − miss)).
    hr = np.minimum(np.bincount(rows, weights=1.0 - miss, minlength=n_rows), 1.0)
    return dcg, hits, hr


def dense_tie_groups(keys: np.ndarray, relevant: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """:func:`tie_groups` of every row of a dense key matrix (−inf = excluded).

    Args:
        keys: (rows, items) from :func:`ranking_keys`. relevant: (rows, items) bool.
    """
    rows, cols = dense_candidates(keys, k)
    return tie_groups(rows, keys[rows, cols], relevant[rows, cols], k)


def dense_candidates(keys: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of every finite key ≥ its row's k-th largest key (all ties at the k-th key)."""
    if keys.shape[1] > k:
        kth = -np.partition(-keys, k - 1, axis=1)[:, k - 1]
        return np.nonzero((keys >= kth[:, None]) & (keys > -np.inf))
    return np.nonzero(keys > -np.inf)


def ideal_dcg(n_relevant: np.ndarray, k: int) -> np.ndarray:
    """(users,) IDCG@k of users with ``n_relevant`` ≥ 1 relevant items: all of min(n, k) on top."""
    return np.cumsum(dcg_weights(k))[np.minimum(n_relevant, k) - 1]


def ranking_metrics(
    scores: np.ndarray,
    relevant: np.ndarray | sp.spmatrix,
    exclude: np.ndarray | sp.spmatrix | None = None,
    k: int = 10,
    per_user: bool = False,
) -> dict:
    """Tie-aware nDCG@k, Recall@k and HR@k of dense scores against held-out relevant items.

    Args:
        scores: (users, items) scores, higher is better; only rows of users with a relevant item are
            read (they must be finite).
        relevant: (users, items) bool held-out positives (dense or scipy sparse); binary relevance.
        exclude: (users, items) bool known positives (e.g. training items), never ranked.
        k: cut-off.
        per_user: also return ``users`` (the evaluated user ids) and ``per_user``: a dict of (users,)
            arrays under the same metric names (for user-level bootstraps).

    Returns:
        ``{"ndcg_{k}", "recall_{k}", "hr_{k}": mean over users with ≥ 1 relevant item, "n_users"}``.
        Recall@k = E[hits] / |relevant|; nDCG@k = E[DCG@k] / IDCG@k with IDCG over min(|relevant|, k).

    Raises:
        ValueError: shapes disagree, k < 1, no user has a relevant item, or a score is not finite.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a (users, items) matrix, got shape {scores.shape}.")
    if int(k) != k or k < 1:
        raise ValueError(f"k={k} must be a positive integer.")
    k = int(k)
    relevant = sp.csr_matrix(relevant, dtype=bool)
    for name, matrix in (("relevant", relevant), ("exclude", exclude)):
        if matrix is not None and tuple(matrix.shape) != scores.shape:
            raise ValueError(f"{name} has shape {tuple(matrix.shape)} but scores have {scores.shape}.")
    n_rel_all = np.diff(relevant.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    if len(users) == 0:
        raise ValueError("No user has a relevant item: the evaluation split is empty.")
    excl = None if exclude is None else (sp.csr_matrix(exclude)[users] if sp.issparse(exclude)
                                         else np.asarray(exclude)[users])  # fmt: skip
    keys = ranking_keys(scores[users], excl)
    groups = dense_tie_groups(keys, relevant[users].toarray(), k)
    dcg, hits, hr = expected_topk(*groups, k, len(users))
    n_rel = n_rel_all[users]
    values = {f"ndcg_{k}": dcg / ideal_dcg(n_rel, k), f"recall_{k}": hits / n_rel, f"hr_{k}": hr}
    out: dict = {name: float(v.mean()) for name, v in values.items()}
    out["n_users"] = len(users)
    if per_user:
        out.update(users=users, per_user=values)
    return out
