"""Compiled (numba) kernel of the incremental Item-KNN counterfactual; optional (``pip install numba``).

Hand-written because no library does incremental top-k re-ranking under feature masks. Same algorithm
as the numpy path of :class:`qrec.selection.counterfactual.ItemKNNCounterfactual`, in one pass per
mask and with no dense temporaries beyond item-length vectors:

1. items of A (they have a masked feature) that enter a target's neighbours: one contiguous,
   vectorised scan of the Gram row of each i ∈ A against every target's old k-th value;
2. for each target item j, the change of its neighbour column (full recomputation if j has a masked
   feature, otherwise old neighbours ∪ entering items, see the module docstring there); at most 2k
   changes per column;
3. the weight changes ΔW, regrouped by neighbour item i, become each user's score changes
   ``Σ_{i ∈ train(u)} ΔW[i, :]`` in a small dense vector; the user's top-10 is rebuilt from the
   cached top-L (or from all items when the cached bound fails), together with the full size and
   relevant count of the tie group at the 10th key; users with no changed score keep theirs.

The kernel only ranks: it returns each touched user's tie groups, and the tie-aware metric is computed
from them by :func:`qrec.metrics.ranking.expected_topk`, the one implementation every path uses.
Arithmetic mirrors the numpy reference (same similarity formula, same rounding of keys), so per-user
nDCG values are bit-identical for integer-valued features. Loops that touch
every item are written branch-free where the branch would be unpredictable (a mispredicted branch per
item cost more than the arithmetic), and every per-mask read is of a contiguous row.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SCALE = 1e9  # keys are rint(score · 1e9) / 1e9, as qrec.metrics.ranking.round_scores
SMALL_EVICTION = 32  # up to this many evictions per column: insertion buffer, else a full sort


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
def _masked_row(j, gram, FMt, norms_new, shrink, row):
    """Row j of the masked similarity matrix: gram'_ji / (‖f_j'‖‖f_i'‖ + shrink), self excluded."""
    n = row.shape[0]
    row[:] = gram[j]
    for q in range(FMt.shape[0]):
        f = FMt[q, j]
        if f != 0.0:
            for i in range(n):
                row[i] -= f * FMt[q, i]
    nj = norms_new[j]
    for i in range(n):
        row[i] = row[i] / (nj * norms_new[i] + shrink)
    row[j] = 0.0


@njit(cache=True)
def _row_changes(j, row, k, nbr, nbr_val, nbr_cnt, thr_old, val_buf, idx_buf, kept, chg_i, chg_d):
    """Changes of target j's column when its similarity row is ``row``: keep the k best positive
    values (ties by lower index), record ``new − old`` where they differ; returns the count.

    ``thr_old``: j's old k-th value. The new k-th value is usually not far below it, so only the
    values above a falling bound (thr_old, 0.75·thr_old, …, then every positive) are partitioned: the
    first bound with ≥ k values above it gives the exact k-th value. Loops are branch-free where they
    touch every item (a branch per item mispredicts half the time).
    """
    n = row.shape[0]
    lo = thr_old
    for attempt in range(8):
        if attempt == 7 or lo <= 0.0:
            lo = 0.0
        count = 0
        for i in range(n):
            count += (row[i] > 0.0) & (row[i] >= lo)
        if count >= k or lo == 0.0:
            break
        lo *= 0.75
    m = 0
    for i in range(n):  # values ≥ lo, in index order
        v = row[i]
        val_buf[m], idx_buf[m] = v, i
        m += (v > 0.0) & (v >= lo)
    thr, need = 0.0, m
    if m >= k:
        thr = np.partition(val_buf[:m], m - k)[m - k]  # k-th largest positive
        need = k
        for q in range(m):
            need -= val_buf[q] > thr
    for q in range(m):  # ties at thr: lower index first
        v = val_buf[q]
        keep = v > thr or (v == thr and need > 0)
        if keep and v == thr:
            need -= 1
        kept[idx_buf[q]] = keep
    n_chg = 0
    for s in range(nbr_cnt[j]):  # old neighbours: changed value or evicted
        i = nbr[j, s]
        d = (row[i] if kept[i] else 0.0) - nbr_val[j, s]
        if d != 0.0:
            chg_i[n_chg], chg_d[n_chg] = i, d
            n_chg += 1
        kept[i] = False  # done with it
    for q in range(m):  # new neighbours (old ones were cleared above)
        i = idx_buf[q]
        if kept[i]:
            chg_i[n_chg], chg_d[n_chg] = i, row[i]
            n_chg += 1
            kept[i] = False
    return n_chg


