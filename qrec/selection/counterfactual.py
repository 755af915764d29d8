"""Counterfactual analysis for CAQUBO: how much the ranking metric drops when features are masked.

``δ_i = M(F) − M(F \\ {i})`` and ``δ_ij = M(F) − M(F \\ {i, j})`` (docs/qubo.md). ``δ > 0``: removing the
feature(s) hurts, so they help.

Two paths:

- :func:`counterfactual_deltas`: brute force for any model, given ``metric(keep) -> float``
  (n + n(n−1)/2 calls).
- :class:`ItemKNNCounterfactual`: the Item-KNN CBF base model, incremental and exact (equal to
  brute-force re-scoring; tested). Why it is not a cheap low-rank update: masking features of the
  item set ``A`` (items that have a masked feature) changes the Gram matrix only in the rows/columns
  of ``A`` (``G' = G − F_M F_Mᵀ``), but it also lowers the norms of ``A``'s items, so ``S_ij`` rises
  for every ``i ∈ A`` in *every* column ``j``; top-k pruning then evicts other neighbours. On the
  MovieLens KG features one pair mask changes 20k–175k neighbour weights and 0.25M–1.1M of the 1.6M
  user–item scores. The incremental path therefore

  1. recomputes only the columns ``j ∈ A`` in full; for ``j ∉ A`` the new neighbours are provably
     among the old neighbours ∪ ``A`` (old values can only rise), so it re-ranks ``k + |A|`` values;
  2. turns the weight change ``ΔW`` (sparse) into score changes with one sparse product ``R ΔW``;
  3. updates each user's top-10 from a cached top-``L`` list: unchanged items outside the old top-L
     cannot come back while the new 10th key is above the old L-th key; users where that bound
     fails are re-ranked in full. The metric is the tie-aware expectation of
     :mod:`qrec.metrics.ranking`, computed from the new tie groups by its :func:`expected_topk`.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from qrec.metrics.ranking import (
    dense_candidates,
    dense_tie_groups,
    expected_topk,
    ideal_dcg,
    ranking_keys,
    round_scores,
    tie_groups,
)
from qrec.selection.itemknn import (
    as_dense_features,
    cosine_from_gram,
    itemknn_scores,
    itemknn_weights,
    kth_largest,
    prune_rows,
)


@dataclass
class Counterfactual:
    """Result of a counterfactual analysis over ``n`` features.

    Attributes:
        base: M(F), the metric with every feature.
        single: (n,) δ_i.
        pair: (n, n) symmetric δ_ij with a zero diagonal (NaN where pairs were not computed).
        seconds: wall-clock time of the analysis.
        evaluations: number of masked evaluations.
    """

    base: float
    single: np.ndarray
    pair: np.ndarray
    seconds: float
    evaluations: int
    extra: dict = field(default_factory=dict)


def _progress(iterable, total: int, enabled: bool, desc: str):
    """tqdm over ``iterable`` (or a manual bar when it is None); ``iterable`` itself when disabled."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, mininterval=2.0)


def counterfactual_deltas(
    metric: Callable[[np.ndarray], float],
    n_features: int,
    pairs: bool = True,
    progress: bool = False,
) -> Counterfactual:
    """Brute-force δ_i and δ_ij for any model.

    Args:
        metric: ``metric(keep) -> float`` where ``keep`` is a (n_features,) bool array, True = the
            feature is used, False = masked (its column zeroed for every item).
        n_features: number of features n.
        pairs: also compute the n(n−1)/2 pair deltas (else ``pair`` is NaN off the diagonal).
        progress: show a tqdm bar.
    """
    if n_features < 1:
        raise ValueError(f"n_features={n_features} must be ≥ 1.")
    start = time.perf_counter()
    keep = np.ones(n_features, dtype=bool)
    base = float(metric(keep))
    single = np.zeros(n_features)
    for i in range(n_features):
        keep[i] = False
        single[i] = base - float(metric(keep))
        keep[i] = True
    pair = np.full((n_features, n_features), np.nan)
    np.fill_diagonal(pair, 0.0)
    n_pairs = 0
    if pairs:
        combos = itertools.combinations(range(n_features), 2)
        total = n_features * (n_features - 1) // 2
        for i, j in _progress(combos, total, progress, "counterfactual pairs"):
            keep[[i, j]] = False
            pair[i, j] = pair[j, i] = base - float(metric(keep))
            keep[[i, j]] = True
            n_pairs += 1
    return Counterfactual(base, single, pair, time.perf_counter() - start, n_features + n_pairs)


