"""Read a ratings file of any common layout into a :class:`RatingTable`.

CSV, TSV, any single-character or ``::`` separator (detected from the first lines when not given),
Parquet; a header line or none (detected); columns mapped by name or position; string or integer ids.
Every problem is reported with the file, the line or column, and the key that fixes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from qrec.data.table import DataError, RatingTable, build_table, line_numbers, sha256

SEPARATORS = ("::", "\t", ",", ";", "|", " ")
ROLES = ("user", "item", "rating", "timestamp")
DEFAULT_COLUMNS = {role: role for role in ROLES}
PARQUET = (".parquet", ".pq")
_SEP_NAMES = {"\t": "tab '\\t'", " ": "space ' '"}


def show(sep: str) -> str:
    """A separator as a user can type it back (``tab '\\t'``, ``','``)."""
    return _SEP_NAMES.get(sep, repr(sep))


def _sample(src: Path | IO[bytes], encoding: str) -> list[str]:
    if isinstance(src, Path):
        with open(src, "rb") as f:
            raw = f.read(1 << 16)
    else:
        raw = src.read(1 << 16)
        src.seek(0)
    lines = raw.decode(encoding, errors="replace").splitlines()
    if len(raw) == 1 << 16 and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut mid-way
    return [line for line in lines if line.strip()][:50]


def separators_in(lines: list[str], min_fields: int = 2) -> list[str]:
    """Separators that split every sample line into the same number (≥ ``min_fields``) of fields."""
    found = []
    for sep in SEPARATORS:
        counts = {len(line.split(sep)) for line in lines}
        if len(counts) == 1 and counts.pop() >= min_fields and not (sep == " " and found):
            found.append(sep)
    if "::" in found:  # "a::b" also splits on nothing else listed, but keep "::" first and alone
        return ["::"]
    return found


def choose_separator(path: Path | str, lines: list[str], sep: str | None, min_fields: int) -> str:
    """``sep`` checked against the file, or the one separator the first lines agree on."""
    if not lines:
        raise DataError(f"{path} holds no ratings (the file is empty). Point data at a file with one rating per line.")
    found = separators_in(lines, min_fields)
    if sep is not None:
        if len(lines[0].split(sep)) >= min_fields:
            return sep
        guess = f"; it looks separated by {show(found[0])}: set data.sep={found[0]!r}" if found else ""
        raise DataError(
            f"{path}, line 1: expected fields separated by {show(sep)} (data.sep) but found none{guess}. "
            f"Line 1 reads {lines[0][:80]!r}."
        )
    if len(found) == 1:
        return found[0]
    suffix = {".csv": ",", ".tsv": "\t", ".tab": "\t"}.get(Path(str(path)).suffix.lower())
    if suffix in found:
        return suffix
    if not found:
        raise DataError(
            f"{path}: no separator splits the first lines into {min_fields}+ fields the same way (tried "
            f"{', '.join(show(s) for s in SEPARATORS)}). Set data.sep to the character between the columns."
        )
    raise DataError(
        f"{path}: the separator is ambiguous: {', '.join(show(s) for s in found)} all split the first lines "
        f"evenly. Set data.sep to the one between the columns (e.g. data.sep={found[0]!r})."
    )


def read_delimited(path: Path, names: list[str], sep: str, header: bool, encoding: str = "utf-8") -> pd.DataFrame:
    """A small fixed-format file (MovieLens side files) as strings, its separator checked first."""
    lines = _sample(path, encoding)
    if not lines:
        return pd.DataFrame(columns=names)
    first = lines[1] if header and len(lines) > 1 else lines[0]
    if len(first.split(sep)) < len(names) and not (header and len(lines) == 1):
        choose_separator(path, lines[1:] if header else lines, sep, len(names))  # raises, naming the guess
    try:
        return pd.read_csv(
            path, sep=sep, header=None, skiprows=1 if header else 0, names=names, dtype=str, index_col=False,
            encoding=encoding, keep_default_na=False, quoting=3, engine="python" if len(sep) > 1 else "c",
        )  # fmt: skip
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path} cannot be parsed ({err}). Is it the right file?") from err


def _read_text(src: Path | IO[bytes], sep: str, header: bool, encoding: str, label: str) -> pd.DataFrame:
    kwargs = dict(header=0 if header else None, keep_default_na=False, na_values=[], encoding=encoding,
                  index_col=False)  # fmt: skip
    try:
        if sep == "::":  # pandas' python engine is ~20x slower; "::" is ":" with empty fields between
            frame = pd.read_csv(src, sep=":", **kwargs)
            if frame.shape[1] % 2 == 1 and (frame.iloc[:, 1::2].astype(str) == "").all().all():
                frame = frame.iloc[:, 0::2]
                frame.columns = [str(c) for c in frame.columns] if header else range(frame.shape[1])
                return frame
            if not isinstance(src, Path):
                src.seek(0)
            return pd.read_csv(src, sep="::", engine="python", **kwargs)
        return pd.read_csv(src, sep=sep, engine="c", **kwargs)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{label} cannot be parsed with separator {show(sep)} ({err}). Check data.sep.") from err


def _has_header(first: list[str], wanted: list[str]) -> bool:
    fields = [f.strip().strip('"') for f in first]
    if any(f in wanted for f in fields):
        return True
    return all(pd.isna(pd.to_numeric(f, errors="coerce")) for f in fields)  # a line of names, no numbers


def _map_columns(frame: pd.DataFrame, columns: Mapping[str, str | int | None], label: str, header: bool,
                 optional: set[str]) -> pd.DataFrame:  # fmt: skip
    """Pick and rename the mapped columns; names not in the file are errors naming the file's columns."""
    out = {}
    available = [str(c) for c in frame.columns]
    for role in ROLES:
        key = columns.get(role)
        if key is None:
            continue
        if isinstance(key, int) or (isinstance(key, str) and key.isdigit() and not header):
            pos = int(key)
            if not 0 <= pos < frame.shape[1]:
                raise DataError(f"data.columns.{role}={pos}: {label} has only {frame.shape[1]} columns (0-based).")
            out[role] = frame.iloc[:, pos]
        elif header:
            if key not in available:
                if role in optional:
                    continue
                raise DataError(
                    f"data.columns.{role}={key!r} is not a column of {label}; its columns are: "
                    f"{', '.join(available)}. Set data.columns.{role} to one of them."
                )
            out[role] = frame.iloc[:, available.index(key)]
        else:
            default = ROLES.index(role)
            if key != role:
                raise DataError(
                    f"{label} has no header line, so its columns are known by position: set "
                    f"data.columns.{role}=<0-based position> (not {key!r}), or add a header line."
                )
            if default < frame.shape[1]:
                out[role] = frame.iloc[:, default]
            elif role not in optional:
                raise DataError(f"{label} has {frame.shape[1]} columns; no {role} column at position {default}.")
    for role in ("user", "item"):
        if role not in out:
            raise DataError(f"data.columns.{role} must name the {role} column of {label} (it is null).")
    return pd.DataFrame(out)