@njit(cache=True)
def _evict(cand_v, cand_i, n_cand, k, kept, ev_p):
    """Mark in ``kept`` the k best of ``n_cand`` candidates (value desc, then index asc)."""
    e = n_cand - k
    kept[:n_cand] = True
    if e > SMALL_EVICTION:
        order = np.argsort(-cand_v[:n_cand], kind="mergesort")  # stable: candidates are in index order
        for r in range(k, n_cand):
            kept[order[r]] = False
        return
    size = 0  # ev_p: positions of the e worst so far, worst first
    for c in range(n_cand):
        v, i = cand_v[c], cand_i[c]
        if size == e:
            w = ev_p[e - 1]  # the best of the current worst e
            if not _better(cand_v[w], cand_i[w], v, i):
                continue
        pos = size if size < e else e - 1
        while pos > 0 and _better(cand_v[ev_p[pos - 1]], cand_i[ev_p[pos - 1]], v, i):
            if pos < e:
                ev_p[pos] = ev_p[pos - 1]
            pos -= 1
        ev_p[pos] = c
        if size < e:
            size += 1
    for s in range(e):
        kept[ev_p[s]] = False


@njit(cache=True)
def _entering(a_items, in_a, norms_new, gram_new_nbr, norms, shrink, thr_val, thr_idx):
    """Items i ∈ A outside target j's old neighbours (j ∉ A) whose raised similarity beats j's old k-th.

    One contiguous, vectorised scan of ``gram_new_nbr[i, :]`` (the Gram matrix with every old
    neighbour pair zeroed) per i ∈ A. Returns a CSR by target: ``(ptr, items ascending, values)``.
    """
    n = gram_new_nbr.shape[0]
    cap = 4 * n
    ev_i, ev_j, ev_v = np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int64), np.empty(cap)
    n_ev = 0
    sim = np.empty(n)
    for i in a_items:
        ni = norms_new[i]
        g = gram_new_nbr[i]
        for j in range(n):
            sim[j] = g[j] / (ni * norms[j] + shrink)
        for j in range(n):
            v = sim[j]
            enters = (v > 0) & (v >= thr_val[j]) & ((v > thr_val[j]) | (i < thr_idx[j])) & ~in_a[j]
            sim[j] = v if enters else -1.0
        count = 0
        for j in range(n):
            count += sim[j] >= 0.0
        if count == 0:
            continue
        if n_ev + count > cap:
            cap = 2 * (n_ev + count)
            ev_i, ev_j, ev_v = _grow(ev_i, cap), _grow(ev_j, cap), _grow(ev_v, cap)
        for j in range(n):
            if sim[j] >= 0.0:
                ev_i[n_ev], ev_j[n_ev], ev_v[n_ev] = i, j, sim[j]
                n_ev += 1
    return _group_by(ev_j[:n_ev], ev_i[:n_ev], ev_v[:n_ev], n)  # by target; items stay ascending


@njit(cache=True)
def _group_by(keys, items, values, n):
    """Counting sort of (key, item, value) triples by key in 0..n−1, stable: CSR ``(ptr, items, values)``."""
    ptr = np.zeros(n + 1, dtype=np.int64)
    for key in keys:
        ptr[key + 1] += 1
    for key in range(n):
        ptr[key + 1] += ptr[key]
    pos = ptr[:-1].copy()
    out_items, out_values = np.empty(keys.shape[0], dtype=np.int64), np.empty(keys.shape[0])
    for e in range(keys.shape[0]):
        key = keys[e]
        out_items[pos[key]], out_values[pos[key]] = items[e], values[e]
        pos[key] += 1
    return ptr, out_items, out_values