def _pick_backend(backend: str) -> str:
    """``numba`` when asked or available (``auto``), else ``numpy``."""
    if backend == "numpy":
        return "numpy"
    try:
        import numba  # noqa: F401
    except ImportError:
        if backend == "numba":
            raise ImportError(
                "backend='numba' needs numba: pip install numba (or use backend='numpy')."
            ) from None
        return "numpy"
    return "numba"


def _keep_topk(vals: np.ndarray, idx: np.ndarray, k: int) -> np.ndarray:
    """Row-wise mask of the ``k`` best positive candidates by (value desc, item index asc).

    Args:
        vals: (rows, m) candidate values (0 for padding). idx: (rows, m) their item indices, in any
            order (padding: any index; it is never kept because its value is 0).
    """
    thr = kth_largest(vals, k, axis=1)[:, None]
    above = vals > thr
    tie = (vals == thr) & (vals > 0)
    need = k - above.sum(axis=1)
    keep = above & (vals > 0)
    short = tie.sum(axis=1) > need  # rows where only some of the tied items fit
    keep |= tie & ~short[:, None]
    if short.any():
        tr, tc = np.nonzero(tie & short[:, None])
        order = np.lexsort((idx[tr, tc], tr))  # by row, then item index
        tr, tc = tr[order], tc[order]
        starts = np.flatnonzero(np.r_[True, tr[1:] != tr[:-1]])
        rank = np.arange(len(tr)) - np.repeat(starts, np.diff(np.r_[starts, len(tr)]))
        ok = rank < need[tr]
        keep[tr[ok], tc[ok]] = True
    return keep


def check_features(features: np.ndarray | sp.spmatrix, n_items: int) -> np.ndarray:
    """Dense (items, n) features; rows must match the items and no column may be all zero.

    Raises:
        ValueError: wrong row count, or all-zero columns (masking them cannot change any model, so
            their δ would be a meaningless 0; :mod:`qrec.data.features` drops them).
    """
    F = as_dense_features(features, n_items)
    empty = np.flatnonzero(~(F != 0).any(axis=0))
    if len(empty):
        raise ValueError(
            f"Feature column(s) {empty[:10].tolist()} are all zero: masking them cannot change the "
            "model. Remove them (qrec.data.features drops empty columns) before the analysis."
        )
    return F


def _pair_chunk(args):
    """Worker: δ for a chunk of pairs (uses the evaluator inherited through fork)."""
    pairs = args
    ev = _WORKER_EVALUATOR
    return [ev.base - ev.evaluate(list(p)) for p in pairs]


_WORKER_EVALUATOR = None


def run_counterfactual(
    evaluator, pairs: bool = True, progress: bool = True, n_jobs: int = 1, chunk: int = 64
) -> Counterfactual:
    """All δ_i and (optionally) δ_ij of an evaluator with ``base``, ``n_features`` and ``evaluate(masked)``.

    Args:
        n_jobs: worker processes (fork; POSIX only). Each evaluation is independent, so pairs are
            split into chunks of ``chunk`` and the results gathered in order.
    """
    global _WORKER_EVALUATOR
    start = time.perf_counter()
    n = evaluator.n_features
    single = np.array([evaluator.base - evaluator.evaluate([i]) for i in range(n)])
    pair = np.full((n, n), np.nan)
    np.fill_diagonal(pair, 0.0)
    combos = list(itertools.combinations(range(n), 2)) if pairs else []
    if combos:
        chunks = [combos[i : i + chunk] for i in range(0, len(combos), chunk)]
        bar = _progress(None, len(combos), progress, "counterfactual pairs")
        if n_jobs > 1:
            import multiprocessing as mp

            _WORKER_EVALUATOR = evaluator
            try:
                with mp.get_context("fork").Pool(n_jobs) as pool:
                    results = []
                    for res in pool.imap(_pair_chunk, chunks):
                        results.append(res)
                        if bar is not None:
                            bar.update(len(res))
            finally:
                _WORKER_EVALUATOR = None
        else:
            results = []
            for c in chunks:
                results.append([evaluator.base - evaluator.evaluate(list(p)) for p in c])
                if bar is not None:
                    bar.update(len(c))
        if bar is not None:
            bar.close()
        values = np.concatenate(results)
        ii, jj = np.array(combos).T
        pair[ii, jj] = pair[jj, ii] = values
    return Counterfactual(
        evaluator.base,
        single,
        pair,
        time.perf_counter() - start,
        n + len(combos),
        # Workers' counts stay in the workers.
        extra={"full_reranks": getattr(evaluator, "full_reranks", None) if n_jobs == 1 else None},
    )


