"""Implicit-feedback ranking data (the CAQUBO protocol) with item features.

- Interactions are ratings ≥ ``threshold`` (default 4: "liked"; 55,375 of MovieLens-100k's 100,000
  ratings). Lower-rated movies are not positives: a 1-star rating is not an endorsement, and
  counting it would reward recommending disliked items.
- Split (paper): a random 80/20 train/test split of the interactions, then the train part again
  80/20 into train/validation; all seeded. Users may be cold in a split by chance; users without
  relevant items in a split are skipped by the metrics.
- Excluded from rankings: the training items when validating; training and validation items when
  testing (both are known interactions, neither is a test positive).
- Batches: ``(users, positive items, negative items)`` for BPR, one uniform negative per positive
  (1:1) resampled until it is not a training positive of the user; evaluation batches are user ids.
- ``features=null``: no item features (the two-tower model); ``train_fraction``: BPR trains on a seeded
  random share of the training interactions (small-data experiments) while every training interaction
  is still excluded from rankings, so metrics stay comparable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset

from qrec.data.datamodule import describe_table
from qrec.data.features import ItemFeatures, item_features
from qrec.data.item_files import features_from_file
from qrec.data.table import DataError, RatingTable


class _Triples(Dataset):
    """One epoch of (user, positive, negative) triples in shuffled batches, negatives drawn per epoch."""

    def __init__(self, dm: ImplicitDataModule, batch_size: int, epoch_seed: Callable[[], int]):
        self.dm, self.batch_size, self.epoch_seed = dm, batch_size, epoch_seed
        self.n = len(dm.train_pairs[0])
        self.batches = -(-self.n // batch_size)

    def __len__(self) -> int:
        return self.batches

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if index == 0 or not hasattr(self, "_epoch"):
            rng = np.random.default_rng(self.epoch_seed())
            order = rng.permutation(self.n)
            users, items = self.dm.train_pairs
            self._epoch = (users[order], items[order], self.dm.sample_negatives(users[order], rng))
        sl = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return tuple(torch.from_numpy(a[sl]) for a in self._epoch)  # type: ignore[return-value]


class _Users(Dataset):
    def __init__(self, users: np.ndarray, batch_size: int):
        self.users, self.batch_size = users, batch_size

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.users[index * self.batch_size : (index + 1) * self.batch_size])


class ImplicitDataModule(L.LightningDataModule):
    """Implicit interactions + item features for feature-aware ranking models.

    Args:
        dataset: a :class:`RatingTable` or a callable returning one (Hydra ``_partial_``).
        features: ``kg``, ``genres`` (see :mod:`qrec.data.features`), a mapping with ``path`` (and
            optionally ``format``, ``sep``, ``item_column``: see :mod:`qrec.data.item_files`) for item
            features from a file, or None (no item features; also a mapping whose ``path`` is null).
        n_features: number of KG features (150 or 500 in the paper's setting).
        threshold: minimum rating that counts as an interaction; None: every row is one.
        test_fraction, val_fraction: 0.2 and 0.2 (of the remaining train part) in the paper.
        seed: fixes the split, the training subset and the negative samples.
        train_fraction: share of the training interactions BPR trains on (1.0: all).
        batch_size: BPR training batch size. eval_batch_size: users per evaluation batch.
    """

    def __init__(
        self,
        dataset: Callable[[], RatingTable] | RatingTable,
        features: str | Mapping | None = "kg",
        n_features: int = 150,
        threshold: float | None = 4.0,
        test_fraction: float = 0.2,
        val_fraction: float = 0.2,
        seed: int = 0,
        batch_size: int = 1024,
        eval_batch_size: int = 256,
        train_fraction: float = 1.0,
    ):
        super().__init__()
        if not 0 < train_fraction <= 1:
            raise DataError(f"data.train_fraction={train_fraction} must be in (0, 1].")
        for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
            if not 0 < value < 1:
                raise DataError(f"data.{name}={value} must be strictly between 0 and 1.")
        if batch_size is None or batch_size < 1 or eval_batch_size < 1:
            raise DataError(
                f"data.batch_size={batch_size} and data.eval_batch_size={eval_batch_size} must be positive "
                "integers (ranking models train by SGD on BPR triples)."
            )
        self.dataset, self.feature_kind, self.n_features_requested = dataset, features, n_features
        self.threshold, self.test_fraction, self.val_fraction = threshold, test_fraction, val_fraction
        self.seed, self.batch_size, self.eval_batch_size = seed, batch_size, eval_batch_size
        self.train_fraction = train_fraction
        self.table: RatingTable | None = None
        self.epoch = 0

    def setup(self, stage: str | None = None) -> None:
        if self.table is not None:
            return
        table = self.dataset() if callable(self.dataset) else self.dataset
        self.features: ItemFeatures | None = None
        if isinstance(self.feature_kind, Mapping):
            spec = dict(self.feature_kind)
            if spec.get("path") is not None:
                self.features = features_from_file(table, **spec)
        elif self.feature_kind is not None:
            self.features = item_features(table, self.feature_kind, self.n_features_requested)
        if self.features is not None and self.features.matrix.shape[0] != table.n_items:
            raise DataError(
                f"Feature matrix has {self.features.matrix.shape[0]} rows for {table.n_items} items."
            )
        liked = np.arange(len(table)) if self.threshold is None else np.flatnonzero(table.ratings >= self.threshold)
        if len(liked) < 10:
            raise DataError(
                f"Only {len(liked)} of {table.name}'s {len(table)} ratings are ≥ data.threshold={self.threshold}: "
                "too few interactions to split into train/validation/test (at least 10). Lower data.threshold, "
                "or set data.threshold=null to count every row."
            )
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(liked)
        n_test = int(round(self.test_fraction * len(order)))
        test, rest = order[:n_test], order[n_test:]
        n_val = int(round(self.val_fraction * len(rest)))
        val, train = rest[:n_val], rest[n_val:]
        shape = (table.n_users, table.n_items)

        def csr(rows: np.ndarray) -> sp.csr_matrix:
            return sp.csr_matrix(
                (np.ones(len(rows), dtype=np.float32), (table.users[rows], table.items[rows])), shape=shape
            )

        for part, rows in (("validation", val), ("test", test), ("train", train)):
            if len(rows) == 0:
                raise DataError(f"The {part} part of {table.name}'s {len(liked)} interactions is empty; raise "
                                "data.test_fraction / data.val_fraction or use more data.")  # fmt: skip
        self.rows = {"train": train, "val": val, "test": test}  # rating-table rows of each split
        self.train, self.val, self.test = csr(train), csr(val), csr(test)
        fit = train
        if self.train_fraction < 1:
            fit = train[np.random.default_rng(self.seed + 1).random(len(train)) < self.train_fraction]
        coo = csr(fit).tocoo()
        self.train_pairs = (coo.row.astype(np.int64), coo.col.astype(np.int64))  # BPR positives
        # Membership for negative sampling: sorted user·n_items + item keys, O(interactions) memory. A dense
        # users × items bool matrix was O(1) per lookup but 3.7 GB at MovieLens-20M's 138k × 27k.
        coo = self.train.tocoo()
        self._train_keys = np.sort(coo.row.astype(np.int64) * table.n_items + coo.col)  # (repeats are harmless)
        self.table = table

    # --- shapes and splits ----------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self.table.n_users

    @property
    def n_items(self) -> int:
        return self.table.n_items

    @property
    def protocol(self) -> str:
        """The evaluation protocol in words, e.g. ``implicit: ratings>=4, random 80/20 then 80/20, seed 0``
        (the run summary prints it; ``metrics.json`` records it as ``protocol``)."""
        test, val = round(100 * self.test_fraction), round(100 * self.val_fraction)
        split = f"random {100 - test}/{test} then {100 - val}/{val}"
        rows = "every row an interaction" if self.threshold is None else f"ratings>={self.threshold:g}"
        text = f"implicit: {rows}, {split}, seed {self.seed}"
        if self.feature_kind is not None:
            kg = self.n_features_requested if self.feature_kind == "kg" else ""
            text += f", features {self.feature_kind}{kg}"
        if self.train_fraction < 1:
            text += f", BPR on {self.train_fraction:g} of the training interactions"
        return text

    @property
    def feature_names(self) -> list[str]:
        return [] if self.features is None else self.features.names

    @property
    def feature_labels(self) -> list[str]:
        """Readable labels in the order of :attr:`feature_names` (see :class:`ItemFeatures`)."""
        return [] if self.features is None else self.features.labels

    def relevant(self, split: str) -> sp.csr_matrix:
        """(users, items) held-out positives of ``val`` or ``test``."""
        if split not in ("val", "test"):
            raise ValueError(f"split={split!r}: choose 'val' or 'test'.")
        return self.val if split == "val" else self.test

    def exclude(self, split: str) -> sp.csr_matrix:
        """(users, items) known interactions removed from the ranking when evaluating ``split``."""
        return self.train if split == "val" else (self.train + self.val).tocsr()

    def summary(self) -> dict:
        return {
            "users": self.n_users,
            "items": self.n_items,
            "train": int(self.train.nnz),
            "val": int(self.val.nnz),
            "test": int(self.test.nnz),
            **({} if self.features is None else self.features.summary()),
        }

    def cold_start(self) -> dict[str, int]:
        """Test users and items with no training interaction."""
        test_users, test_items = np.unique(self.test.nonzero()[0]), np.unique(self.test.nonzero()[1])
        return {
            "test/cold_users": int((np.diff(self.train.indptr)[test_users] == 0).sum()),
            "test/cold_items": int((np.asarray(self.train.sum(0)).ravel()[test_items] == 0).sum()),
        }

    def describe(self) -> dict:
        """What the run trained on, for metrics.json and reports (see RatingsDataModule.describe)."""
        return describe_table(
            self.table, split="random", threshold=self.threshold,
            parts={"train": int(self.train.nnz), "val": int(self.val.nnz), "test": int(self.test.nnz)},
            features=None if self.features is None else self.features.source,
        )  # fmt: skip

    # --- sampling and loaders -------------------------------------------------------------------
    def sample_negatives(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One uniform item per user that is not among the user's training positives."""
        neg = rng.integers(0, self.n_items, len(users))
        bad = self._is_train(users, neg)
        while bad.any():  # each retry hits a positive with prob. ≈ density (< 5%)
            neg[bad] = rng.integers(0, self.n_items, int(bad.sum()))
            bad = self._is_train(users, neg)
        return neg

    def _is_train(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each (user, item) pair is a training interaction (binary search in the sorted keys)."""
        keys = np.asarray(users, dtype=np.int64) * self.n_items + items
        if len(self._train_keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        position = np.searchsorted(self._train_keys, keys).clip(max=len(self._train_keys) - 1)
        return self._train_keys[position] == keys

    def _next_epoch_seed(self) -> int:
        self.epoch += 1
        return self.seed * 100_003 + self.epoch

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            _Triples(self, self.batch_size, self._next_epoch_seed), batch_size=None, shuffle=False
        )

    def _users_loader(self, split: str) -> DataLoader:
        users = np.flatnonzero(np.diff(self.relevant(split).indptr) > 0).astype(np.int64)
        return DataLoader(_Users(users, self.eval_batch_size), batch_size=None, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        return self._users_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._users_loader("test")


def implicit_datamodule(trainer, owner: str, example: str) -> ImplicitDataModule:
    """The trainer's data module, set up, for a model that ranks implicit feedback.

    Raises:
        TypeError: it is not an :class:`ImplicitDataModule`; the message names ``owner`` and the
            ``data=`` option (``example``) to use instead.
    """
    dm = trainer.datamodule
    if not isinstance(dm, ImplicitDataModule):
        raise TypeError(
            f"{owner} ranks implicit feedback: it needs an ImplicitDataModule (data={example}), "
            f"got {type(dm).__name__}."
        )
    dm.setup("fit")
    return dm
