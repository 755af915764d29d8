"""Item features from a user's file: a long table of (item, feature[, value]) rows or a wide 0/1 table.

Long: one row per (item, feature) pair, with an optional numeric value (a row counts when the value
is > 0; features are binary like genres and KG pairs). Wide: the first column is the item, every other
column a 0/1 (or count) feature named by its header. ``format: auto`` takes a file whose non-item
columns are all numeric, with more than one of them, as wide; anything else as long. Items are matched
to the rated items by their raw id as text; rated items without a row get no features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from qrec.data.features import ItemFeatures, _build
from qrec.data.files import PARQUET, _sample, choose_separator
from qrec.data.table import DataError, RatingTable

FORMATS = ("auto", "long", "wide")


def _read(path: Path, sep: str | None) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"Features file {path} does not exist. Set data.features.path to your item features file.")
    if path.suffix.lower() in PARQUET:
        from qrec.optional import require

        try:
            return require("pyarrow.parquet").read_table(path).to_pandas().astype(str)
        except ImportError:
            raise
        except Exception as err:
            raise DataError(f"{path} cannot be read as Parquet ({type(err).__name__}: {err}).") from err
    lines = _sample(path, "utf-8")
    sep = choose_separator(path, lines[1:] if len(lines) > 1 else lines, sep, 2)
    return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, engine="python" if len(sep) > 1 else "c")


def features_from_file(table: RatingTable, path: str, format: str = "auto", sep: str | None = None,
                       item_column: str | None = None) -> ItemFeatures:  # fmt: skip
    """Build a binary item-feature matrix (rows = the table's item codes) from ``path``.

    Args:
        table: the rating table whose items the rows are matched to.
        path: CSV/TSV (header line required) or Parquet file.
        format: ``auto`` | ``long`` | ``wide``.
        sep: separator (None: detected).
        item_column: the item column's name (default: the first column).

    Raises:
        DataError: missing file, unknown format or column, non-numeric values, or no item of the file
            matches a rated item (with examples of both kinds of id).
    """
    if format not in FORMATS:
        raise DataError(f"data.features.format={format!r} is unknown; choose one of {', '.join(FORMATS)}.")
    path = Path(path).expanduser()
    frame = _read(path, sep)
    if len(frame) == 0:
        raise DataError(f"Features file {path} holds no rows.")
    columns = list(frame.columns)
    item = item_column or columns[0]
    if item not in columns:
        raise DataError(f"data.features.item_column={item!r} is not a column of {path}; its columns are: "
                        f"{', '.join(columns)}.")  # fmt: skip
    rest = [c for c in columns if c != item]
    if not rest:
        raise DataError(f"Features file {path} has only the item column {item!r}; add feature columns.")
    numeric = [c for c in rest if pd.to_numeric(frame[c], errors="coerce").notna().all()]
    if format == "auto":
        format = "wide" if len(rest) > 1 and len(numeric) == len(rest) else "long"
    codes = pd.Series(np.arange(table.n_items), index=pd.Index(table.item_ids).astype(str))
    ids = frame[item].astype(str).str.strip()
    known = ids.isin(codes.index).to_numpy()
    if not known.any():
        raise DataError(
            f"No item of {path} (column {item!r}, e.g. {', '.join(ids.head(3))}) matches a rated item (e.g. "
            f"{', '.join(codes.index[:3])}). The features file must use the same item ids as the ratings file."
        )
    if format == "wide":
        bad = [c for c in rest if c not in numeric]
        if bad:
            raise DataError(f"{path}: wide feature columns must be numbers 0/1; column {bad[0]!r} is not. "
                            "Use data.features.format=long for (item, feature[, value]) rows.")  # fmt: skip
        values = frame.loc[known, rest].apply(pd.to_numeric).to_numpy()
        rows, cols = np.nonzero(values > 0)
        rows = codes[ids[known]].to_numpy()[rows]
        return _build(rows, cols, table.n_items, [str(c) for c in rest], f"file:{path.name}")
    feature = rest[0]
    keep = known
    if len(rest) >= 2:
        value = pd.to_numeric(frame[rest[1]], errors="coerce")
        if value.isna().any():
            line = int(np.flatnonzero(value.isna().to_numpy())[0]) + 2
            raise DataError(f"{path}, line {line}: value {frame[rest[1]].iloc[line - 2]!r} in column {rest[1]!r} "
                            "is not a number (long format: item, feature, value).")  # fmt: skip
        keep = known & (value.to_numpy() > 0)
    names = sorted(frame.loc[keep, feature].astype(str).unique())
    col = {name: j for j, name in enumerate(names)}
    return _build(codes[ids[keep]].to_numpy(), frame.loc[keep, feature].astype(str).map(col).to_numpy(),
                  table.n_items, names, f"file:{path.name}")  # fmt: skip