class RankingCache:
    """Each evaluated user's top-``L`` ranking under base scores, to update nDCG@cutoff from sparse changes.

    The metric is the tie-aware expected nDCG of :mod:`qrec.metrics.ranking`; every update re-derives
    the tie groups down to the cutoff-th key and scores them with its :func:`expected_topk`, so the
    incremental value equals :func:`qrec.metrics.ranking_metrics` on the full new scores exactly.

    Args:
        scores: (users, items) base scores (all users; only users with a relevant item are kept).
        train: (users, items) training interactions, excluded from rankings.
        relevant: (users, items) held-out positives.
        cutoff: the metric's k. top_l: cached ranking length (≥ cutoff).
    """

    def __init__(
        self, scores: np.ndarray, train: sp.spmatrix, relevant: sp.spmatrix, cutoff: int = 10, top_l: int = 40
    ):
        train = sp.csr_matrix(train, dtype=np.float64)
        relevant = sp.csr_matrix(relevant, dtype=bool)
        if relevant.shape != train.shape or scores.shape != train.shape:
            raise ValueError(
                f"scores {scores.shape}, train {train.shape} and relevant {relevant.shape} "
                "must have one shape."
            )
        if cutoff < 1 or top_l < cutoff:
            raise ValueError(f"Need 1 ≤ cutoff ({cutoff}) ≤ top_l ({top_l}).")
        self.cutoff, self.top_l = cutoff, top_l
        # Only users with a relevant item count in the metric; the rest never need scores.
        self.users = np.flatnonzero(np.diff(relevant.indptr) > 0)
        if len(self.users) == 0:
            raise ValueError("No user has a relevant item: the evaluation split is empty.")
        self.train_u = train[self.users]
        self.excluded = self.train_u.astype(bool)
        self.rel = relevant[self.users].toarray()
        self.idcg = ideal_dcg(self.rel.sum(1), cutoff)
        self.full_reranks = 0
        self.reset(np.asarray(scores, dtype=np.float64)[self.users])

    def reset(self, scores_u: np.ndarray) -> None:
        """Cache the rankings of base scores (evaluated users only, (users_eval, items))."""
        self.keys = ranking_keys(scores_u, self.excluded)  # rounded; train entries −inf
        self.raw = np.where(np.isneginf(self.keys), -np.inf, scores_u)  # unrounded; train entries −inf
        nu, n_items = self.keys.shape
        # The cache: each user's top-L finite keys, ties by item index (any fixed rule works: a cached
        # list only bounds which items can enter the top; the metric itself never sees this order).
        r, c = dense_candidates(self.keys, self.top_l)
        order = np.lexsort((c, -self.keys[r, c], r))
        r, c = r[order], c[order]
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]]) if len(r) else np.zeros(0, int)
        p = np.arange(len(r)) - np.repeat(starts, np.diff(np.r_[starts, len(r)]))
        r, c, p = r[p < self.top_l], c[p < self.top_l], p[p < self.top_l]
        self.top_idx = np.full((nu, self.top_l), -1, dtype=np.int64)
        self.top_key = np.full((nu, self.top_l), -np.inf)
        self.top_idx[r, p], self.top_key[r, p] = c, self.keys[r, c]
        self.pos_in_top = np.full((nu, n_items), -1, dtype=np.int32)
        self.pos_in_top[r, c] = p
        # Unrounded scores of the cached items (−inf for padding), contiguous for the compiled kernels.
        rows = np.arange(nu)[:, None]
        self.top_raw = np.where(self.top_idx >= 0, self.raw[rows, np.maximum(self.top_idx, 0)], -np.inf)
        self.base_user_ndcg = self.user_ndcg(*dense_tie_groups(self.keys, self.rel, self.cutoff))
        self.base = float(self.base_user_ndcg.mean())

    def metric_from_scores(self, scores_u: np.ndarray) -> float:
        """Reference: nDCG@cutoff of full (users_eval, items) scores (as :func:`ranking_metrics`)."""
        keys = ranking_keys(scores_u, self.excluded)
        return float(self.user_ndcg(*dense_tie_groups(keys, self.rel, self.cutoff)).mean())

    def metric_after(self, r: np.ndarray, c: np.ndarray, new_raw: np.ndarray) -> float:
        """nDCG@cutoff when the scores at (r, c) (evaluated-user row, item) become ``new_raw``.

        θ = the cutoff-th largest new key among a user's cached items. Unchanged items outside the
        cached top-L have keys ≤ the old L-th key, so while θ is above it, the cached and changed items
        with key ≥ θ are *every* item with key ≥ θ: all tie groups down to the cutoff are complete.
        Users where that bound fails are re-ranked over every item.
        """
        new = round_scores(np.where(np.isneginf(self.raw[r, c]), -np.inf, new_raw))
        pos = self.pos_in_top[r, c]
        in_top = pos >= 0
        top_key = self.top_key.copy()
        top_key[r[in_top], pos[in_top]] = new[in_top]
        theta = kth_largest(top_key, self.cutoff, axis=1)  # new key of the cutoff-th cached item
        safe = theta > self.top_key[:, -1]
        tr, tp = np.nonzero((top_key >= theta[:, None]) & safe[:, None] & (self.top_idx >= 0))
        outside = ~in_top & (new >= theta[r]) & safe[r]
        rows, cols = [tr, r[outside]], [self.top_idx[tr, tp], c[outside]]
        keys = [top_key[tr, tp], new[outside]]
        unsafe = np.flatnonzero(~safe)
        if len(unsafe):  # rare: re-rank these users over every item
            self.full_reranks += len(unsafe)
            local = np.full(len(self.users), -1)
            local[unsafe] = np.arange(len(unsafe))
            sub = self.keys[unsafe].copy()
            hit = local[r] >= 0
            sub[local[r[hit]], c[hit]] = new[hit]
            ur, uc = dense_candidates(sub, self.cutoff)
            rows.append(unsafe[ur])
            cols.append(uc)
            keys.append(sub[ur, uc])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        groups = tie_groups(rows, np.concatenate(keys), self.rel[rows, cols], self.cutoff)
        return float(self.user_ndcg(*groups).mean())

    def user_ndcg(self, rows: np.ndarray, starts: np.ndarray, sizes: np.ndarray, rels: np.ndarray) -> np.ndarray:
        """(users_eval,) expected nDCG@cutoff of tie groups (see :func:`qrec.metrics.ranking.tie_groups`)."""
        dcg, _, _ = expected_topk(rows, starts, sizes, rels, self.cutoff, len(self.users))
        return dcg / self.idcg

    def user_ndcg_from_kernel(self, touched, n_groups, starts, sizes, rels) -> np.ndarray:
        """(users_eval,) nDCG: the base values, replaced for ``touched`` users by their kernel tie groups
        ((users_eval, cutoff) arrays, the first ``n_groups[u]`` of each row used)."""
        out = self.base_user_ndcg.copy()
        t = np.flatnonzero(touched)
        if len(t):
            used = np.arange(self.cutoff)[None, :] < n_groups[t][:, None]
            rows = np.nonzero(used)[0]
            dcg, _, _ = expected_topk(rows, starts[t][used], sizes[t][used], rels[t][used], self.cutoff, len(t))
            out[t] = dcg / self.idcg[t]
        return out


