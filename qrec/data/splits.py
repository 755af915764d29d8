"""Deterministic train/validation/test splits of a rating table (index arrays into its rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qrec.data.movielens import DataError, RatingTable

SPLITS = ("random", "kfold", "u1", "u2", "u3", "u4", "u5", "temporal")


@dataclass
class Split:
    """Row indices of each part; disjoint and covering every rating once."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def make_split(table: RatingTable, split: str, seed: int, fold: int = 1, val_fraction: float = 0.1) -> Split:
    """Split ``table`` by name.

    Args:
        split: ``random`` (60/20/20, the seed report's protocol), ``kfold`` (5 folds: fold ``fold`` is
            the 20% test part, ``val_fraction`` of the rest validates), ``u1``..``u5`` (canonical
            GroupLens folds rebuilt from file order, ``val_fraction`` of the base validates) or
            ``temporal`` (each user's latest 20% of ratings to test, the 20% before to validation).
        seed: fixes every random choice.
        fold: 1..5, used by ``kfold``.
        val_fraction: validation share of the training part for ``kfold`` and ``u*``.
    """
    rng = np.random.default_rng(seed)
    n = len(table)
    if split == "random":
        order = rng.permutation(n)
        a, b = int(0.6 * n), int(0.8 * n)
        return Split(np.sort(order[:a]), np.sort(order[a:b]), np.sort(order[b:]))
    if split == "kfold":
        if not 1 <= fold <= 5:
            raise DataError(f"data.fold={fold} is not in 1..5 (kfold has 5 folds).")
        folds = np.array_split(rng.permutation(n), 5)
        test = folds[fold - 1]
        return _hold_out_val(np.concatenate(folds[: fold - 1] + folds[fold:]), test, val_fraction, rng)
    if split in ("u1", "u2", "u3", "u4", "u5"):
        if n != 100_000:
            raise DataError(f"data.split={split} needs the full MovieLens-100k in file order (got {n} rows).")
        i = int(split[1])
        test = np.arange((i - 1) * 20_000, i * 20_000)
        return _hold_out_val(np.setdiff1d(np.arange(n), test), test, val_fraction, rng)
    if split == "temporal":
        return _temporal(table)
    raise DataError(f"data.split={split!r} is unknown; choose one of {', '.join(SPLITS)}.")


def _hold_out_val(base: np.ndarray, test: np.ndarray, fraction: float, rng: np.random.Generator) -> Split:
    if not 0 < fraction < 1:
        raise DataError(f"data.val_fraction={fraction} must be strictly between 0 and 1.")
    base = rng.permutation(base)
    n_val = int(round(fraction * len(base)))
    return Split(np.sort(base[n_val:]), np.sort(base[:n_val]), np.sort(test))


def _temporal(table: RatingTable) -> Split:
    # Sort by user, then time (ties broken by file order): each user's block ends with the newest.
    order = np.lexsort((np.arange(len(table)), table.timestamps, table.users))
    users = table.users[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    sizes = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, sizes)  # position inside the user's history
    size = np.repeat(sizes, sizes)
    n_test = np.floor(0.2 * size).astype(int)
    n_val = n_test
    part = np.where(rank >= size - n_test, 2, np.where(rank >= size - n_test - n_val, 1, 0))
    return Split(*(np.sort(order[part == p]) for p in range(3)))