def read_ratings(
    path: str | Path,
    columns: Mapping[str, str | int | None] | None = None,
    sep: str | None = None,
    header: bool | None = None,
    encoding: str = "utf-8",
    rating_scale: tuple[float, float] | None = None,
    duplicates: str = "error",
    name: str | None = None,
    member: IO[bytes] | None = None,
) -> RatingTable:
    """Read a ratings file (text or Parquet) into a validated :class:`RatingTable`.

    Args:
        path: the file (``.parquet``/``.pq`` is read as Parquet, anything else as delimited text).
        columns: role (``user``, ``item``, ``rating``, ``timestamp``) -> column name, or 0-based
            position for files without a header; ``rating: None`` makes every row an interaction
            (rating 1); ``timestamp: None`` means no times. A default-named timestamp column that the
            file lacks is simply absent.
        sep: separator; None detects it from the first lines.
        header: whether line 1 names the columns; None detects it.
        encoding: text encoding.
        rating_scale: declared (min, max); None leaves it to the data module (inferred from training).
        duplicates: ``error`` | ``last`` | ``mean`` (see :func:`qrec.data.table.build_table`).
        name: dataset name (default: the file name).
        member: an open binary stream to read instead of ``path`` (a file inside a zip); ``path``
            then only labels messages.
    """
    columns = {**DEFAULT_COLUMNS, **dict(columns or {})}
    path = Path(path).expanduser()
    label = str(path)
    if member is None and not path.is_file():
        raise DataError(f"Ratings file {path} does not exist. Set data.path to your ratings file.")
    optional = {"timestamp"} if columns["timestamp"] == "timestamp" else set()
    if path.suffix.lower() in PARQUET and member is None:
        frame, where = _read_parquet(path, columns), (lambda row: f"row {row + 1}")
        header = True
    else:
        src = member if member is not None else path
        lines = _sample(src, encoding)
        wanted = [v for v in columns.values() if isinstance(v, str)]
        required = 2 + (columns["rating"] is not None)
        if header is None and lines:
            candidates = separators_in(lines[:1], 2) if sep is None else [sep]
            header = any(_has_header(lines[0].split(s), wanted) for s in candidates)
        sep = choose_separator(label, lines[1:] if header and len(lines) > 1 else lines, sep, required)
        frame = _read_text(src, sep, bool(header), encoding, label)
        where = line_numbers(1 if header else 0)
    frame = _map_columns(frame, columns, label, bool(header), optional)
    if "rating" not in frame:
        frame["rating"] = np.float32(1.0)
    table = build_table(frame, label, where, name or path.stem, rating_scale, duplicates)
    table.sources = {path.name: sha256(path) if member is None else "in-archive"}
    return table


def _read_parquet(path: Path, columns: Mapping[str, str | int | None]) -> pd.DataFrame:
    from qrec.optional import require

    pq = require("pyarrow.parquet")
    try:
        return pq.read_table(path).to_pandas()
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError subclasses for a bad file
        raise DataError(
            f"{path} cannot be read as Parquet ({type(err).__name__}: {err}). Is it a Parquet file? A CSV or "
            "TSV file needs a .csv/.tsv/.txt name."
        ) from err
