"""Data: rating tables from MovieLens, your own files or a generator; splits; the data modules.

Names are imported lazily (PEP 562) so the readers and the download cache load without torch and
Lightning: a process that only fetches data (or a test that starts several) starts in a second.
"""

from importlib import import_module

_WHERE = {
    "DataError": "qrec.data.table", "RatingTable": "qrec.data.table",
    "Ratings": "qrec.data.datamodule", "RatingsDataModule": "qrec.data.datamodule",
    "load_movielens100k": "qrec.data.movielens", "load_movielens": "qrec.data.grouplens",
    "read_ratings": "qrec.data.files", "make_synthetic_ratings": "qrec.data.synthetic",
}  # fmt: skip
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'qrec.data' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
