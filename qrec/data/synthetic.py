"""A small generated rating table with MovieLens' shape: for tests and quick runs, no download."""

from __future__ import annotations

import numpy as np
import pandas as pd

from qrec.data.movielens import GROUPLENS_GENRES
from qrec.data.table import RatingTable


def make_synthetic_ratings(
    n_users: int = 60, n_items: int = 40, density: float = 0.4, rank: int = 3, seed: int = 0
) -> RatingTable:
    """Low-rank-plus-bias ratings rounded to 1..5 stars, with genres and a tiny knowledge graph.

    Every user and item gets at least one rating, so codes are contiguous like a real table.
    """
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    mask[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    users, items = np.nonzero(mask)
    order = rng.permutation(len(users))  # file order is not sorted, as in u.data
    users, items = users[order], items[order]
    p, q = rng.normal(0, 0.7, (n_users, rank)), rng.normal(0, 0.7, (n_items, rank))
    raw = 3.5 + rng.normal(0, 0.4, n_users)[users] + rng.normal(0, 0.4, n_items)[items]
    raw += (p[users] * q[items]).sum(1) + rng.normal(0, 0.3, len(users))
    ratings = np.clip(np.rint(raw), 1, 5).astype(np.float32)
    genres = [list(rng.choice(GROUPLENS_GENRES[1:], size=rng.integers(1, 4), replace=False))
              for _ in range(n_items)]  # fmt: skip
    info = pd.DataFrame({"title": [f"movie {i}" for i in range(n_items)], "year": "1995", "genres": genres})
    entities = [f"e{j}" for j in range(12)]
    kg = pd.DataFrame(
        [(f"m{i}", rng.choice(["film.actor", "film.director", "film.genre"]), rng.choice(entities))
         for i in range(n_items) for _ in range(rng.integers(1, 5))],
        columns=["head", "relation", "tail"],
    )  # fmt: skip
    return RatingTable(
        users=users.astype(np.int64), items=items.astype(np.int64), ratings=ratings,
        timestamps=(8.8e8 + rng.integers(0, 10**7, len(users))).astype(np.int64),
        user_ids=np.arange(n_users).astype(str), item_ids=np.arange(n_items).astype(str), name="synthetic",
        rating_scale=(1.0, 5.0),
        item_info=info, kg=kg,
        link=pd.DataFrame({"item": np.arange(n_items), "entity": [f"m{i}" for i in range(n_items)]}),
    )  # fmt: skip
