"""Splits, the DataModule and the leakage guard, on generated data."""

import numpy as np
import pytest
import torch

from qrec.data import DataError, RatingsDataModule, make_synthetic_ratings
from qrec.data.splits import SPLITS, make_split


@pytest.fixture(scope="module")
def table():
    return make_synthetic_ratings(n_users=80, n_items=50, density=0.5, seed=3)


@pytest.mark.parametrize("split", ["random", "kfold", "temporal"])
def test_split_disjoint_covering_deterministic(table, split):
    a, b = make_split(table, split, seed=1), make_split(table, split, seed=1)
    parts = [a.train, a.val, a.test]
    assert sum(len(p) for p in parts) == len(table)
    assert len(np.unique(np.concatenate(parts))) == len(table)
    for x, y in zip(parts, [b.train, b.val, b.test]):
        np.testing.assert_array_equal(x, y)
    assert len(a.val) > 0 and len(a.test) > 0


def test_random_split_is_60_20_20_and_seeded(table):
    s = make_split(table, "random", seed=0)
    n = len(table)
    assert len(s.train) == int(0.6 * n) and len(s.val) == int(0.8 * n) - int(0.6 * n)
    assert not np.array_equal(s.test, make_split(table, "random", seed=1).test)


def test_kfold_folds_partition_the_data(table):
    tests = [make_split(table, "kfold", seed=0, fold=f).test for f in range(1, 6)]
    assert len(np.unique(np.concatenate(tests))) == len(table)


def test_temporal_split_puts_each_users_latest_ratings_last(table):
    s = make_split(table, "temporal", seed=0)
    for user in np.unique(table.users):
        train_t = table.timestamps[s.train][table.users[s.train] == user]
        test_t = table.timestamps[s.test][table.users[s.test] == user]
        if len(test_t) and len(train_t):
            assert train_t.max() <= test_t.min()


def test_canonical_folds_need_full_movielens(table):
    with pytest.raises(DataError, match="full MovieLens-100k"):
        make_split(table, "u1", seed=0)


def test_unknown_split_names_the_choices(table):
    with pytest.raises(DataError, match="data.split='nope'.*" + SPLITS[0]):
        make_split(table, "nope", seed=0)


def test_datamodule_batches_and_full_batch(table):
    dm = RatingsDataModule(lambda: table, batch_size=16)
    dm.setup()
    users, items, ratings = next(iter(dm.train_dataloader()))
    assert users.shape == items.shape == ratings.shape == (16,)
    assert users.dtype == torch.int64 and ratings.dtype == torch.float32
    dm.batch_size = None
    (batch,) = list(dm.train_dataloader())
    for served, stored in zip(batch, dm.train[:3]):  # every row, in order
        assert torch.equal(served, stored)
    batch[2].zero_()  # a model may change its batch in place; the split must not change with it
    assert dm.train.ratings.min() >= 1
    dm.eval_batch_size = 7  # evaluation batches carry their row numbers: every row once, in order
    rows = torch.cat([batch[4] for batch in dm.val_dataloader()])
    assert torch.equal(rows, torch.arange(len(dm.val)))


@pytest.mark.parametrize(("n", "size"), [(1000, 64), (1000, 1000), (7, 3), (5, 10)])
def test_batches_equal_torch_batch_samplers(n, size):
    """The data module's samplers give torch's BatchSampler batches, and consume the global RNG as it does."""
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    from qrec.data.datamodule import _InOrder, _Shuffled

    rows = torch.arange(n)
    for ours, theirs in (
        (_InOrder(n, size), SequentialSampler(range(n))),
        (_Shuffled(n, size), RandomSampler(range(n))),
    ):
        reference = BatchSampler(theirs, size, drop_last=False)
        assert len(ours) == len(reference)
        for epoch in range(2):  # a new order each epoch, the same one as torch's
            torch.manual_seed(epoch)
            expected = [list(batch) for batch in reference]
            after = torch.rand(1)
            torch.manual_seed(epoch)
            assert [rows[batch].tolist() for batch in ours] == expected
            assert torch.equal(torch.rand(1), after)


def test_global_mean_and_matrix_use_train_only(table):
    dm = RatingsDataModule(lambda: table)
    dm.setup()
    assert dm.global_mean == pytest.approx(float(table.ratings[dm.indices.train].mean()))
    assert dm.train_csr().nnz == len(dm.train)


def test_bad_batch_size():
    with pytest.raises(DataError, match="batch_size"):
        RatingsDataModule(make_synthetic_ratings, batch_size=0)
