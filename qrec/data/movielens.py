"""MovieLens-100k: find, fetch, cache, validate and load.

Sources, in order: a user-given directory (GroupLens ``u.data``/``u.item``/``u.user`` or RecBole's
atomic ``ml-100k.*`` files); the local cache (``$QREC_DATA_DIR`` or ``~/.cache/qrec``); otherwise the
``recbole==1.2.1`` wheel from the package index (it ships the atomic files), fetched with pip
without dependencies, verified by sha256 and moved into the cache only once complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

WHEEL = "recbole==1.2.1"
WHEEL_DIR = "recbole/dataset_example/ml-100k/"
# sha256 of the files inside recbole-1.2.1's wheel (ml-100k.inter's is the one the issue pins).
CHECKSUMS = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
    "ml-100k.kg": "200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779",
    "ml-100k.link": "524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948",
}
GROUPLENS_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
]  # fmt: skip


class DataError(ValueError):
    """Bad or missing data; the message names the file, line or key and how to fix it."""


@dataclass
class RatingTable:
    """Explicit ratings with contiguous 0-based user and item codes, in file order.

    Attributes:
        users, items: (n,) int64 codes; ``user_ids[code]`` / ``item_ids[code]`` give the raw ids.
        ratings: (n,) float32 stars in [1, 5].
        timestamps: (n,) int64 unix seconds.
        item_info: one row per item code: ``title``, ``year``, ``genres`` (list of str), or None.
        kg: knowledge-graph triples (``head``, ``relation``, ``tail``), or None.
        link: item code -> KG entity (``item``, ``entity``), or None.
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

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.ratings)


def cache_dir() -> Path:
    """Where fetched files live: ``$QREC_DATA_DIR`` or ``~/.cache/qrec``, plus ``ml-100k``."""
    base = os.environ.get("QREC_DATA_DIR") or Path.home() / ".cache" / "qrec"
    return Path(base) / "ml-100k"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_movielens100k(root: str | None = None) -> RatingTable:
    """Load MovieLens-100k from ``root``, the cache, or the recbole wheel (fetched once).

    Args:
        root: a directory with GroupLens (``u.data``...) or atomic (``ml-100k.inter``...) files.

    Raises:
        DataError: missing, corrupt or invalid files, with the path and the fix.
    """
    if root is not None:
        folder = Path(root).expanduser()
        if (folder / "u.data").is_file():
            return _read_grouplens(folder)
        if (folder / "ml-100k.inter").is_file():
            return _read_atomic(folder)
        raise DataError(
            f"data.root={root!r} holds neither GroupLens files (u.data, u.item, u.user) nor atomic "
            "files (ml-100k.inter, ...). Point data.root at the unzipped ml-100k folder, or drop "
            "data.root to use the automatic download."
        )
    folder = cache_dir()
    if not all((folder / name).is_file() for name in CHECKSUMS):
        fetch_to_cache(folder)
    for name, expected in CHECKSUMS.items():
        if sha256(folder / name) != expected:
            raise DataError(
                f"{folder / name} has the wrong sha256 (expected {expected}). The cache is corrupt: "
                f"delete {folder} and run again to re-fetch it."
            )
    return _read_atomic(folder)


