"""The rating LightningDataModule every rating model trains on."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from qrec.data.splits import Split, check_not_empty, make_split
from qrec.data.table import DataError, RatingTable


class Ratings(NamedTuple):
    """One split as tensors: users, items (int64 codes), ratings (float32 stars), timestamps (int64)."""

    users: torch.Tensor
    items: torch.Tensor
    ratings: torch.Tensor
    timestamps: torch.Tensor

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.ratings)


class _RatingRows(Dataset):
    """Indexed by a whole batch of rows at once (a slice or an index tensor): one copy per field, not 1,024 collates.

    Evaluation batches are (users, items, ratings, timestamps, rows): the row indices let metrics gather
    each rating exactly once, in order, when DDP shards (and pads) the batches.
    """

    def __init__(self, data: Ratings, with_timestamps: bool, with_rows: bool = False):
        self.data, self.with_rows = data, with_rows
        self.fields = 4 if with_timestamps or with_rows else 3

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, rows: slice | torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(rows, slice):  # consecutive rows: copies, as a gather would give
            fields = tuple(field[rows].clone() for field in self.data[: self.fields])
            rows = torch.arange(*rows.indices(len(self.data)))  # this batch's row numbers only
        else:
            rows = torch.as_tensor(rows)
            fields = tuple(field[rows] for field in self.data[: self.fields])
        return (*fields, rows) if self.with_rows else fields


# Written by hand because torch's BatchSampler yields each batch as a Python list built one index at a time, which
# the dataset then turns into a tensor: per-step Python work (~0.2 ms per 512-row batch) and, for a closed-form
# model's one batch of the whole split, ~4 s per ALS sweep at 12 M training ratings. These two yield the same
# batches as slices or index tensors.
class _InOrder(Sampler):
    """Consecutive batches of ``size`` rows as slices: ``BatchSampler(SequentialSampler(range(n)), size)``."""

    def __init__(self, n: int, size: int):
        self.n, self.size = n, max(size, 1)

    def __len__(self) -> int:
        return -(-self.n // self.size)

    def __iter__(self):
        for start in range(0, self.n, self.size):
            yield slice(start, min(start + self.size, self.n))


class _Shuffled(_InOrder):
    """The batches of ``BatchSampler(RandomSampler(range(n)), size)`` as index tensors, equal batch for batch.

    Like ``RandomSampler``, each epoch draws one seed from torch's global generator when iteration starts
    and permutes with a private generator: a seed gives the batches it gave before (tested).
    """

    def __iter__(self):
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        generator = torch.Generator()
        generator.manual_seed(seed)
        yield from torch.randperm(self.n, generator=generator).split(self.size)


def scale(ratings: torch.Tensor, rating_scale: tuple[float, float]) -> torch.Tensor:
    """Ratings on ``rating_scale`` = (min, max) -> [0, 1] (the data's scale: a fixed affine map, no leakage)."""
    lo, hi = rating_scale
    return (ratings - lo) / (hi - lo)


def unscale(values: torch.Tensor, rating_scale: tuple[float, float]) -> torch.Tensor:
    """[0, 1] -> ratings on ``rating_scale``."""
    lo, hi = rating_scale
    return values * (hi - lo) + lo


class RatingsDataModule(L.LightningDataModule):
    """Serves (user, item, rating) batches and the train-only statistics models fit on.

    Args:
        dataset: a :class:`RatingTable`, or a callable returning one (Hydra passes it with ``_partial_``):
            any source plugs in here.
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
        leave_out: ratings per user held out by ``split=leave_last``.
        rating_scale: (min, max) of the ratings; None takes the table's declared scale, else the
            training split's range. Models clip to it and quantum models map it to [0, 1].
    """

    def __init__(
        self,
        dataset: Callable[[], RatingTable] | RatingTable,
        split: str = "random",
        seed: int = 0,
        fold: int = 1,
        val_fraction: float = 0.1,
        batch_size: int | None = 1024,
        eval_batch_size: int = 20_000,
        with_timestamps: bool = False,
        train_on_val: bool = False,
        leave_out: int = 1,
        rating_scale: tuple[float, float] | None = None,
    ):
        super().__init__()
        if batch_size is not None and batch_size < 1:
            raise DataError(f"data.batch_size={batch_size} must be positive (or null for full batch).")
        self.dataset, self.split, self.seed, self.fold = dataset, split, seed, fold
        self.val_fraction, self.batch_size, self.eval_batch_size = val_fraction, batch_size, eval_batch_size
        self.with_timestamps, self.train_on_val = with_timestamps, train_on_val
        self.leave_out = leave_out
        self.declared_scale = None if rating_scale is None else tuple(float(v) for v in rating_scale)
        self.table: RatingTable | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.table is not None:
            return
        table = self.dataset() if callable(self.dataset) else self.dataset
        indices = make_split(table, self.split, self.seed, self.fold, self.val_fraction, self.leave_out)
        check_not_empty(indices, self.split, table.name, len(table))
        if self.train_on_val:
            indices = Split(np.sort(np.concatenate([indices.train, indices.val])), indices.val, indices.test)
        self.use_split(table, indices)

    def use_split(self, table: RatingTable, indices: Split) -> None:
        """Serve ``table`` split by the given row indices (``setup`` calls it with ``data.split``'s)."""
        self.indices = indices
        self.train, self.val, self.test = (self._rows(table, idx) for idx in (indices.train, indices.val, indices.test))
        self.table = table
        self.rating_scale = self._rating_scale(table)

    def _rating_scale(self, table: RatingTable) -> tuple[float, float]:
        declared = self.declared_scale or table.rating_scale
        if declared is not None:
            lo, hi = declared
            outside = int(((self.train.ratings < lo) | (self.train.ratings > hi)).sum())
            if outside:
                raise DataError(f"{outside} training ratings of {table.name} are outside data.rating_scale="
                                f"[{lo:g}, {hi:g}]. Declare the scale your data uses.")  # fmt: skip
            return float(lo), float(hi)
        lo, hi = float(self.train.ratings.min()), float(self.train.ratings.max())
        if lo == hi:
            raise DataError(
                f"Every training rating of {table.name} is {lo:g}: no scale to learn. This is implicit "
                "feedback: use data=ratings_file_implicit, or set data.rating_scale=[min,max]."
            )
        return lo, hi

    def cold_start(self) -> dict[str, int]:
        """Test users and items never seen in training (the models give them the bias fallback)."""
        seen_users, seen_items = np.unique(self.train.users.numpy()), np.unique(self.train.items.numpy())
        return {
            "test/cold_users": int(np.setdiff1d(np.unique(self.test.users.numpy()), seen_users).size),
            "test/cold_items": int(np.setdiff1d(np.unique(self.test.items.numpy()), seen_items).size),
        }

    def describe(self) -> dict:
        """What the run trained on, for metrics.json and reports: name, sizes, scale, split, sources."""
        declared = self.declared_scale or self.table.rating_scale
        return describe_table(
            self.table, split=self.split, rating_scale=list(self.rating_scale),
            scale_source="declared" if declared else "inferred from the training split",
            parts={"train": len(self.train), "val": len(self.val), "test": len(self.test)},
        )  # fmt: skip

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
    def protocol(self) -> str:
        """The evaluation protocol in words, e.g. ``explicit ratings: random 60/20/20, seed 0`` (the run
        summary prints it; ``metrics.json`` records it as ``protocol``)."""
        val = f"{self.val_fraction:.0%} of the rest to validation"
        how = {
            "random": "random 60/20/20 train/val/test",
            "kfold": f"5-fold, fold {self.fold} to test, {val}",
            "temporal": "per user, latest 20% to test and the 20% before to validation",
        }.get(self.split, f"GroupLens fold {self.split} ({self.split}.base / {self.split}.test), {val}")
        refit = "; validation ratings joined to training (refit)" if self.train_on_val else ""
        return f"explicit ratings: {how}, seed {self.seed}{refit}"

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
        sampler = _Shuffled(len(data), size) if shuffle else _InOrder(len(data), size)
        dataset = _RatingRows(data, self.with_timestamps, with_rows=evaluation)
        return DataLoader(dataset, sampler=sampler, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, self.batch_size, shuffle=self.batch_size is not None)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val, self.eval_batch_size, shuffle=False, evaluation=True)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test, self.eval_batch_size, shuffle=False, evaluation=True)


def describe_table(table: RatingTable, **extra) -> dict:
    """``name``, ``users``, ``items``, ``ratings``, ``sources`` (file -> sha256) and ``extra``."""
    return {"name": table.name, "users": table.n_users, "items": table.n_items, "ratings": len(table),
            "timestamps": table.has_timestamps, "sources": dict(table.sources), **extra}  # fmt: skip
