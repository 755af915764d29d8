"""The MovieLens family beyond 100k: ml-1m, ml-10m, ml-20m, ml-25m, ml-32m in GroupLens' exact formats.

Each is read from ``data.root`` (the unzipped folder or the zip itself) or from the cache, where the
GroupLens zip is downloaded once (sha256-pinned, with a progress bar) under the shared lock and
atomic publish of :mod:`qrec.data.cache`. The zip stays zipped in the cache: its members are read
directly, and its sha256 is the dataset's fingerprint.

Formats: ml-1m and ml-10m ``ratings.dat`` is ``UserID::MovieID::Rating::Timestamp`` without a header
and ``movies.dat`` is ``MovieID::Title (Year)::Genre|Genre`` (ml-1m in latin-1); ml-20m/25m/32m
``ratings.csv`` has the header ``userId,movieId,rating,timestamp`` and ``movies.csv`` is
``movieId,title,genres`` (quoted titles). ml-1m has whole stars 1-5; the others half stars 0.5-5.
"""

from __future__ import annotations

import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pandas as pd

from qrec.data.cache import cache_root, cached_folder, check_sha256, download
from qrec.data.files import read_ratings
from qrec.data.table import DataError, RatingTable, sha256

BASE_URL = "https://files.grouplens.org/datasets/movielens/"


@dataclass(frozen=True)
class Spec:
    """Where one MovieLens release lives and how its files are laid out."""

    folder: str  # the top folder inside the zip
    ratings: str
    movies: str
    sep: str
    header: bool
    encoding: str
    scale: tuple[float, float]
    sha256: str | None  # None: no published checksum we could pin; the download fails closed


# sha256 of the GroupLens zips as published in TensorFlow Datasets' url_checksums/movielens.txt
# (ml-1m.zip: 5,917,549 bytes). ml-10m and ml-32m are not listed there: no value is invented.
SPECS = {
    "ml-1m": Spec("ml-1m", "ratings.dat", "movies.dat", "::", False, "latin-1", (1.0, 5.0),
                  "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"),
    "ml-10m": Spec("ml-10M100K", "ratings.dat", "movies.dat", "::", False, "utf-8", (0.5, 5.0), None),
    "ml-20m": Spec("ml-20m", "ratings.csv", "movies.csv", ",", True, "utf-8", (0.5, 5.0),
                   "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3"),
    "ml-25m": Spec("ml-25m", "ratings.csv", "movies.csv", ",", True, "utf-8", (0.5, 5.0),
                   "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa"),
    "ml-32m": Spec("ml-32m", "ratings.csv", "movies.csv", ",", True, "utf-8", (0.5, 5.0), None),
}  # fmt: skip
COLUMNS = {False: {"user": 0, "item": 1, "rating": 2, "timestamp": 3},
           True: {"user": "userId", "item": "movieId", "rating": "rating", "timestamp": "timestamp"}}  # fmt: skip


def load_movielens(name: str = "ml-1m", root: str | None = None, url: str | None = None,
                   sha256: str | None = None) -> RatingTable:  # fmt: skip
    """Load a MovieLens release by name, from ``root`` or the cache (downloaded once).

    Args:
        name: ``ml-100k``, ``ml-1m``, ``ml-10m``, ``ml-20m``, ``ml-25m`` or ``ml-32m``.
        root: the unzipped GroupLens folder, or the zip itself; None uses the cache.
        url: where to download the zip (default: GroupLens); tests use a ``file://`` URL.
        sha256: the zip's expected sha256, overriding the pinned one (needed for ml-10m and ml-32m,
            whose checksums are not pinned here).
    """
    if name == "ml-100k":
        from qrec.data.movielens import load_movielens100k

        return load_movielens100k(root)
    if name not in SPECS:
        raise DataError(f"data.name={name!r} is unknown; choose ml-100k or one of {', '.join(SPECS)}.")
    spec = SPECS[name]
    expected = sha256 or spec.sha256
    if root is not None:
        return _read_root(name, spec, Path(root).expanduser(), expected)
    if expected is None:
        raise DataError(
            f"No sha256 is pinned for {name}.zip, so qrec will not download it unverified. Download it from "
            f"{BASE_URL}{name}.zip yourself and run with data.root=/path/to/{name}.zip (or the unzipped "
            "folder), or pass the checksum you verified: data.sha256=<hex>."
        )
    zip_name = f"{name}.zip"

    def fetch(staging: Path) -> None:
        print(f"qrec: downloading {name} ({zip_name}) once into {cache_root() / name} ...", file=sys.stderr)
        download(url or BASE_URL + zip_name, staging / zip_name, expected, f"{name} ({zip_name})")

    folder = cached_folder(name, fetch, lambda f: check_sha256(f / zip_name, expected))
    return _read_zip(name, spec, folder / zip_name, expected)


