"""Hydra entry points of the ``data=`` configs: a data source plus the data module that serves it.

The top-level keys of a data config are this module's arguments (``data.root``, ``data.path``,
``data.columns.user`` ...); everything else goes to the data module. Any other source plugs in the
same way: a callable returning a :class:`RatingTable`, given to ``RatingsDataModule(dataset=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import numpy as np
import pandas as pd

from qrec.data.datamodule import RatingsDataModule
from qrec.data.files import read_ratings
from qrec.data.grouplens import load_movielens
from qrec.data.implicit import ImplicitDataModule
from qrec.data.table import DataError, RatingTable


def movielens(name: str = "ml-100k", root: str | None = None, url: str | None = None, sha256: str | None = None,
              implicit: bool = False, **kwargs) -> RatingsDataModule | ImplicitDataModule:  # fmt: skip
    """A MovieLens release (see :func:`qrec.data.grouplens.load_movielens`) in a rating or implicit data module."""
    dataset = partial(load_movielens, name, root, url, sha256)
    return ImplicitDataModule(dataset, **kwargs) if implicit else RatingsDataModule(dataset, **kwargs)


def ratings_file(
    path: str | None = None,
    test_path: str | None = None,
    columns: Mapping | None = None,
    sep: str | None = None,
    header: bool | None = None,
    encoding: str = "utf-8",
    rating_scale: list[float] | None = None,
    duplicates: str = "error",
    implicit: bool = False,
    **kwargs,
) -> RatingsDataModule | ImplicitDataModule:
    """Your own ratings file (and optionally a fixed test file) in a rating or implicit data module.

    Args:
        path: the ratings file (CSV, TSV, any separator, Parquet).
        test_path: a test file in the same layout: the split is then fixed (validation comes from ``path``).
        columns, sep, header, encoding, duplicates: see :func:`qrec.data.files.read_ratings`.
        rating_scale: declared [min, max] (checked on every row); None infers it from the training split.
        implicit: serve implicit interactions to ranking models instead of explicit ratings.
        **kwargs: the data module's arguments (split, seed, batch sizes, threshold, features ...).
    """
    if path is None:
        raise DataError("data=ratings_file needs data.path=/path/to/ratings.csv (CSV, TSV or Parquet).")
    scale = None if rating_scale is None else (float(rating_scale[0]), float(rating_scale[1]))
    read = partial(read_ratings, columns=dict(columns or {}), sep=sep, header=header, encoding=encoding,
                   rating_scale=scale, duplicates=duplicates)  # fmt: skip
    dataset = partial(read, path) if test_path is None else partial(_train_test, read, path, test_path)
    if implicit:
        return ImplicitDataModule(dataset, **kwargs)
    return RatingsDataModule(dataset, rating_scale=scale, **kwargs)


def synthetic(
    n_users: int = 60, n_items: int = 40, density: float = 0.4, n_ratings: int | None = None, rank: int = 3,
    noise: float = 0.3, item_skew: float = 0.0, user_skew: float = 0.0, generate_features: bool = True,
    implicit: bool = False, **kwargs,
) -> RatingsDataModule | ImplicitDataModule:  # fmt: skip
    """Generated ratings (see :func:`qrec.data.synthetic.make_synthetic_ratings`; the data seed fixes them too)."""
    from qrec.data.synthetic import make_synthetic_ratings

    dataset = partial(make_synthetic_ratings, n_users, n_items, density, rank, kwargs.get("seed", 0), n_ratings,
                      noise, item_skew, user_skew, generate_features)  # fmt: skip
    return ImplicitDataModule(dataset, **kwargs) if implicit else RatingsDataModule(dataset, **kwargs)


def _train_test(read, path: str, test_path: str) -> RatingTable:
    """Both files read and validated on their own, then encoded with shared codes and a test mask."""
    train, test = read(path), read(test_path)
    user_ids = pd.Index(train.user_ids).append(pd.Index(test.user_ids)).unique()
    item_ids = pd.Index(train.item_ids).append(pd.Index(test.item_ids)).unique()
    users = np.concatenate([user_ids.get_indexer(train.user_ids[train.users]),
                            user_ids.get_indexer(test.user_ids[test.users])])  # fmt: skip
    items = np.concatenate([item_ids.get_indexer(train.item_ids[train.items]),
                            item_ids.get_indexer(test.item_ids[test.items])])  # fmt: skip
    pairs = pd.DataFrame({"u": users, "i": items})
    overlap = int(pairs.duplicated().sum())
    if overlap:
        raise DataError(
            f"{overlap} (user, item) pairs are rated both in data.path={path} and data.test_path={test_path}: "
            "a test rating must not also be a training rating. Remove them from one file."
        )
    return RatingTable(
        users=users.astype(np.int64), items=items.astype(np.int64),
        ratings=np.concatenate([train.ratings, test.ratings]),
        timestamps=np.concatenate([train.timestamps, test.timestamps]),
        user_ids=np.asarray(user_ids), item_ids=np.asarray(item_ids), name=train.name,
        rating_scale=train.rating_scale, has_timestamps=train.has_timestamps and test.has_timestamps,
        test_mask=np.r_[np.zeros(len(train), bool), np.ones(len(test), bool)],
        sources={**train.sources, **test.sources},
    )  # fmt: skip
