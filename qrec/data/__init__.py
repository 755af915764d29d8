"""Data: the MovieLens-100k loader, splits and the rating DataModule."""

from qrec.data.datamodule import Ratings, RatingsDataModule
from qrec.data.movielens import DataError, RatingTable, load_movielens100k
from qrec.data.synthetic import make_synthetic_ratings

__all__ = ["DataError", "RatingTable", "Ratings", "RatingsDataModule", "load_movielens100k",
           "make_synthetic_ratings"]
