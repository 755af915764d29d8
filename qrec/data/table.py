"""The rating table every data source produces, and the checks every source's rows go through.

A source (MovieLens reader, ratings-file reader, generator) hands :func:`build_table` a frame with
columns ``user``, ``item``, ``rating`` and optionally ``timestamp``; it validates the values (naming
the file and line of the first bad row), resolves duplicated (user, item) pairs and encodes the ids
as contiguous codes, keeping the raw ids so outputs can be decoded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

DUPLICATES = ("error", "last", "mean")


class DataError(ValueError):
    """Bad or missing data; the message names the file, line or key and how to fix it."""


@dataclass
class RatingTable:
    """Ratings with contiguous 0-based user and item codes, in file order.

    Attributes:
        users, items: (n,) int64 codes; ``user_ids[code]`` / ``item_ids[code]`` give the raw ids.
        ratings: (n,) float32 ratings on the source's scale.
        timestamps: (n,) int64 unix seconds (zeros when the source has none: ``has_timestamps``).
        user_ids, item_ids: raw ids, one per code.
        name: dataset name (``ml-100k``, ``ml-1m``, a file name ...).
        item_info: one row per item code: ``title``, ``year``, ``genres`` (list of str), or None.
        kg: knowledge-graph triples (``head``, ``relation``, ``tail``), or None.
        link: item code -> KG entity (``item``, ``entity``), or None.
        rating_scale: the declared (min, max) scale, or None (inferred from the training split).
        has_timestamps: whether ``timestamps`` are real times (temporal splits need them).
        test_mask: (n,) bool, rows of a fixed test file (``data.test_path``), or None.
        sources: file name -> sha256 of every file the table was read from.
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    name: str = "ml-100k"
    item_info: pd.DataFrame | None = None
    kg: pd.DataFrame | None = None
    link: pd.DataFrame | None = None
    rating_scale: tuple[float, float] | None = None
    has_timestamps: bool = True
    test_mask: np.ndarray | None = None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.ratings)


def sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (data files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def line_numbers(header_lines: int) -> Callable[[int], str]:
    """Row index -> ``line N`` of a text file with ``header_lines`` lines before the first row."""
    return lambda row: f"line {row + 1 + header_lines}"


def numeric(frame: pd.DataFrame, column: str, path: Path | str, where: Callable[[int], str],
            label: str | None = None) -> np.ndarray:  # fmt: skip
    """Parse one column as numbers, naming the first bad row instead of failing deep in pandas."""
    if pd.api.types.is_numeric_dtype(frame[column]) and not frame[column].isna().any():
        return frame[column].to_numpy()
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"{path}, {where(bad[0])}: {label or column} {frame[column].iloc[bad[0]]!r} is not a number "
            f"({len(bad)} bad rows in all). Fix or remove those lines."
        )
    return values.to_numpy()


