"""Compiled (numba) kernel of the incremental Item-KNN counterfactual; optional (``pip install numba``).

Same algorithm as the numpy path of :class:`qrec.selection.counterfactual.ItemKNNCounterfactual`, in
one pass per mask and with no temporary matrices:

1. for each target item j, the change of its neighbour column (full recomputation if j has a masked
   feature, otherwise old neighbours ∪ entering items of A, see the module docstring there);
2. every weight change (i, j, d) is pushed at once to the users who have i in training:
   ``acc[j, u] += d`` (a dense (items, users) workspace that is reset after the mask);
3. each touched user's top-10 is rebuilt from the cached top-L (or from all items when the cached
   bound fails) and its nDCG recomputed; untouched users keep theirs.

Arithmetic mirrors the numpy reference operation by operation (same formula for similarities, same
rounding of keys, DCG summed in rank order), so per-user nDCG values are bit-identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SCALE = 1e9  # keys are rint(score · 1e9) / 1e9, as qrec.metrics_ranking.round_scores


@njit(cache=True, inline="always")
def _better(k1, i1, k2, i2):
    """Ranking order: higher key first, then lower index."""
    return k1 > k2 or (k1 == k2 and i1 < i2)


@njit(cache=True)
def _insert(buf_k, buf_i, size, cap, key, idx):
    """Insert (key, idx) into the sorted best-first buffer of capacity ``cap``; returns the new size."""
    if size == cap and not _better(key, idx, buf_k[size - 1], buf_i[size - 1]):
        return size
    pos = size if size < cap else cap - 1
    while pos > 0 and _better(key, idx, buf_k[pos - 1], buf_i[pos - 1]):
        if pos < cap:
            buf_k[pos] = buf_k[pos - 1]
            buf_i[pos] = buf_i[pos - 1]
        pos -= 1
    buf_k[pos] = key
    buf_i[pos] = idx
    return size + 1 if size < cap else size


@njit(cache=True)
def _push(i, j, d, item_ptr, item_users, acc, mark, t_user, t_item, n_touched):
    for p in range(item_ptr[i], item_ptr[i + 1]):
        u = item_users[p]
        acc[j, u] += d  # (items, users) layout: consecutive users of item i are close in memory
        if not mark[j, u]:
            mark[j, u] = True
            t_user[n_touched] = u
            t_item[n_touched] = j
            n_touched += 1
    return n_touched


@njit(cache=True)
def evaluate_mask(
    masked,
    F,
    gram,
    sq,
    norms,
    shrink,
    k,
    Wt,
    nbr,
    nbr_val,
    nbr_cnt,
    thr_val,
    thr_idx,
    item_ptr,
    item_users,
    raw,
    top_idx,
    top_key,
    pos_in_top,
    rel,
    idcg,
    weights,
    user_ndcg,
    acc,
    mark,
    t_user,
    t_item,
):
    """Per-user nDCG (a copy of ``user_ndcg`` updated for the users this mask touches)."""
    n = gram.shape[0]
    n_users, top_l = top_key.shape
    cutoff = weights.shape[0]
    in_a = np.zeros(n, dtype=np.bool_)
    sq_new = sq.copy()
    for m in masked:
        for i in range(n):
            if F[i, m] != 0.0:
                in_a[i] = True
                sq_new[i] -= F[i, m] * F[i, m]
    norms_new = np.sqrt(sq_new)
    a_items = np.flatnonzero(in_a)
    n_touched = 0
    row = np.empty(n)
    cand_v = np.empty(nbr.shape[1] + a_items.shape[0])
    cand_i = np.empty(nbr.shape[1] + a_items.shape[0], dtype=np.int64)
    for j in range(n):
        if in_a[j]:
            # Whole row: gram'_ji / (‖f_j'‖‖f_i'‖ + shrink), self excluded.
            n_pos = 0
            for i in range(n):
                num = gram[j, i]
                for m in masked:
                    num -= F[j, m] * F[i, m]
                v = num / (norms_new[j] * norms_new[i] + shrink) if i != j else 0.0
                row[i] = v
                if v > 0:
                    n_pos += 1
            if n_pos > k:
                thr = np.partition(row.copy(), n - k)[n - k]
                need = k
                for i in range(n):
                    if row[i] > thr:
                        need -= 1
            else:
                thr = 0.0
                need = 0
            for i in range(n):
                v = row[i]
                keep = v > 0 and (v > thr or (v == thr and need > 0))
                if keep and v == thr:
                    need -= 1
                new = v if keep else 0.0
                d = new - Wt[j, i]
                if d != 0.0:
                    n_touched = _push(i, j, d, item_ptr, item_users, acc, mark, t_user, t_item, n_touched)
            continue
        # j has no masked feature: old neighbours (re-valued) ∪ items of A that beat the old k-th.
        cnt = nbr_cnt[j]
        changed = False
        n_cand = 0
        ia = 0
        for s in range(cnt + 1):  # merge old neighbours and entering A items in index order
            nxt = nbr[j, s] if s < cnt else n
            while ia < a_items.shape[0] and a_items[ia] < nxt:
                i = a_items[ia]
                ia += 1
                if i == j or Wt[j, i] != 0.0:
                    continue
                v = gram[j, i] / (norms[j] * norms_new[i] + shrink)
                if v > 0 and (v > thr_val[j] or (v == thr_val[j] and i < thr_idx[j])):
                    cand_v[n_cand] = v
                    cand_i[n_cand] = i
                    n_cand += 1
                    changed = True
            if s < cnt:
                i = nbr[j, s]
                v = nbr_val[j, s]
                if in_a[i]:
                    v2 = gram[j, i] / (norms[j] * norms_new[i] + shrink)
                    if v2 != v:
                        changed = True
                    v = v2
                cand_v[n_cand] = v
                cand_i[n_cand] = i
                n_cand += 1
        if not changed:
            continue
        if n_cand <= k:  # nothing can be evicted: every positive candidate stays
            for r in range(n_cand):
                i = cand_i[r]
                d = (cand_v[r] if cand_v[r] > 0 else 0.0) - Wt[j, i]
                if d != 0.0:
                    n_touched = _push(i, j, d, item_ptr, item_users, acc, mark, t_user, t_item, n_touched)
            continue
        order = np.argsort(-cand_v[:n_cand], kind="mergesort")  # stable: ties stay in index order
        for r in range(n_cand):
            c = order[r]
            i = cand_i[c]
            v = cand_v[c]
            new = v if (r < k and v > 0) else 0.0
            d = new - Wt[j, i]
            if d != 0.0:
                n_touched = _push(i, j, d, item_ptr, item_users, acc, mark, t_user, t_item, n_touched)

    # Group touched (user, item) pairs by user (counting sort).
    counts = np.zeros(n_users + 1, dtype=np.int64)
    for t in range(n_touched):
        counts[t_user[t] + 1] += 1
    for u in range(n_users):
        counts[u + 1] += counts[u]
    fill = counts[:-1].copy()
    by_user = np.empty(n_touched, dtype=np.int64)
    for t in range(n_touched):
        u = t_user[t]
        by_user[fill[u]] = t_item[t]
        fill[u] += 1

    out = user_ndcg.copy()
    buf_k = np.empty(cutoff)
    buf_i = np.empty(cutoff, dtype=np.int64)
    for u in range(n_users):
        lo, hi = counts[u], counts[u + 1]
        if lo == hi:
            continue
        size = 0
        for s in range(top_l):  # cached items with their new keys
            j = top_idx[u, s]
            if j < 0:
                continue
            key = np.rint((raw[u, j] + acc[j, u]) * SCALE) / SCALE
            size = _insert(buf_k, buf_i, size, cutoff, key, j)
        safe = size == cutoff and buf_k[cutoff - 1] > top_key[u, top_l - 1]
        if safe:
            for t in range(lo, hi):
                j = by_user[t]
                if pos_in_top[u, j] < 0:
                    key = np.rint((raw[u, j] + acc[j, u]) * SCALE) / SCALE
                    size = _insert(buf_k, buf_i, size, cutoff, key, j)
        else:
            size = 0
            for j in range(n):
                key = np.rint((raw[u, j] + acc[j, u]) * SCALE) / SCALE
                size = _insert(buf_k, buf_i, size, cutoff, key, j)
        dcg = 0.0
        for p in range(size):
            if rel[u, buf_i[p]]:
                dcg += weights[p]
        out[u] = dcg / idcg[u]
        for t in range(lo, hi):
            j = by_user[t]
            acc[j, u] = 0.0
            mark[j, u] = False
    return out
