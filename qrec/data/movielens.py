"""MovieLens-100k: find, fetch, cache, validate and load.

Sources, in order: a user-given directory (GroupLens ``u.data``/``u.item``/``u.user`` or RecBole's
atomic ``ml-100k.*`` files); the local cache (``$QREC_DATA_DIR`` or ``~/.cache/qrec``); otherwise the
``recbole==1.2.1`` wheel from the package index (it ships the atomic files), fetched with pip
without dependencies, verified by sha256 and moved into the cache only once complete.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from qrec.data.cache import cache_root, cached_folder, check_sha256
from qrec.data.files import read_delimited
from qrec.data.table import DataError, RatingTable, build_table, line_numbers, sha256

__all__ = ["DataError", "RatingTable", "cache_dir", "load_movielens100k", "sha256"]

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


def cache_dir() -> Path:
    """Where the fetched files live: ``$QREC_DATA_DIR`` or ``~/.cache/qrec``, plus ``ml-100k``."""
    return cache_root() / "ml-100k"


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
    folder = cached_folder("ml-100k", fetch_to_cache, _verify)
    table = _read_atomic(folder)
    table.sources = {name: CHECKSUMS[name] for name in ("ml-100k.inter", "ml-100k.item")}
    return table


def _verify(folder: Path) -> str | None:
    for name, expected in CHECKSUMS.items():
        problem = check_sha256(folder / name, expected)
        if problem is not None:
            return problem
    return None


def fetch_to_cache(staging: Path) -> None:
    """Download the recbole wheel (no dependencies) and extract its verified ml-100k files to ``staging``.

    :func:`qrec.data.cache.cached_folder` calls it under the cache lock and publishes ``staging``
    with one rename once every file is in place.
    """
    print(f"qrec: fetching MovieLens-100k ({WHEEL} wheel, ~2 MB) into {cache_dir()} ...", file=sys.stderr)
    download = staging / "wheel"
    download.mkdir()
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(download), WHEEL]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(download.glob("recbole-*.whl"))
    if result.returncode != 0 or not wheels:
        raise DataError(
            f"Could not download {WHEEL} from the package index (`{' '.join(cmd[2:])}` said: "
            f"{result.stderr.strip()[-500:] or 'nothing'}). Without network access, download the "
            "GroupLens ml-100k zip elsewhere and run with data.root=/path/to/ml-100k."
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name, expected in CHECKSUMS.items():
            data = wheel.read(WHEEL_DIR + name)
            if hashlib.sha256(data).hexdigest() != expected:
                raise DataError(f"{name} inside {wheels[0].name} has an unexpected sha256; not cached.")
            (staging / name).write_bytes(data)
    wheels[0].unlink()
    download.rmdir()


def _read_table(path: Path, names: list[str], sep: str, header: bool, encoding: str = "utf-8") -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"Missing data file {path}. Restore it (or delete the folder to re-fetch).")
    return read_delimited(path, names, sep, header, encoding)


def _ratings_table(frame: pd.DataFrame, path: Path, header_lines: int, name: str) -> RatingTable:
    table = build_table(frame, path, line_numbers(header_lines), name, rating_scale=(1.0, 5.0))
    table.sources = {path.name: sha256(path)}
    return table


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
