"""Item features and the implicit-feedback data module (synthetic table: no download)."""

import functools

import numpy as np
import pytest

from qrec.data import DataError, make_synthetic_ratings
from qrec.data.features import genre_features, item_features, kg_features, kg_pairs
from qrec.data.implicit import ImplicitDataModule


@pytest.fixture(scope="module")
def table():
    return make_synthetic_ratings(n_users=40, n_items=30, density=0.5, seed=0)


def test_genre_features_are_binary_and_named(table):
    feats = genre_features(table)
    M = feats.matrix.toarray()
    assert M.shape == (30, feats.n_features) and set(np.unique(M)) <= {0.0, 1.0}
    for item in range(30):
        assert {feats.names[j] for j in np.flatnonzero(M[item])} == set(table.item_info.genres[item])


def test_kg_features_rank_by_frequency_and_merge_inverse_twins(table):
    kg = table.kg.copy()
    # Repeat every head triple the other way round under an inverse relation name: must not double features.
    twin = kg.rename(columns={"head": "tail", "tail": "head"}).assign(
        relation=lambda d: d.relation + ".inverse"
    )
    doubled = type(table)(**{**table.__dict__, "kg": __import__("pandas").concat([kg, twin])})
    assert len(kg_pairs(doubled)) == len(kg_pairs(table))
    feats = kg_features(table, 5)
    counts = np.asarray(feats.matrix.sum(0)).ravel()
    assert (np.diff(counts) <= 0).all()  # most frequent first
    assert feats.summary()["features"] == 5 and 0 < feats.summary()["sparsity"] < 1
    with pytest.raises(DataError, match="only"):
        kg_features(table, 10_000)
    with pytest.raises(DataError, match="unknown"):
        item_features(table, "plot")


def test_implicit_split_is_disjoint_seeded_and_protocol_sized(table):
    make = functools.partial(make_synthetic_ratings, n_users=40, n_items=30, density=0.5, seed=0)
    dm = ImplicitDataModule(make, features="kg", n_features=5, threshold=4.0, seed=3)
    dm.setup()
    parts = [dm.train, dm.val, dm.test]
    total = sum(p.nnz for p in parts)
    assert total == int((table.ratings >= 4).sum())
    assert abs(dm.test.nnz - 0.2 * total) <= 1 and abs(dm.val.nnz - 0.16 * total) <= 1
    assert (dm.train.multiply(dm.val)).nnz == 0 and (dm.train.multiply(dm.test)).nnz == 0
    again = ImplicitDataModule(make, features="kg", n_features=5, seed=3)
    again.setup()
    assert (again.test != dm.test).nnz == 0
    users, _ = dm.train_pairs
    neg = dm.sample_negatives(users, np.random.default_rng(0))
    assert not dm.train.toarray()[users, neg].any()  # negatives are never training positives
    u, pos, negb = next(iter(dm.train_dataloader()))
    assert u.shape == pos.shape == negb.shape
    with pytest.raises(DataError):
        ImplicitDataModule(make, val_fraction=1.0)


def test_train_fraction_subsets_bpr_positives_but_excludes_every_training_item():
    make = functools.partial(make_synthetic_ratings, n_users=40, n_items=30, density=0.5, seed=0)
    full = ImplicitDataModule(make, features=None, threshold=3.0, seed=1)
    part = ImplicitDataModule(make, features=None, threshold=3.0, seed=1, train_fraction=0.3)
    full.setup()
    part.setup()
    assert (part.train != full.train).nnz == 0 and (part.exclude("test") != full.exclude("test")).nnz == 0
    n = len(part.train_pairs[0])
    assert 0.15 * full.train.nnz < n < 0.45 * full.train.nnz
    assert full.train.toarray()[part.train_pairs].all()  # a subset of the training interactions
    assert part.feature_names == [] and "features" not in part.summary()
    with pytest.raises(DataError, match="train_fraction"):
        ImplicitDataModule(make, train_fraction=0.0)


def test_feature_models_need_features():
    from qrec.models.itemknn_cbf import ItemKNNCBFModule

    make = functools.partial(make_synthetic_ratings, n_users=40, n_items=30, density=0.5, seed=0)
    dm = ImplicitDataModule(make, features=None, threshold=3.0)
    dm.setup()
    with pytest.raises(ValueError, match="needs item features"):
        ItemKNNCBFModule().attach(dm)
