"""The incremental Item-KNN counterfactual analysis equals brute-force re-scoring."""

import itertools

import numpy as np
import pytest

from qrec.metrics import ranking_metrics
from qrec.selection import ItemKNNCounterfactual, counterfactual_deltas
from qrec.selection.itemknn import itemknn_scores, itemknn_weights


def _data(seed=1, n_users=50, n_items=90, n_features=9):
    rng = np.random.default_rng(seed)
    F = (rng.random((n_items, n_features)) < rng.uniform(0.05, 0.6, n_features)).astype(float)
    F[0] = 1.0  # no empty column
    train = rng.random((n_users, n_items)) < 0.12
    relevant = (rng.random((n_users, n_items)) < 0.06) & ~train
    return F, train, relevant


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize(("k", "top_l"), [(8, 12), (30, 20)])
def test_incremental_equals_brute_force(k, top_l, backend):
    if backend == "numba":
        pytest.importorskip("numba")
    F, train, relevant = _data()
    cf = ItemKNNCounterfactual(F, train, relevant, k=k, shrink=5.0, cutoff=10, top_l=top_l, backend=backend)
    n = F.shape[1]
    masks = [(i,) for i in range(n)] + list(itertools.combinations(range(n), 2)) + [(0, 3, 5)]
    for masked in masks:
        keep = np.ones(n, dtype=bool)
        keep[list(masked)] = False
        assert cf.evaluate(masked) == cf.brute_force(keep), masked
    # The fast path really is incremental: most users never needed a full re-ranking.
    assert cf.full_reranks < len(masks) * len(cf.users)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_incremental_equals_brute_force_with_a_near_universal_feature(backend):
    """Masking a feature most items have (like the KG's film language) changes most neighbour lists:
    many items enter and leave, and targets' k-th values drop far below the old ones."""
    if backend == "numba":
        pytest.importorskip("numba")
    F, train, relevant = _data(seed=5, n_users=60, n_items=160, n_features=8)
    F[np.random.default_rng(5).random(160) < 0.9, 1] = 1.0
    cf = ItemKNNCounterfactual(F, train, relevant, k=12, shrink=2.0, top_l=14, backend=backend)
    for masked in [(1,), (1, 2), (1, 5), (0, 1), (3, 6)]:
        keep = np.ones(8, dtype=bool)
        keep[list(masked)] = False
        assert cf.evaluate(masked) == cf.brute_force(keep), masked


def test_kernel_keeps_the_k_best_candidates_with_index_ties():
    """The kernel's eviction (insertion buffer for few evictions, a sort for many) keeps exactly the k
    best by (value desc, index asc), like a full lexicographic sort."""
    pytest.importorskip("numba")
    from qrec.selection._itemknn_kernel import SMALL_EVICTION, _evict

    rng = np.random.default_rng(0)
    for n_cand, k in [(40, 35), (40, 39), (120, 20), (200, 100), (100, 100 - SMALL_EVICTION - 1)]:
        values = rng.integers(1, 6, n_cand) / 7.0  # many ties
        items = np.sort(rng.choice(10 * n_cand, n_cand, replace=False))  # candidates come in index order
        kept = np.zeros(n_cand, dtype=bool)
        _evict(values, items, n_cand, k, kept, np.empty(SMALL_EVICTION, dtype=np.int64))
        best = np.lexsort((items, -values))[:k]
        expected = np.zeros(n_cand, dtype=bool)
        expected[best] = True
        np.testing.assert_array_equal(kept, expected)


def test_brute_force_matches_the_shared_ranking_metric():
    F, train, relevant = _data(seed=2)
    cf = ItemKNNCounterfactual(F, train, relevant, k=10)
    scores = itemknn_scores(train, itemknn_weights(F, 10, 5.0))
    assert cf.base == pytest.approx(ranking_metrics(scores, relevant, train)["ndcg_10"], abs=1e-15)


def test_run_equals_generic_brute_force_deltas():
    F, train, relevant = _data(seed=3, n_features=6)
    cf = ItemKNNCounterfactual(F, train, relevant, k=10, top_l=15)
    fast = cf.run(progress=False)
    slow = counterfactual_deltas(cf.brute_force, F.shape[1])
    np.testing.assert_array_equal(fast.single, slow.single)
    np.testing.assert_array_equal(fast.pair, slow.pair)
    assert fast.evaluations == 6 + 15
    np.testing.assert_array_equal(fast.pair, fast.pair.T)


def test_ties_keep_exactly_k_neighbours():
    F = np.zeros((30, 2))
    F[:, 0] = 1.0  # every item shares one feature: all similarities tie
    W = itemknn_weights(F, k=5, shrink=1.0)
    assert ((W > 0).sum(axis=0) == 5).all()
    assert (W[:6, 10] > 0).sum() == 5  # lowest indices win the tie


def test_bad_inputs():
    F, train, relevant = _data()
    with pytest.raises(ValueError, match="rows"):
        ItemKNNCounterfactual(F[:-1], train, relevant)
    F0 = F.copy()
    F0[:, 2] = 0
    with pytest.raises(ValueError, match="all zero"):
        ItemKNNCounterfactual(F0, train, relevant)
    with pytest.raises(ValueError, match="empty"):
        ItemKNNCounterfactual(F, train, np.zeros_like(relevant))
    with pytest.raises(ValueError, match="n_features"):
        counterfactual_deltas(lambda keep: 0.0, 0)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_item_local_counterfactual_equals_brute_force(backend):
    from qrec.selection import ItemLocalCounterfactual

    if backend == "numba":
        pytest.importorskip("numba")

    F, train, relevant = _data(seed=4, n_features=7)
    rng = np.random.default_rng(0)
    users = np.flatnonzero(relevant.any(1))
    U = rng.normal(size=(len(users), 4))
    E = rng.normal(size=(F.shape[0], 4))
    P = rng.normal(size=(F.shape[1], 4))

    def score_items(items, keep):  # an MLP-DP-like model: item vector = embedding + masked features · P
        return U @ (E[items] + (F[items] * keep) @ P).T

    cf = ItemLocalCounterfactual(score_items, F, train, relevant, top_l=12, backend=backend)
    for masked in [(i,) for i in range(7)] + list(itertools.combinations(range(7), 2)):
        keep = np.ones(7, dtype=bool)
        keep[list(masked)] = False
        assert cf.evaluate(masked) == cf.brute_force(keep), masked
    parallel = cf.run(progress=False, n_jobs=2)
    serial = cf.run(progress=False)
    np.testing.assert_array_equal(parallel.pair, serial.pair)
