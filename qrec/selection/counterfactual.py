"""Counterfactual analysis for CAQUBO: how much the ranking metric drops when features are masked.

``δ_i = M(F) − M(F \\ {i})`` and ``δ_ij = M(F) − M(F \\ {i, j})`` (QUBO.md). ``δ > 0``: removing the
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
     fails are re-ranked in full.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from qrec.metrics_ranking import dcg_weights, rank_candidates, ranking_keys, topk_candidates
from qrec.selection.itemknn import (
    as_dense_features,
    cosine_from_gram,
    itemknn_scores,
    itemknn_weights,
    kth_largest,
    prune_columns,
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
    if not enabled:
        return iterable
    from tqdm.auto import tqdm  # only when asked: tqdm is light, but keep imports honest

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
    ):
        train = sp.csr_matrix(train, dtype=np.float64)
        relevant = sp.csr_matrix(relevant, dtype=bool)
        n_users, n_items = train.shape
        if relevant.shape != train.shape:
            raise ValueError(f"relevant {relevant.shape} and train {train.shape} must have the same shape.")
        F = as_dense_features(features, n_items)
        empty = np.flatnonzero(~(F != 0).any(axis=0))
        if len(empty):
            raise ValueError(
                f"Feature column(s) {empty[:10].tolist()} are all zero: masking them cannot change the "
                "model. Remove them (qrec.data.features drops empty columns) before the analysis."
            )
        if cutoff < 1 or top_l < cutoff:
            raise ValueError(f"Need 1 ≤ cutoff ({cutoff}) ≤ top_l ({top_l}).")
        self.F, self.k, self.shrink, self.cutoff, self.top_l = F, k, shrink, cutoff, top_l
        self.n_features = F.shape[1]

        # Only users with a relevant item count in the metric; the rest never need scores.
        self.users = np.flatnonzero(np.diff(relevant.indptr) > 0)
        if len(self.users) == 0:
            raise ValueError("No user has a relevant item: the evaluation split is empty.")
        self.train_u = train[self.users]
        self.rel = relevant[self.users].toarray()
        n_rel = self.rel.sum(1)
        self.idcg = np.cumsum(dcg_weights(cutoff))[np.minimum(n_rel, cutoff) - 1]

        # Unmasked model, reused by every mask.
        self.gram = F @ F.T
        self.sq = np.diag(self.gram).copy()
        self.norms = np.sqrt(self.sq)
        S = cosine_from_gram(self.gram, self.sq, shrink)
        self.W = prune_columns(S, k)
        # Old neighbours of each column, padded with -1: (k_max, items).
        cols, rows = np.nonzero(self.W.T > 0)
        counts = np.bincount(cols, minlength=n_items)
        k_max = max(int(counts.max()) if len(counts) else 0, 1)
        slot = np.arange(len(rows)) - np.repeat(np.r_[0, np.cumsum(counts)[:-1]], counts)
        self.nbr = np.full((k_max, n_items), -1, dtype=np.int64)
        self.nbr[slot, cols] = rows

        scores = itemknn_scores(self.train_u, self.W)
        excluded = self.train_u.astype(bool)
        self.base_keys_raw = scores.copy()  # unrounded; train entries set to -inf below
        rows_t, cols_t = excluded.nonzero()
        self.base_keys_raw[rows_t, cols_t] = -np.inf
        self.keys = ranking_keys(scores, excluded)

        # Each user's cached top-L: (users, L) item codes and keys (−inf / −1 padding).
        r, c, p = topk_candidates(self.keys, top_l)
        nu = len(self.users)
        self.top_idx = np.full((nu, top_l), -1, dtype=np.int64)
        self.top_key = np.full((nu, top_l), -np.inf)
        self.top_idx[r, p], self.top_key[r, p] = c, self.keys[r, c]
        self.pos_in_top = np.full((nu, n_items), -1, dtype=np.int32)
        self.pos_in_top[r, c] = p
        first = p < cutoff
        self.base = self._metric_from_top(r[first], c[first], p[first])
        self.full_reranks = 0

    # --- reference path -------------------------------------------------------------------------
    def brute_force(self, keep: np.ndarray) -> float:
        """nDCG@cutoff after masking ``~keep``, by re-fitting and re-scoring everything."""
        keep = self._check_keep(keep)
        W = itemknn_weights(self.F * keep[None, :], self.k, self.shrink)
        keys = ranking_keys(itemknn_scores(self.train_u, W), self.train_u.astype(bool))
        return self._metric_from_top(*topk_candidates(keys, self.cutoff))

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
        sq_new = self.sq - (FM * FM).sum(axis=1)
        rows, cols, vals = self._weight_changes(FM, affected, sq_new)
        n_items = self.F.shape[0]
        dW = sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items))
        return self._metric_after(sp.coo_matrix(self.train_u @ dW))

    def _weight_changes(self, FM, A, sq_new) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sparse ΔW = W' − W as (rows, cols, values)."""
        k, shrink, W = self.k, self.shrink, self.W
        n = W.shape[0]
        in_a = np.zeros(n, dtype=bool)
        in_a[A] = True
        B = np.flatnonzero(~in_a)
        norms_new = np.sqrt(sq_new)

        # Columns j ∈ A: the target's own norm changed, so the whole column is recomputed.
        gram_a = self.gram[:, A] - FM @ FM[A].T
        S_a = gram_a / (np.outer(norms_new, norms_new[A]) + shrink)
        S_a[A, np.arange(len(A))] = 0.0
        W_a = np.where((S_a >= kth_largest(S_a, k)[None, :]) & (S_a > 0), S_a, 0.0)
        r1, c1 = np.nonzero(W_a != W[:, A])
        parts = [(r1, A[c1], W_a[r1, c1] - W[r1, A[c1]])]

        if len(B):
            # Columns j ∉ A: numerators are unchanged (j has no masked feature); i ∈ A gets a smaller
            # norm, so S_ij can only rise. Candidates: old neighbours (re-valued) ∪ all of A.
            nbr = self.nbr[:, B]
            valid = nbr >= 0
            nb = np.where(valid, nbr, 0)
            old_vals = np.where(valid, W[nb, B[None, :]], 0.0)
            new_nb = np.where(valid, self.gram[nb, B[None, :]] / (norms_new[nb] * self.norms[B][None, :] + shrink), 0.0)
            new_ab = self.gram[np.ix_(A, B)] / (np.outer(norms_new[A], self.norms[B]) + shrink)
            new_ab[W[np.ix_(A, B)] > 0] = 0.0  # already counted among the old neighbours
            threshold = kth_largest(np.vstack([new_nb, new_ab]), k)[None, :]
            kept_nb = np.where((new_nb >= threshold) & (new_nb > 0), new_nb, 0.0)
            d_nb = kept_nb - old_vals
            r2, c2 = np.nonzero(d_nb)
            parts.append((nb[r2, c2], B[c2], d_nb[r2, c2]))
            kept_ab = (new_ab >= threshold) & (new_ab > 0)
            r3, c3 = np.nonzero(kept_ab)
            parts.append((A[r3], B[c3], new_ab[r3, c3]))
        rows, cols, vals = (np.concatenate(x) for x in zip(*parts))
        return rows, cols, vals

    def _metric_after(self, delta: sp.coo_matrix) -> float:
        """nDCG from the cached rankings and sparse score changes (users, items)."""
        r, c = delta.row.astype(np.int64), delta.col.astype(np.int64)
        new = np.round(self.base_keys_raw[r, c] + delta.data, 9)  # same rounding as ranking_keys
        pos = self.pos_in_top[r, c]
        in_top = pos >= 0
        top_key = self.top_key.copy()
        top_key[r[in_top], pos[in_top]] = new[in_top]
        theta = kth_largest(top_key, self.cutoff, axis=1)  # new key of the cutoff-th cached item
        # Unchanged items outside the cached top-L have keys ≤ the old L-th key: safe if theta is above.
        safe = theta > self.top_key[:, -1]
        cand_top = (top_key >= theta[:, None]) & safe[:, None] & (self.top_idx >= 0)
        tr, tp = np.nonzero(cand_top)
        outside = ~in_top & (new >= theta[r]) & safe[r]
        rows = [tr, r[outside]]
        cols = [self.top_idx[tr, tp], c[outside]]
        keys = [top_key[tr, tp], new[outside]]
        unsafe = np.flatnonzero(~safe)
        if len(unsafe):  # rare: re-rank these users over every item
            self.full_reranks += len(unsafe)
            local = np.full(len(self.users), -1)
            local[unsafe] = np.arange(len(unsafe))
            sub = self.keys[unsafe].copy()
            hit = local[r] >= 0
            sub[local[r[hit]], c[hit]] = new[hit]
            ur, uc, _ = topk_candidates(sub, self.cutoff)
            rows.append(unsafe[ur])
            cols.append(uc)
            keys.append(sub[ur, uc])
        rr, cc, pp = rank_candidates(np.concatenate(rows), np.concatenate(cols), np.concatenate(keys), self.cutoff)
        return self._metric_from_top(rr, cc, pp)

    def _metric_from_top(self, rows: np.ndarray, cols: np.ndarray, pos: np.ndarray) -> float:
        gains = self.rel[rows, cols] * dcg_weights(self.cutoff)[pos]
        dcg = np.bincount(rows, weights=gains, minlength=len(self.users))
        return float((dcg / self.idcg).mean())

    def _check_keep(self, keep: np.ndarray) -> np.ndarray:
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_features,):
            raise ValueError(f"keep must have shape ({self.n_features},), got {keep.shape}.")
        return keep

    def metric(self, keep: np.ndarray) -> float:
        """``metric(keep)`` for :func:`counterfactual_deltas`, via the incremental path."""
        return self.evaluate(np.flatnonzero(~self._check_keep(keep)))

    def run(self, pairs: bool = True, progress: bool = True) -> Counterfactual:
        """All δ_i and (optionally) δ_ij with the incremental path."""
        start = time.perf_counter()
        n = self.n_features
        single = np.array([self.base - self.evaluate([i]) for i in range(n)])
        pair = np.full((n, n), np.nan)
        np.fill_diagonal(pair, 0.0)
        if pairs:
            combos = itertools.combinations(range(n), 2)
            for i, j in _progress(combos, n * (n - 1) // 2, progress, "counterfactual pairs"):
                pair[i, j] = pair[j, i] = self.base - self.evaluate([i, j])
        n_eval = n + (n * (n - 1) // 2 if pairs else 0)
        return Counterfactual(self.base, single, pair, time.perf_counter() - start, n_eval,
                              extra={"full_reranks": self.full_reranks, "users": len(self.users)})  # fmt: skip