def _read_root(name: str, spec: Spec, root: Path, expected: str | None) -> RatingTable:
    if root.is_file() and zipfile.is_zipfile(root):
        actual = sha256(root)
        if expected is not None and actual != expected:
            raise DataError(
                f"{root} has sha256 {actual}, but GroupLens' {name}.zip has {expected}: it is not that zip, or it "
                "is damaged. Download it again, or if you trust this file, set data.sha256=<its sha256>."
            )
        return _read_zip(name, spec, root, actual)
    for folder in (root, root / spec.folder):
        if (folder / spec.ratings).is_file():
            table = read_ratings(folder / spec.ratings, COLUMNS[spec.header], spec.sep, spec.header, spec.encoding,
                                 spec.scale, name=name)  # fmt: skip
            movies = folder / spec.movies
            if movies.is_file():
                with open(movies, "rb") as f:
                    table.item_info = _movies(f, spec, table, movies)
                table.sources[movies.name] = sha256(movies)
            return table
    raise DataError(
        f"data.root={str(root)!r} holds no {spec.ratings}: point it at the unzipped {name} folder "
        f"(with {spec.ratings} and {spec.movies}) or at {name}.zip itself."
    )


def _read_zip(name: str, spec: Spec, path: Path, digest: str) -> RatingTable:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise DataError(f"{path} is not a readable zip ({err}). Download it again.") from err
    with archive:
        members = {Path(m).name: m for m in archive.namelist() if m.count("/") <= 1}
        if spec.ratings not in members:
            raise DataError(f"{path} holds no {spec.folder}/{spec.ratings}: is it GroupLens' {name}.zip?")
        with archive.open(members[spec.ratings]) as member:
            table = read_ratings(f"{path}:{members[spec.ratings]}", COLUMNS[spec.header], spec.sep, spec.header,
                                 spec.encoding, spec.scale, name=name, member=member)  # fmt: skip
        if spec.movies in members:
            with archive.open(members[spec.movies]) as member:
                table.item_info = _movies(member, spec, table, f"{path}:{members[spec.movies]}")
    table.sources = {path.name: digest}
    return table


def _movies(src: IO[bytes], spec: Spec, table: RatingTable, label) -> pd.DataFrame:
    """Titles, years and genre lists per item code (items without a movies row get empty values)."""
    try:
        if spec.header:  # movies.csv: quoted titles may contain commas
            movies = pd.read_csv(src, dtype=str, keep_default_na=False, encoding=spec.encoding)
            movies.columns = ["item", "title", "genres"]
        else:
            text = src.read().decode(spec.encoding, errors="replace")
            rows = [line.split("::") for line in text.splitlines() if line.strip()]
            movies = pd.DataFrame([r[:3] for r in rows], columns=["item", "title", "genres"])
    except (ValueError, pd.errors.ParserError) as err:
        raise DataError(f"{label} cannot be parsed as a MovieLens movies file ({err}).") from err
    codes = pd.Series(range(table.n_items), index=pd.Index(table.item_ids).astype(str))
    movies = movies[movies["item"].isin(codes.index)]
    index = codes[movies["item"]].to_numpy()
    info = pd.DataFrame(index=pd.RangeIndex(table.n_items, name="item"))
    info["title"] = pd.Series(movies["title"].to_numpy(), index=index)
    info["year"] = pd.Series(movies["title"].map(_year).to_numpy(), index=index)
    genres = movies["genres"].map(lambda g: [] if g in ("", "(no genres listed)") else g.split("|"))
    info["genres"] = pd.Series(genres.to_numpy(), index=index).reindex(info.index)
    info["genres"] = info["genres"].apply(lambda g: g if isinstance(g, list) else [])
    return info


def _year(title: str) -> str:
    match = re.search(r"\((\d{4})\)\s*$", title)
    return match.group(1) if match else ""


def cache_path(name: str) -> Path:
    """Where ``name``'s zip is cached."""
    return cache_root() / name / f"{name}.zip"
