"""Every incremental counterfactual path scores tied rankings exactly as the public metric does."""

import itertools

import numpy as np
import pytest

from qrec.metrics import ranking_metrics
from qrec.selection import ItemKNNCounterfactual, ItemLocalCounterfactual
from qrec.selection.itemknn import itemknn_scores, itemknn_weights


def _data(seed=0, n_users=40, n_items=70, n_features=6):
    rng = np.random.default_rng(seed)
    F = (rng.random((n_items, n_features)) < 0.3).astype(float)  # binary: Item-KNN scores tie a lot
    F[0] = 1.0
    train = rng.random((n_users, n_items)) < 0.05  # few training items: many users have 0-score ties at k
    relevant = (rng.random((n_users, n_items)) < 0.08) & ~train
    return F, train, relevant


def _masks(n):
    return [(i,) for i in range(n)] + list(itertools.combinations(range(n), 2))[:8]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("top_l", [10, 25])
def test_itemknn_incremental_equals_public_metric_on_ties(backend, top_l):
    if backend == "numba":
        pytest.importorskip("numba")
    F, train, relevant = _data()
    cf = ItemKNNCounterfactual(F, train, relevant, k=6, shrink=1.0, top_l=top_l, backend=backend)
    base = ranking_metrics(itemknn_scores(train, itemknn_weights(F, 6, 1.0)), relevant, train)
    assert cf.base == base["ndcg_10"]
    straddling = 0
    for masked in _masks(F.shape[1]):
        keep = np.ones(F.shape[1], dtype=bool)
        keep[list(masked)] = False
        scores = itemknn_scores(train, itemknn_weights(F * keep, 6, 1.0))
        assert cf.evaluate(masked) == ranking_metrics(scores, relevant, train)["ndcg_10"], masked
        straddling += _straddling_users(scores, train, relevant)
    assert straddling > 0  # the data really have tie groups across the cutoff


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_item_local_incremental_equals_public_metric_on_ties(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    F, train, relevant = _data(seed=1)
    rng = np.random.default_rng(1)
    users = np.flatnonzero(relevant.any(1))
    U = rng.integers(0, 2, (len(users), 3)).astype(float)
    E = rng.integers(0, 2, (F.shape[0], 3)).astype(float)
    P = rng.integers(0, 2, (F.shape[1], 3)).astype(float)

    def score_items(items, keep):  # small integer scores: ties everywhere
        return U @ (E[items] + (F[items] * keep) @ P).T

    cf = ItemLocalCounterfactual(score_items, F, train, relevant, top_l=12, backend=backend)
    full = np.zeros(train.shape)
    for masked in _masks(F.shape[1]):
        keep = np.ones(F.shape[1], dtype=bool)
        keep[list(masked)] = False
        full[users] = score_items(np.arange(F.shape[0]), keep)
        assert cf.evaluate(masked) == ranking_metrics(full, relevant, train)["ndcg_10"], masked
    assert _straddling_users(full, train, relevant) > 0


def _straddling_users(scores, exclude, relevant, k=10):
    """Users whose tie group at the k-th key extends past position k."""
    n = 0
    for s, ex, rel in zip(scores, exclude, relevant):
        if rel.any():
            cand = np.sort(s[~ex])[::-1]
            n += len(cand) > k and cand[k - 1] == cand[k]
    return n