def _timestamps(frame: pd.DataFrame, path: Path | str, where: Callable[[int], str]) -> np.ndarray:
    column = frame["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(column):
        return (column.astype("datetime64[s]").astype(np.int64)).to_numpy()
    if not pd.api.types.is_numeric_dtype(column) and pd.to_numeric(column, errors="coerce").isna().any():
        parsed = pd.to_datetime(column, errors="coerce", utc=True, format="mixed")
        if not parsed.isna().any():  # ISO dates and the like: seconds since the epoch
            return (parsed.astype("datetime64[s, UTC]").astype(np.int64)).to_numpy()
    return numeric(frame, "timestamp", path, where).astype(np.int64)


def build_table(frame: pd.DataFrame, path: Path | str, where: Callable[[int], str], name: str,
                rating_scale: tuple[float, float] | None = None, duplicates: str = "error") -> RatingTable:  # fmt: skip
    """Validate raw rating rows and encode ids as contiguous codes.

    Args:
        frame: columns ``user``, ``item``, ``rating`` and optionally ``timestamp`` (one row per rating).
        path: the file the rows came from (for messages).
        where: row index -> position in the file (``line 7``, ``row 7``).
        name: dataset name.
        rating_scale: declared (min, max); a rating outside it is an error. None: not checked.
        duplicates: a (user, item) pair rated more than once is an ``error`` (default), or keeps the
            ``last`` rating, or their ``mean``.

    Raises:
        DataError: empty file, non-numeric rating or timestamp, rating outside the scale, duplicates.
    """
    if duplicates not in DUPLICATES:
        raise DataError(f"data.duplicates={duplicates!r} is unknown; choose one of {', '.join(DUPLICATES)}.")
    if len(frame) == 0:
        raise DataError(f"{path} holds no ratings (the file is empty or has only a header). Point data at a "
                        "file with one rating per line.")  # fmt: skip
    has_time = "timestamp" in frame
    frame = frame.assign(rating=numeric(frame, "rating", path, where).astype(np.float32))
    if has_time:
        frame = frame.assign(timestamp=_timestamps(frame, path, where))
    if rating_scale is not None:
        lo, hi = map(float, rating_scale)
        if not lo < hi:
            raise DataError(f"data.rating_scale=[{lo:g}, {hi:g}] must be [min, max] with min < max.")
        outside = np.flatnonzero(((frame["rating"] < lo) | (frame["rating"] > hi)).to_numpy())
        if len(outside):
            raise DataError(
                f"{path}, {where(outside[0])}: rating {frame['rating'].iloc[outside[0]]:g} is outside "
                f"{lo:g}-{hi:g} ({len(outside)} such rows). Fix those lines, or declare the scale your "
                "data uses: data.rating_scale=[min,max]."
            )
        rating_scale = (lo, hi)
    frame = _resolve_duplicates(frame, path, where, duplicates)
    user_codes, user_ids = pd.factorize(frame["user"], sort=False)
    item_codes, item_ids = pd.factorize(frame["item"], sort=False)
    n = len(frame)
    return RatingTable(
        users=user_codes.astype(np.int64), items=item_codes.astype(np.int64),
        ratings=frame["rating"].to_numpy(np.float32),
        timestamps=frame["timestamp"].to_numpy(np.int64) if has_time else np.zeros(n, np.int64),
        user_ids=np.asarray(user_ids), item_ids=np.asarray(item_ids), name=name, rating_scale=rating_scale,
        has_timestamps=has_time,
    )  # fmt: skip


def _resolve_duplicates(frame: pd.DataFrame, path, where: Callable[[int], str], duplicates: str) -> pd.DataFrame:
    duplicated = frame.duplicated(["user", "item"], keep=False).to_numpy()
    if not duplicated.any():
        return frame
    if duplicates == "last":
        return frame.drop_duplicates(["user", "item"], keep="last").reset_index(drop=True)
    if duplicates == "mean":
        agg = {"rating": "mean", **({"timestamp": "max"} if "timestamp" in frame else {})}
        return frame.groupby(["user", "item"], sort=False, as_index=False).agg(agg)
    rows = np.flatnonzero(duplicated)
    first = frame.iloc[rows[0]]
    twin = rows[(frame["user"].iloc[rows] == first["user"]).to_numpy()
                & (frame["item"].iloc[rows] == first["item"]).to_numpy()]  # fmt: skip
    n_pairs = int(frame.iloc[rows].drop_duplicates(["user", "item"]).shape[0])
    raise DataError(
        f"{path}: user {first['user']} rated item {first['item']} more than once "
        f"({_positions([where(r) for r in twin[:5]])}); {n_pairs} (user, item) pairs "
        f"are rated more than once ({len(rows)} rows). Keep one rating per pair, or set "
        "data.duplicates=last (keep the last rating) or data.duplicates=mean (average them)."
    )


def _positions(places: list[str]) -> str:
    """["line 2", "line 4"] -> "lines 2, 4"."""
    if len(places) == 1:
        return places[0]
    return f"{places[0].split()[0]}s " + ", ".join(p.split()[-1] for p in places)
