"""Deterministic train/validation/test splits of a rating table (index arrays into its rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qrec.data.table import DataError, RatingTable

SPLITS = ("random", "kfold", "u1", "u2", "u3", "u4", "u5", "temporal", "leave_last", "fixed")
PARTS = ("train", "validation", "test")


@dataclass
class Split:
    """Row indices of each part; disjoint and covering every rating once."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def make_split(table: RatingTable, split: str, seed: int, fold: int = 1, val_fraction: float = 0.1,
               leave_out: int = 1) -> Split:  # fmt: skip
    """Split ``table`` by name.

    Args:
        split: ``random`` (60/20/20, the seed report's protocol), ``kfold`` (5 folds: fold ``fold`` is
            the 20% test part, ``val_fraction`` of the rest validates), ``u1``..``u5`` (canonical
            GroupLens folds rebuilt from file order, ``val_fraction`` of the base validates) or
            ``temporal`` (each user's latest 20% of ratings to test, the 20% before to validation),
            ``leave_last`` (each user's latest ``leave_out`` ratings to test, the ``leave_out`` before
            to validation; users keep at least one training rating) or ``fixed`` (the table's
            ``test_mask`` rows, from ``data.test_path``, are the test part; ``val_fraction`` of the
            rest validates). A table with a ``test_mask`` is always split ``fixed``.
        seed: fixes every random choice.
        fold: 1..5, used by ``kfold``.
        val_fraction: validation share of the training part for ``kfold``, ``u*`` and ``fixed``.
        leave_out: ratings per user held out by ``leave_last``.
    """
    rng = np.random.default_rng(seed)
    n = len(table)
    if table.test_mask is not None or split == "fixed":
        if table.test_mask is None:
            raise DataError("data.split=fixed needs a test file: set data.test_path=/path/to/test.csv.")
        if split not in ("random", "fixed"):
            raise DataError(f"data.test_path fixes the test part; data.split={split} does not apply. Drop it.")
        return _hold_out_val(np.flatnonzero(~table.test_mask), np.flatnonzero(table.test_mask), val_fraction, rng)
    if split in ("temporal", "leave_last") and not table.has_timestamps:
        raise DataError(
            f"data.split={split} orders each user's ratings by time, but {table.name} has no timestamp column. "
            "Map one with data.columns.timestamp=<column>, or use data.split=random or kfold."
        )
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
            raise DataError(
                f"data.split={split} is a canonical GroupLens fold of the full MovieLens-100k (100,000 ratings in "
                f"u.data's order); {table.name} has {n:,} ratings. Use data.split=random, kfold, temporal or "
                "leave_last for other data."
            )
        i = int(split[1])
        test = np.arange((i - 1) * 20_000, i * 20_000)
        return _hold_out_val(np.setdiff1d(np.arange(n), test), test, val_fraction, rng)
    if split == "temporal":
        return _temporal(table)
    if split == "leave_last":
        if leave_out < 1:
            raise DataError(f"data.leave_out={leave_out} must be ≥ 1 (ratings per user held out).")
        return _per_user(table, lambda size: np.minimum(leave_out, (size - 1) // 2))
    raise DataError(f"data.split={split!r} is unknown; choose one of {', '.join(SPLITS)}.")


def _hold_out_val(base: np.ndarray, test: np.ndarray, fraction: float, rng: np.random.Generator) -> Split:
    if not 0 < fraction < 1:
        raise DataError(f"data.val_fraction={fraction} must be strictly between 0 and 1.")
    base = rng.permutation(base)
    n_val = int(round(fraction * len(base)))
    return Split(np.sort(base[n_val:]), np.sort(base[:n_val]), np.sort(test))


def _temporal(table: RatingTable) -> Split:
    return _per_user(table, lambda size: np.floor(0.2 * size).astype(int))


def _per_user(table: RatingTable, held_out) -> Split:
    """Each user's newest ``held_out(size)`` ratings to test and the ``held_out(size)`` before to validation."""
    # Sort by user, then time (ties broken by file order): each user's block ends with the newest.
    order = np.lexsort((np.arange(len(table)), table.timestamps, table.users))
    users = table.users[order]
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    sizes = np.diff(np.r_[starts, len(users)])
    rank = np.arange(len(users)) - np.repeat(starts, sizes)  # position inside the user's history
    size = np.repeat(sizes, sizes)
    n_test = held_out(size)
    n_val = n_test
    part = np.where(rank >= size - n_test, 2, np.where(rank >= size - n_test - n_val, 1, 0))
    return Split(*(np.sort(order[part == p]) for p in range(3)))


def check_not_empty(split: Split, name: str, source: str, n: int) -> None:
    """Raise a DataError naming the empty part (before Lightning, whose early stopping would fail on it)."""
    sizes = [len(split.train), len(split.val), len(split.test)]
    if min(sizes) > 0:
        return
    empty = [part for part, size in zip(PARTS, sizes) if size == 0]
    need = {
        "random": "random (60/20/20) needs at least 3 ratings",
        "kfold": "kfold needs at least 5 ratings plus a validation share of the rest (data.val_fraction)",
        "temporal": "temporal needs users with at least 5 ratings (20% of each user's ratings go to test)",
        "leave_last": "leave_last needs users with at least 3 ratings (one each for train, validation, test)",
    }.get(name, "each part needs at least one rating")
    raise DataError(
        f"data.split={name} on {source} ({n} ratings) leaves {' and '.join(empty)} empty (train {sizes[0]}, "
        f"validation {sizes[1]}, test {sizes[2]}). Every part needs at least one rating: {need}. Use more "
        "ratings or another split."
    )
