"""The rating LightningDataModule every rating model trains on."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from qrec.data.movielens import DataError, RatingTable
from qrec.data.splits import Split, make_split

RATING_MIN, RATING_MAX = 1.0, 5.0


class Ratings(NamedTuple):
    """One split as tensors: users, items (int64 codes), ratings (float32 stars), timestamps (int64)."""

    users: torch.Tensor
    items: torch.Tensor
    ratings: torch.Tensor
    timestamps: torch.Tensor

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.ratings)


class _RatingRows(Dataset):
    """Indexed by a whole list of rows at once, so a batch is one tensor gather, not 1,024 collates.

    Evaluation batches are (users, items, ratings, timestamps, rows): the row indices let metrics gather
    each rating exactly once, in order, when DDP shards (and pads) the batches.
    """

    def __init__(self, data: Ratings, with_timestamps: bool, with_rows: bool = False):
        self.data, self.with_rows = data, with_rows
        self.fields = 4 if with_timestamps or with_rows else 3

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, rows: list[int]) -> tuple[torch.Tensor, ...]:
        rows = torch.as_tensor(rows)
        fields = tuple(field[rows] for field in self.data[: self.fields])
        return (*fields, rows) if self.with_rows else fields


def scale(ratings: torch.Tensor) -> torch.Tensor:
    """Stars [1, 5] -> [0, 1] (fixed affine map; nothing fitted, so no leakage)."""
    return (ratings - RATING_MIN) / (RATING_MAX - RATING_MIN)


def unscale(values: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> stars [1, 5]."""
    return values * (RATING_MAX - RATING_MIN) + RATING_MIN


class RatingsDataModule(L.LightningDataModule):
    """Serves (user, item, rating) batches and the train-only statistics models fit on.

    Args:
        dataset: a callable returning a :class:`RatingTable` (Hydra passes it with ``_partial_``).
        split: see :func:`qrec.data.splits.make_split`.
        seed: fixes the split (``train.py`` passes the top-level ``seed``).
        batch_size: training batch size; ``None`` serves the whole training split as one batch
            (closed-form models: one batch = one sweep).
        eval_batch_size: validation/test batch size.
        with_timestamps: batches are (users, items, ratings, timestamps) instead of the first three
            (sequence-aware models need the time of each query).
        train_on_val: the validation ratings join the training split (``refit_on_val=true`` in
            ``train.py``: a final fit after every choice was made on validation). Validation metrics of
            such a model are not held-out numbers.
    """

    def __init__(
        self,
        dataset: Callable[[], RatingTable],
        split: str = "random",
        seed: int = 0,
        fold: int = 1,
        val_fraction: float = 0.1,
        batch_size: int | None = 1024,
        eval_batch_size: int = 20_000,
        with_timestamps: bool = False,
        train_on_val: bool = False,
    ):
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise DataError(f"data.batch_size={batch_size} must be positive (or null for full batch).")
        self.dataset, self.split, self.seed, self.fold = dataset, split, seed, fold
        self.val_fraction, self.batch_size, self.eval_batch_size = val_fraction, batch_size, eval_batch_size
        self.with_timestamps, self.train_on_val = with_timestamps, train_on_val
        self.table: RatingTable | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.table is not None:
            return
        table = self.dataset()
        indices = make_split(table, self.split, self.seed, self.fold, self.val_fraction)
        if self.train_on_val:
            indices = Split(np.sort(np.concatenate([indices.train, indices.val])), indices.val, indices.test)
        self.use_split(table, indices)

    def use_split(self, table: RatingTable, indices: Split) -> None:
        """Serve ``table`` split by the given row indices (``setup`` calls it with ``data.split``'s)."""
        self.indices = indices
        self.train, self.val, self.test = (self._rows(table, idx) for idx in (indices.train, indices.val, indices.test))
        self.table = table

    @staticmethod
    def _rows(table: RatingTable, idx: np.ndarray) -> Ratings:
        return Ratings(*(torch.from_numpy(np.ascontiguousarray(a[idx]))
                         for a in (table.users, table.items, table.ratings, table.timestamps)))  # fmt: skip

    @property
    def n_users(self) -> int:
        return self.table.n_users

    @property
    def n_items(self) -> int:
        return self.table.n_items

    @property
    def global_mean(self) -> float:
        """Mean training rating (train split only)."""
        return float(self.train.ratings.mean())

    def train_csr(self, values: np.ndarray | None = None) -> sp.csr_matrix:
        """(n_users, n_items) CSR of the training split; ``values`` replace the ratings if given."""
        data = self.train.ratings.numpy() if values is None else np.asarray(values, dtype=np.float32)
        return sp.csr_matrix(
            (data, (self.train.users.numpy(), self.train.items.numpy())), shape=(self.n_users, self.n_items)
        )

    def _loader(self, data: Ratings, batch_size: int | None, shuffle: bool, evaluation: bool = False) -> DataLoader:
        size = len(data) if batch_size is None else batch_size
        base = RandomSampler(range(len(data))) if shuffle else SequentialSampler(range(len(data)))
        sampler = BatchSampler(base, size, drop_last=False)
        dataset = _RatingRows(data, self.with_timestamps, with_rows=evaluation)
        return DataLoader(dataset, sampler=sampler, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, self.batch_size, shuffle=self.batch_size is not None)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, self.eval_batch_size, shuffle=False, evaluation=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test, self.eval_batch_size, shuffle=False, evaluation=True)