class ItemKNNCounterfactual:
    """Exact, incremental counterfactual nDCG@k of the Item-KNN CBF model (see module docstring).

    Args:
        features: (items, n) item feature matrix (binary in practice; integer-valued features make the
            incremental Gram update bit-exact).
        train: (users, items) training interactions (excluded from rankings, used for scores).
        relevant: (users, items) held-out positives the metric is computed on (validation split).
        k: neighbours kept per item. shrink: cosine shrink. cutoff: the metric's k (nDCG@cutoff).
        top_l: length of each user's cached ranking (larger: fewer full re-rankings, more memory).

    Raises:
        ValueError: shape mismatches, or an all-zero feature column (masking it changes nothing, so
            its δ would be a meaningless 0: drop it before the analysis).
    """

    def __init__(
        self,
        features: np.ndarray | sp.spmatrix,
        train: np.ndarray | sp.spmatrix,
        relevant: np.ndarray | sp.spmatrix,
        k: int = 100,
        shrink: float = 5.0,
        cutoff: int = 10,
        top_l: int = 40,
        backend: str = "auto",
    ):
        if backend not in ("auto", "numba", "numpy"):
            raise ValueError(f"backend={backend!r}: choose 'auto', 'numba' or 'numpy'.")
        train = sp.csr_matrix(train, dtype=np.float64)
        relevant = sp.csr_matrix(relevant, dtype=bool)
        n_users, n_items = train.shape
        if relevant.shape != train.shape:
            raise ValueError(f"relevant {relevant.shape} and train {train.shape} must have the same shape.")
        F = check_features(features, n_items)
        self.F, self.k, self.shrink = F, k, shrink
        self.n_features = F.shape[1]

        # Unmasked model, reused by every mask.
        self.gram = F @ F.T
        self.sq = np.diag(self.gram).copy()
        self.norms = np.sqrt(self.sq)
        S = cosine_from_gram(self.gram, self.sq, shrink)
        # Row layout (targets as rows) keeps every per-mask gather contiguous in memory.
        self.Wt = prune_rows(S, k)  # S is symmetric: row j = target j's similarities
        self.W = self.Wt.T
        # Old neighbours of each target, padded with -1: (items, k_max), plus their static values.
        targets, rows = np.nonzero(self.Wt > 0)
        counts = np.bincount(targets, minlength=n_items)
        k_max = max(int(counts.max()) if len(counts) else 0, 1)
        slot = np.arange(len(rows)) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
        self.nbr = np.full((n_items, k_max), -1, dtype=np.int64)
        self.nbr[targets, slot] = rows
        self.nbr_ok = self.nbr >= 0
        nb = np.where(self.nbr_ok, self.nbr, 0)
        self.nbr_val = np.where(self.nbr_ok, self.Wt[np.arange(n_items)[:, None], nb], 0.0)
        self.nbr_gram = np.where(self.nbr_ok, self.gram[np.arange(n_items)[:, None], nb], 0.0)

        self.cache = RankingCache(itemknn_scores(train, self.W), train, relevant, cutoff, top_l)
        self.base, self.users, self.train_u = self.cache.base, self.cache.users, self.cache.train_u
        self.backend = _pick_backend(backend)
        if self.backend == "numba":
            self._prepare_kernel()

    def _prepare_kernel(self) -> None:
        """Static arrays and workspaces of the compiled path (see qrec.selection._itemknn_kernel)."""
        n, k = self.W.shape[0], self.k
        self.nbr_cnt = self.nbr_ok.sum(axis=1).astype(np.int64)
        # Old k-th neighbour in (value desc, index asc) order: the worst kept one; (0, n) if < k kept.
        vals = np.where(self.nbr_ok, self.nbr_val, np.inf)
        worst = vals.min(axis=1)
        last = np.where(self.nbr_ok & (self.nbr_val == worst[:, None]), self.nbr, -1).max(axis=1)
        full = self.nbr_cnt >= k
        self.thr_val = np.where(full, worst, 0.0)
        self.thr_idx = np.where(full, last, n).astype(np.int64)
        # [i, j]: gram, zeroed where i is already a neighbour of target j (candidates to enter j).
        self.gram_new_nbr = np.ascontiguousarray(np.where(self.W != 0, 0.0, self.gram))
        train_u = sp.csr_matrix(self.train_u)
        train_u.sort_indices()  # items ascending: the kernel sums score changes in the numpy path's order
        self.user_ptr = train_u.indptr.astype(np.int64)
        self.user_items = train_u.indices.astype(np.int64)
        size = 2 * k * n  # a column changes at most 2k weights (k leave, k enter)
        self._ch_i = np.empty(size, dtype=np.int64)
        self._ch_j = np.empty(size, dtype=np.int64)
        self._ch_d = np.empty(size)

    def _evaluate_kernel(self, masked: np.ndarray) -> float:
        from qrec.selection._itemknn_kernel import evaluate_mask

        c = self.cache
        *groups, full_reranks = evaluate_mask(
            masked,
            self.F,
            self.gram,
            self.sq,
            self.norms,
            float(self.shrink),
            int(self.k),
            self.gram_new_nbr,
            self.nbr,
            self.nbr_val,
            self.nbr_cnt,
            self.thr_val,
            self.thr_idx,
            self.user_ptr,
            self.user_items,
            c.raw,
            c.top_idx,
            c.top_raw,
            c.top_key,
            c.pos_in_top,
            c.rel,
            c.cutoff,
            self._ch_i,
            self._ch_j,
            self._ch_d,
        )
        c.full_reranks += full_reranks
        return float(c.user_ndcg_from_kernel(*groups).mean())

    @property
    def full_reranks(self) -> int:
        return self.cache.full_reranks

    # --- reference path -------------------------------------------------------------------------
    def brute_force(self, keep: np.ndarray) -> float:
        """nDCG@cutoff after masking ``~keep``, by re-fitting and re-scoring everything."""
        keep = self._check_keep(keep)
        W = itemknn_weights(self.F * keep[None, :], self.k, self.shrink)
        return self.cache.metric_from_scores(itemknn_scores(self.train_u, W))

    # --- incremental path -----------------------------------------------------------------------
    def evaluate(self, masked: Sequence[int]) -> float:
        """nDCG@cutoff with the features ``masked`` (indices) zeroed, incrementally and exactly."""
        masked = np.unique(np.asarray(masked, dtype=np.int64))
        if len(masked) and (masked.min() < 0 or masked.max() >= self.n_features):
            raise ValueError(f"Feature indices {masked.tolist()} outside 0..{self.n_features - 1}.")
        FM = self.F[:, masked]
        affected = np.flatnonzero((FM != 0).any(axis=1))
        if len(affected) == 0:
            return self.base
        if self.backend == "numba":
            return self._evaluate_kernel(masked)
        sq_new = self.sq - (FM * FM).sum(axis=1)
        rows, cols, vals = self._weight_changes(FM, affected, sq_new)
        n_items = self.F.shape[0]
        dW = sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items))
        delta = sp.coo_matrix(self.train_u @ dW)
        r, c = delta.row.astype(np.int64), delta.col.astype(np.int64)
        return self.cache.metric_after(r, c, self.cache.raw[r, c] + delta.data)

    def _weight_changes(self, FM, A, sq_new) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse ΔW = W' − W as (rows = neighbour items, cols = target items, values)."""
        k, shrink = self.k, self.shrink
        n = self.W.shape[0]
        in_a = np.zeros(n, dtype=bool)
        in_a[A] = True
        norms_new = np.sqrt(sq_new)

        # Targets j ∈ A: the target's own norm changed, so the whole row of Wᵀ is recomputed.
        S_a = (self.gram[A] - FM[A] @ FM.T) / (np.outer(norms_new[A], norms_new) + shrink)
        S_a[np.arange(len(A)), A] = 0.0
        W_a = prune_rows(S_a, k)
        t1, i1 = np.nonzero(W_a != self.Wt[A])
        parts = [(i1, A[t1], W_a[t1, i1] - self.Wt[A[t1], i1])]

        B = np.flatnonzero(~in_a)
        if len(B):
            # Targets j ∉ A: numerators are unchanged (j has no masked feature) and i ∈ A has a smaller
            # norm, so S_ij can only rise: the new neighbours are among the old ones ∪ A, and an item of
            # A outside the old neighbours must reach the old threshold (new ≥ old k-th value) to enter.
            nbr, ok = self.nbr[B], self.nbr_ok[B]
            old = self.nbr_val[B]
            hit = ok & in_a[np.where(ok, nbr, 0)]
            new = old.copy()
            hr, hc = np.nonzero(hit)
            new[hr, hc] = self.nbr_gram[B[hr], hc] / (norms_new[nbr[hr, hc]] * self.norms[B[hr]] + shrink)
            S_ab = self.gram[A][:, B] / (np.outer(norms_new[A], self.norms[B]) + shrink)  # (|A|, |B|)
            outside = self.Wt[B][:, A].T == 0
            # Old k-th value (exactly k kept with index tie-break); 0 when fewer than k are positive.
            full = ok.sum(axis=1) >= k
            old_thr = np.where(full, np.where(ok, old, np.inf).min(axis=1), 0.0)
            enter = outside & (S_ab > 0) & (S_ab >= old_thr[None, :])
            ea, eb = np.nonzero(enter)
            changed = np.zeros(len(B), dtype=bool)
            changed[hr] = True
            changed[eb] = True
            rows_b = np.flatnonzero(changed)  # targets whose candidate set moved
            if len(rows_b):
                local = np.full(len(B), -1)
                local[rows_b] = np.arange(len(rows_b))
                counts = np.bincount(local[eb], minlength=len(rows_b))
                width = max(int(counts.max()) if len(counts) else 0, 1)
                extra_val = np.zeros((len(rows_b), width))
                extra_idx = np.full((len(rows_b), width), n, dtype=np.int64)
                order = np.argsort(local[eb], kind="stable")
                slot = np.arange(len(eb)) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
                extra_val[local[eb][order], slot] = S_ab[ea[order], eb[order]]
                extra_idx[local[eb][order], slot] = A[ea[order]]
                vals = np.hstack([new[rows_b], extra_val])
                idx = np.hstack([np.where(ok[rows_b], nbr[rows_b], n), extra_idx])
                kept = _keep_topk(vals, idx, k)
                width_old = new.shape[1]
                d = np.where(kept[:, :width_old], vals[:, :width_old], 0.0) - old[rows_b]
                dr, dc = np.nonzero(d)
                parts.append((nbr[rows_b[dr], dc], B[rows_b[dr]], d[dr, dc]))
                er, ec = np.nonzero(kept[:, width_old:])
                parts.append((extra_idx[er, ec], B[rows_b[er]], extra_val[er, ec]))
        rows, cols, vals = (np.concatenate(x) for x in zip(*parts))
        return rows, cols, vals

    def _check_keep(self, keep: np.ndarray) -> np.ndarray:
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_features,):
            raise ValueError(f"keep must have shape ({self.n_features},), got {keep.shape}.")
        return keep

    def metric(self, keep: np.ndarray) -> float:
        """``metric(keep)`` for :func:`counterfactual_deltas`, via the incremental path."""
        return self.evaluate(np.flatnonzero(~self._check_keep(keep)))

    def run(self, pairs: bool = True, progress: bool = True, n_jobs: int = 1) -> Counterfactual:
        """All δ_i and (optionally) δ_ij with the incremental path (see :func:`run_counterfactual`)."""
        return run_counterfactual(self, pairs, progress, n_jobs)