@njit(cache=True)
def _grow(a, cap):
    out = np.empty(cap, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def _candidate_changes(j, k, in_a, gram, norms, norms_new, shrink, nbr, nbr_val, nbr_cnt, ev_ptr, ev_i, ev_v,
                       cand_v, cand_i, cand_old, kept, ev_p, chg_i, chg_d):
    """Changes of target j ∉ A: its old neighbours (A's re-valued) ∪ its entering items of A."""
    cnt = nbr_cnt[j]
    e, e_end = ev_ptr[j], ev_ptr[j + 1]
    changed = e < e_end
    n_cand = 0
    for s in range(cnt + 1):  # merge old neighbours and entering items in index order
        nxt = nbr[j, s] if s < cnt else gram.shape[0]
        while e < e_end and ev_i[e] < nxt:
            cand_v[n_cand], cand_i[n_cand], cand_old[n_cand] = ev_v[e], ev_i[e], 0.0
            n_cand += 1
            e += 1
        if s < cnt:
            i = nbr[j, s]
            v = old = nbr_val[j, s]
            if in_a[i]:
                v = gram[i, j] / (norms_new[i] * norms[j] + shrink)
                changed |= v != old
            cand_v[n_cand], cand_i[n_cand], cand_old[n_cand] = v, i, old
            n_cand += 1
    if not changed:
        return 0
    if n_cand > k:
        _evict(cand_v, cand_i, n_cand, k, kept, ev_p)
    else:
        kept[:n_cand] = True
    n_chg = 0
    for c in range(n_cand):
        d = (cand_v[c] if (kept[c] and cand_v[c] > 0) else 0.0) - cand_old[c]
        if d != 0.0:
            chg_i[n_chg], chg_d[n_chg] = cand_i[c], d
            n_chg += 1
    return n_chg


@njit(cache=True, inline="always")
def _new_score(u, j, vals, absolute, raw):
    """User u's new raw score of item j: ``vals[j]`` itself (``absolute``, for a changed item) or the old
    score plus the change ``vals[j]``. Excluded items (raw −inf) stay excluded."""
    if absolute:
        return vals[j] if raw[u, j] != -np.inf else -np.inf
    return raw[u, j] + vals[j]


@njit(cache=True, inline="always")
def _key(x):
    """The rounded ranking key of a raw score (qrec.metrics.ranking.round_scores; −inf stays −inf)."""
    return np.rint(x * SCALE) / SCALE


@njit(cache=True)
def _rerank_user(u, items, n_items, vals, absolute, changed, raw, top_idx, top_raw, top_key, pos_in_top, rel,
                 buf_k, buf_i, keys_all, g_start, g_size, g_rel):  # fmt: skip
    """Tie groups down to the cutoff of user u once the scores of ``items`` changed: writes
    ``g_start/g_size/g_rel[u, :n]`` and returns (n groups, whether every item had to be re-ranked).

    ``vals``: dense (items,) new scores (``absolute``) or score changes (0 where unchanged) of this user;
    ``changed``: dense bool, the items whose absolute score is in ``vals`` (unused for changes). The
    groups are those of :func:`qrec.metrics.ranking.tie_groups` (a group at the cutoff-th key counts
    every item with that key), which :func:`qrec.metrics.ranking.expected_topk` then scores.
    """
    top_l = top_key.shape[1]
    cutoff = buf_k.shape[0]
    size = 0
    for s in range(top_l):  # cached items with their new keys
        j = top_idx[u, s]
        if j >= 0:
            x = (vals[j] if changed[j] else top_raw[u, s]) if absolute else top_raw[u, s] + vals[j]
            size = _insert(buf_k, buf_i, size, cutoff, _key(x), j)
    n_eq, r_eq = 0, 0
    if size == cutoff and buf_k[cutoff - 1] > top_key[u, top_l - 1]:
        floor = top_key[u, top_l - 1] + 2.0 / SCALE  # bounds every raw score outside the cache
        for j in items:  # safe: unchanged items outside the cache cannot enter
            # An item can enter only if its new score reaches the 10th key (up to the rounding step); for
            # score changes, items outside the cache had raw scores ≤ floor, so most are ruled out
            # without reading raw.
            bar = buf_k[cutoff - 1] - 2.0 / SCALE
            if not absolute and floor + vals[j] < bar:
                continue
            x = _new_score(u, j, vals, absolute, raw)
            if x >= bar and pos_in_top[u, j] < 0:
                size = _insert(buf_k, buf_i, size, cutoff, _key(x), j)
        # Every item with the cutoff-th key θ is cached or changed (θ is above the old L-th key).
        theta = buf_k[cutoff - 1]
        bar = theta - 2.0 / SCALE
        for s in range(top_l):
            j = top_idx[u, s]
            if j >= 0:
                x = (vals[j] if changed[j] else top_raw[u, s]) if absolute else top_raw[u, s] + vals[j]
                if _key(x) == theta:
                    n_eq += 1
                    r_eq += rel[u, j]
        for j in items:
            if pos_in_top[u, j] >= 0 or (not absolute and floor + vals[j] < bar):
                continue
            if _key(_new_score(u, j, vals, absolute, raw)) == theta:
                n_eq += 1
                r_eq += rel[u, j]
        full = False
    else:
        size = 0
        for j in range(n_items):
            x = _new_score(u, j, vals, absolute, raw) if (changed[j] or not absolute) else raw[u, j]
            keys_all[j] = _key(x)
            if keys_all[j] > -np.inf:  # excluded items are never ranked
                size = _insert(buf_k, buf_i, size, cutoff, keys_all[j], j)
        if size == cutoff:
            for j in range(n_items):
                if keys_all[j] == buf_k[cutoff - 1]:
                    n_eq += 1
                    r_eq += rel[u, j]
        full = True
    # Groups of the kept top (rank order); the group at θ takes its full size when the top is full.
    n_groups = 0
    p = 0
    while p < size:
        q = p
        r = 0
        while q < size and buf_k[q] == buf_k[p]:
            r += rel[u, buf_i[q]]
            q += 1
        g_start[u, n_groups] = p
        if q == size and size == cutoff:
            g_size[u, n_groups], g_rel[u, n_groups] = n_eq, r_eq
        else:
            g_size[u, n_groups], g_rel[u, n_groups] = q - p, r
        n_groups += 1
        p = q
    return n_groups, full


@njit(cache=True)
def _group_arrays(n_users, cutoff):
    """Per-user tie-group outputs of the kernels: (touched, n_groups, starts, sizes, rels)."""
    return (np.zeros(n_users, dtype=np.bool_), np.zeros(n_users, dtype=np.int64),
            np.zeros((n_users, cutoff), dtype=np.int64), np.zeros((n_users, cutoff), dtype=np.int64),
            np.zeros((n_users, cutoff), dtype=np.int64))  # fmt: skip


@njit(cache=True)
def evaluate_block(items, new_scores, raw, top_idx, top_raw, top_key, pos_in_top, rel, cutoff):
    """Tie groups of every user when the scores of ``items`` become ``new_scores`` ((users, len(items)),
    evaluated users in cache order): the item-local models' counterfactual
    (:class:`qrec.selection.counterfactual.ItemLocalCounterfactual`).

    Returns:
        ``(touched, n_groups, starts, sizes, rels, users re-ranked over every item)``; see
        :meth:`qrec.selection.counterfactual.RankingCache.user_ndcg_from_kernel`.
    """
    n_users, n = raw.shape
    vals = np.zeros(n)
    changed = np.zeros(n, dtype=np.bool_)
    for j in items:
        changed[j] = True
    touched, n_groups, g_start, g_size, g_rel = _group_arrays(n_users, cutoff)
    n_full = 0
    buf_k, buf_i, keys_all = np.empty(cutoff), np.empty(cutoff, dtype=np.int64), np.empty(n)
    for u in range(n_users):
        for t in range(items.shape[0]):
            vals[items[t]] = new_scores[u, t]
        n_groups[u], full = _rerank_user(u, items, n, vals, True, changed, raw, top_idx, top_raw, top_key,
                                         pos_in_top, rel, buf_k, buf_i, keys_all, g_start, g_size, g_rel)  # fmt: skip
        touched[u] = True
        n_full += full
    return touched, n_groups, g_start, g_size, g_rel, n_full


@njit(cache=True)
def evaluate_mask(
    masked,
    F,
    gram,
    sq,
    norms,
    shrink,
    k,
    gram_new_nbr,
    nbr,
    nbr_val,
    nbr_cnt,
    thr_val,
    thr_idx,
    user_ptr,
    user_items,
    raw,
    top_idx,
    top_raw,
    top_key,
    pos_in_top,
    rel,
    cutoff,
    ch_i,
    ch_j,
    ch_d,
):
    """Tie groups of the users this mask touches, as :func:`evaluate_block` returns them.

    ``user_ptr``/``user_items``: CSR of the evaluated users' training items. ``ch_i``, ``ch_j``,
    ``ch_d``: workspaces of length 2·k·items (each column changes at most 2k weights).
    """
    n = gram.shape[0]
    n_users = top_key.shape[0]
    n_masked = masked.shape[0]
    FMt = np.empty((n_masked, n))  # masked feature columns, contiguous
    in_a = np.zeros(n, dtype=np.bool_)
    sq_new = sq.copy()
    for q in range(n_masked):
        for i in range(n):
            f = F[i, masked[q]]
            FMt[q, i] = f
            if f != 0.0:
                in_a[i] = True
                sq_new[i] -= f * f
    norms_new = np.sqrt(sq_new)
    a_items = np.flatnonzero(in_a)

    ev_ptr, ev_i, ev_v = _entering(a_items, in_a, norms_new, gram_new_nbr, norms, shrink, thr_val, thr_idx)

    # Column changes of every target, collected as (i, j, d).
    width = nbr.shape[1] + a_items.shape[0]
    row, val_buf, idx_buf = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    row_kept = np.zeros(n, dtype=np.bool_)
    chg_i, chg_d = np.empty(max(n, width), dtype=np.int64), np.empty(max(n, width))
    cand_v, cand_i, cand_old = np.empty(width), np.empty(width, dtype=np.int64), np.empty(width)
    kept, ev_p = np.empty(width, dtype=np.bool_), np.empty(SMALL_EVICTION, dtype=np.int64)
    n_ch = 0
    for j in range(n):
        if in_a[j]:
            _masked_row(j, gram, FMt, norms_new, shrink, row)
            n_chg = _row_changes(j, row, k, nbr, nbr_val, nbr_cnt, thr_val[j], val_buf, idx_buf, row_kept, chg_i, chg_d)
        else:
            n_chg = _candidate_changes(j, k, in_a, gram, norms, norms_new, shrink, nbr, nbr_val, nbr_cnt, ev_ptr,
                                       ev_i, ev_v, cand_v, cand_i, cand_old, kept, ev_p, chg_i, chg_d)
        for c in range(n_chg):
            ch_i[n_ch], ch_j[n_ch], ch_d[n_ch] = chg_i[c], j, chg_d[c]
            n_ch += 1

    # ΔW by neighbour item i (targets stay ascending within a row).
    dw_ptr, dw_j, dw_d = _group_by(ch_i[:n_ch], ch_j[:n_ch], ch_d[:n_ch], n)

    # Each user's score changes Σ_{i ∈ train(u)} ΔW[i, :], then the new tie groups down to the cutoff.
    touched_u, n_groups, g_start, g_size, g_rel = _group_arrays(n_users, cutoff)
    n_full = 0  # users whose cached bound failed (re-ranked over every item)
    delta = np.zeros(n)
    touched = np.zeros(n, dtype=np.bool_)
    items = np.empty(n, dtype=np.int64)
    buf_k, buf_i, keys_all = np.empty(cutoff), np.empty(cutoff, dtype=np.int64), np.empty(n)
    for u in range(n_users):
        n_items = 0
        for p in range(user_ptr[u], user_ptr[u + 1]):
            i = user_items[p]
            for c in range(dw_ptr[i], dw_ptr[i + 1]):
                j = dw_j[c]
                delta[j] += dw_d[c]
                items[n_items] = j  # branch-free append of first touches
                n_items += not touched[j]
                touched[j] = True
        if n_items == 0:
            continue
        n_groups[u], full = _rerank_user(u, items[:n_items], n, delta, False, touched, raw, top_idx, top_raw,
                                         top_key, pos_in_top, rel, buf_k, buf_i, keys_all, g_start, g_size,
                                         g_rel)  # fmt: skip
        touched_u[u] = True
        n_full += full
        for t in range(n_items):
            delta[items[t]] = 0.0
            touched[items[t]] = False
    return touched_u, n_groups, g_start, g_size, g_rel, n_full
