"""The implicit data module keeps O(interactions) memory: no dense users × items matrix, same results."""

import functools

import numpy as np
import scipy.sparse as sp

from qrec.data.implicit import ImplicitDataModule
from qrec.data.synthetic import make_synthetic_ratings
from qrec.metrics.ranking import ranking_metrics


def _module() -> ImplicitDataModule:
    make = functools.partial(make_synthetic_ratings, n_users=100, n_items=80, density=0.1, seed=0)
    dm = ImplicitDataModule(make, features=None, threshold=3.0, seed=2)
    dm.setup()
    return dm


def test_no_stored_array_scales_with_users_times_items():
    dm = _module()
    cells, interactions = dm.n_users * dm.n_items, dm.train.nnz + dm.val.nnz + dm.test.nnz
    assert interactions < cells / 4  # so an O(users × items) array would stand out
    for name, value in vars(dm).items():
        if isinstance(value, np.ndarray):
            assert value.size <= interactions, name
        if sp.issparse(value):
            assert value.nnz <= interactions, name
    for split in ("val", "test"):
        assert sp.issparse(dm.relevant(split)) and sp.issparse(dm.exclude(split))
    assert dm.exclude("test").nnz == dm.train.nnz + dm.val.nnz


def test_negatives_and_metrics_equal_the_dense_path():
    dm = _module()
    dense_train = dm.train.toarray().astype(bool)  # what the module used to keep for sampling
    users, _ = dm.train_pairs
    rng, reference = np.random.default_rng(5), np.random.default_rng(5)
    neg = dm.sample_negatives(users, rng)
    expected = reference.integers(0, dm.n_items, len(users))  # the old loop, on the dense matrix
    bad = dense_train[users, expected]
    while bad.any():
        expected[bad] = reference.integers(0, dm.n_items, int(bad.sum()))
        bad = dense_train[users, expected]
    np.testing.assert_array_equal(neg, expected)
    assert not dense_train[users, neg].any()

    scores = np.random.default_rng(0).random((dm.n_users, dm.n_items)).round(1)  # rounded: ties too
    for split in ("val", "test"):
        relevant, exclude = dm.relevant(split), dm.exclude(split)
        sparse = ranking_metrics(scores, relevant, exclude, k=5)
        dense = ranking_metrics(scores, relevant.toarray().astype(bool), exclude.toarray().astype(bool), k=5)
        assert sparse == dense