class ItemLocalCounterfactual:
    """Exact counterfactual nDCG for models where an item's features only affect that item's scores.

    True of MLP-DP, MLP-CON and NCF with feature towers: masking features of the item set ``A``
    changes only the score columns of ``A``, so each mask re-scores |A| items for every evaluated user
    and updates the cached rankings (:class:`RankingCache`), instead of re-scoring all items.

    Args:
        score_items: ``score_items(items, keep) -> (users_eval, len(items))`` raw scores of the given
            items for the evaluated users (``cache.users``), with features ``~keep`` masked. Use
            float64 scores: keys are compared after rounding to 1e-9 (tie groups must match exactly).
        features: (items, n) item features (to find the items a mask touches).
        train, relevant, cutoff, top_l: as :class:`RankingCache`.
        backend: ``numba`` re-ranks with the compiled kernel (``auto``: when installed), ``numpy`` with
            :meth:`RankingCache.metric_after`; both are exact.
    """

    def __init__(
        self,
        score_items: Callable[[np.ndarray, np.ndarray], np.ndarray],
        features: np.ndarray | sp.spmatrix,
        train: np.ndarray | sp.spmatrix,
        relevant: np.ndarray | sp.spmatrix,
        cutoff: int = 10,
        top_l: int = 40,
        backend: str = "auto",
    ):
        if backend not in ("auto", "numba", "numpy"):
            raise ValueError(f"backend={backend!r}: choose 'auto', 'numba' or 'numpy'.")
        train = sp.csr_matrix(train, dtype=np.float64)
        relevant = sp.csr_matrix(relevant, dtype=bool)
        n_items = train.shape[1]
        self.F = check_features(features, n_items)
        self.n_features = self.F.shape[1]
        self.score_items = score_items
        users = np.flatnonzero(np.diff(relevant.indptr) > 0)
        all_items = np.arange(n_items)
        keep = np.ones(self.n_features, dtype=bool)
        scores = np.zeros(train.shape)
        if len(users):
            scores[users] = self._score(all_items, keep, len(users))
        self.cache = RankingCache(scores, train, relevant, cutoff, top_l)
        self.base, self.users = self.cache.base, self.cache.users
        self.backend = _pick_backend(backend)

    def _score(self, items: np.ndarray, keep: np.ndarray, n_users: int) -> np.ndarray:
        out = np.asarray(self.score_items(items, keep), dtype=np.float64)
        if out.shape != (n_users, len(items)):
            raise ValueError(f"score_items returned shape {out.shape}, expected {(n_users, len(items))}.")
        return out

    @property
    def full_reranks(self) -> int:
        return self.cache.full_reranks

    def brute_force(self, keep: np.ndarray) -> float:
        """nDCG@cutoff after masking ``~keep``, re-scoring every item."""
        keep = np.asarray(keep, dtype=bool)
        items = np.arange(self.F.shape[0])
        return self.cache.metric_from_scores(self._score(items, keep, len(self.users)))

    def evaluate(self, masked: Sequence[int]) -> float:
        """nDCG@cutoff with features ``masked`` zeroed, re-scoring only the items that have them."""
        masked = np.unique(np.asarray(masked, dtype=np.int64))
        keep = np.ones(self.n_features, dtype=bool)
        keep[masked] = False
        items = np.flatnonzero((self.F[:, masked] != 0).any(axis=1))
        if len(items) == 0:
            return self.base
        new = self._score(items, keep, len(self.users))
        c = self.cache
        if self.backend == "numba":
            from qrec.selection._itemknn_kernel import evaluate_block

            *groups, full = evaluate_block(items.astype(np.int64), np.ascontiguousarray(new), c.raw, c.top_idx,
                                           c.top_raw, c.top_key, c.pos_in_top, c.rel, c.cutoff)  # fmt: skip
            c.full_reranks += full
            return float(c.user_ndcg_from_kernel(*groups).mean())
        r = np.repeat(np.arange(len(self.users)), len(items))
        return c.metric_after(r, np.tile(items, len(self.users)), new.ravel())

    def metric(self, keep: np.ndarray) -> float:
        """``metric(keep)`` for :func:`counterfactual_deltas`."""
        return self.evaluate(np.flatnonzero(~np.asarray(keep, dtype=bool)))

    def run(self, pairs: bool = True, progress: bool = True, n_jobs: int = 1) -> Counterfactual:
        """All δ_i and (optionally) δ_ij (see :func:`run_counterfactual`).

        ``n_jobs > 1`` forks workers; only use it with numpy scorers. A torch model that has already run
        an OpenMP parallel region deadlocks in forked children, so :meth:`run_torch_safe` is what the
        CAQUBO callback calls.
        """
        return run_counterfactual(self, pairs, progress, n_jobs)

    def run_torch_safe(self, pairs: bool = True, progress: bool = True, n_jobs: int = 1) -> Counterfactual:
        """:meth:`run` in this process only (``n_jobs`` is ignored: torch + fork can deadlock)."""
        return run_counterfactual(self, pairs, progress, 1)