def fetch_to_cache(folder: Path) -> None:
    """Download the recbole wheel (no dependencies), verify and move its ml-100k files to ``folder``.

    Everything happens in a temporary directory next to ``folder``; the final rename is atomic, so a
    failed fetch leaves nothing half-written in the cache.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fetch-") as tmp:
        tmp = Path(tmp)
        print(f"qrec: fetching MovieLens-100k ({WHEEL} wheel, ~2 MB) into {folder} ...", file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(tmp), WHEEL]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(tmp.glob("recbole-*.whl"))
        if result.returncode != 0 or not wheels:
            raise DataError(
                f"Could not download {WHEEL} from the package index (`{' '.join(cmd[2:])}` said: "
                f"{result.stderr.strip()[-500:] or 'nothing'}). Without network access, download the "
                "GroupLens ml-100k zip elsewhere and run with data.root=/path/to/ml-100k."
            )
        staged = tmp / "ml-100k"
        staged.mkdir()
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name, expected in CHECKSUMS.items():
                data = wheel.read(WHEEL_DIR + name)
                if hashlib.sha256(data).hexdigest() != expected:
                    raise DataError(f"{name} inside {wheels[0].name} has an unexpected sha256; not cached.")
                (staged / name).write_bytes(data)
        if folder.exists():
            shutil.rmtree(folder)
        staged.rename(folder)


def _numeric(frame: pd.DataFrame, column: str, path: Path, header_lines: int) -> np.ndarray:
    """Parse one column as numbers, naming the first bad line instead of failing deep in pandas."""
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy())
    if len(bad):
        line = bad[0] + 1 + header_lines
        raise DataError(
            f"{path}, line {line}: {column} {frame[column].iloc[bad[0]]!r} is not a number "
            f"({len(bad)} bad rows in all). Fix or remove those lines."
        )
    return values.to_numpy()


def _read_table(path: Path, names: list[str], sep: str, header: bool, encoding: str = "utf-8") -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"Missing data file {path}. Restore it (or delete the folder to re-fetch).")
    try:
        return pd.read_csv(
            path, sep=sep, header=None, skiprows=1 if header else 0, names=names, dtype=str,
            encoding=encoding, keep_default_na=False, quoting=3, engine="python" if len(sep) > 1 else "c",
        )  # fmt: skip
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path} cannot be parsed ({err}). Is it the right file?") from err


def _ratings_table(frame: pd.DataFrame, path: Path, header_lines: int, name: str) -> RatingTable:
    """Validate raw rating rows and encode ids as contiguous codes."""
    if len(frame) == 0:
        raise DataError(f"{path} holds no ratings.")
    ratings = _numeric(frame, "rating", path, header_lines).astype(np.float32)
    timestamps = _numeric(frame, "timestamp", path, header_lines).astype(np.int64)
    outside = np.flatnonzero((ratings < 1) | (ratings > 5))
    if len(outside):
        line = outside[0] + 1 + header_lines
        raise DataError(
            f"{path}, line {line}: rating {ratings[outside[0]]:g} is outside 1-5 "
            f"({len(outside)} such rows). Fix or remove those lines."
        )
    duplicated = frame.duplicated(["user", "item"], keep=False).to_numpy()
    if duplicated.any():
        rows = np.flatnonzero(duplicated)
        first = frame.iloc[rows[0]]
        twin = rows[(frame["user"].iloc[rows] == first["user"]).to_numpy()
                    & (frame["item"].iloc[rows] == first["item"]).to_numpy()]  # fmt: skip
        raise DataError(
            f"{path}: user {first['user']} rated item {first['item']} more than once (lines "
            f"{', '.join(str(r + 1 + header_lines) for r in twin[:5])}). Keep one rating per pair."
        )
    user_codes, user_ids = pd.factorize(frame["user"], sort=False)
    item_codes, item_ids = pd.factorize(frame["item"], sort=False)
    return RatingTable(
        users=user_codes.astype(np.int64), items=item_codes.astype(np.int64), ratings=ratings,
        timestamps=timestamps, user_ids=np.asarray(user_ids), item_ids=np.asarray(item_ids), name=name,
    )  # fmt: skip


def _read_atomic(folder: Path) -> RatingTable:
    path = folder / "ml-100k.inter"
    frame = _read_table(path, ["user", "item", "rating", "timestamp"], "\t", header=True)
    table = _ratings_table(frame, path, header_lines=1, name="ml-100k")
    codes = {raw: code for code, raw in enumerate(table.item_ids)}
    if (folder / "ml-100k.item").is_file():
        items = _read_table(folder / "ml-100k.item", ["item", "title", "year", "genres"], "\t", header=True)
        items = items[items["item"].isin(codes)]
        info = pd.DataFrame(index=pd.RangeIndex(table.n_items, name="item"))
        info["title"] = pd.Series(items["title"].to_numpy(), index=items["item"].map(codes).to_numpy())
        info["year"] = pd.Series(items["year"].to_numpy(), index=items["item"].map(codes).to_numpy())
        genres = pd.Series(items["genres"].str.split().to_numpy(), index=items["item"].map(codes).to_numpy())
        info["genres"] = genres.reindex(info.index).apply(lambda g: g if isinstance(g, list) else [])
        table.item_info = info
    if (folder / "ml-100k.kg").is_file() and (folder / "ml-100k.link").is_file():
        table.kg = _read_table(folder / "ml-100k.kg", ["head", "relation", "tail"], "\t", header=True)
        link = _read_table(folder / "ml-100k.link", ["item", "entity"], "\t", header=True)
        link = link[link["item"].isin(codes)]
        table.link = pd.DataFrame({"item": link["item"].map(codes).astype(np.int64), "entity": link["entity"]})
    return table


def _read_grouplens(folder: Path) -> RatingTable:
    path = folder / "u.data"
    frame = _read_table(path, ["user", "item", "rating", "timestamp"], "\t", header=False)
    table = _ratings_table(frame, path, header_lines=0, name="ml-100k")
    if (folder / "u.item").is_file():
        cols = ["item", "title", "date", "video", "url", *GROUPLENS_GENRES]
        items = _read_table(folder / "u.item", cols, "|", header=False, encoding="latin-1")
        codes = {raw: code for code, raw in enumerate(table.item_ids)}
        items = items[items["item"].isin(codes)].set_index(items["item"].map(codes)).sort_index()
        flags = items[GROUPLENS_GENRES].to_numpy() == "1"
        info = pd.DataFrame(index=pd.RangeIndex(table.n_items, name="item"))
        info["title"] = items["title"]
        info["year"] = items["date"].str[-4:]
        info["genres"] = pd.Series([[g for g, f in zip(GROUPLENS_GENRES, row) if f] for row in flags],
                                   index=items.index).reindex(info.index)  # fmt: skip
        info["genres"] = info["genres"].apply(lambda g: g if isinstance(g, list) else [])
        table.item_info = info
    return table
