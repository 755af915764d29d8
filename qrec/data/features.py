"""Sparse binary item feature matrices (ICMs) from a loaded MovieLens table: genres and KG features.

``genres``: the 19 GroupLens genres. ``kg``: the most frequent (relation, entity) pairs of the
Freebase triples in ``ml-100k.kg`` linked to movies by ``ml-100k.link`` — the stand-in for the
CAQUBO paper's private QuantumCLEF 150ICM / 500ICM.

A linked movie appears as the *head* of most triples (``film.film.genre``, ``film.film.actor`` ...)
and as the *tail* of others (``film.film_genre.films_in_this_genre``, ``film.director.film`` ...).
Most tail relations are exact inverses of head relations: in RecBole's file every genre fact is
stored twice, once each way. Counting both would give every genre two identical columns, so a tail
relation is mapped onto the head relation whose (movie, entity) pairs it repeats (≥ 50% overlap);
tail relations with no such twin keep their name with a ``~`` prefix (seen from the movie).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from qrec.data.movielens import GROUPLENS_GENRES, DataError, RatingTable

FEATURE_SETS = ("genres", "kg")


@dataclass
class ItemFeatures:
    """An item-feature matrix with names.

    Attributes:
        matrix: (n_items, n_features) binary CSR (float32); row = item code of the rating table.
        names: feature ids, ``relation=entity`` for KG features (stable: what selection.json keys on).
        source: how it was built (``genres`` or ``kg150`` ...).
        labels: readable labels, one per feature (default: the names). KG features: the relation's last
            part and the entity, e.g. ``genre m.02822``; the entity is a movie title when it is a movie
            of the dataset. MovieLens-100k's KG holds Freebase ids only (no entity names), so other
            entities stay ids: nothing offline names them, and the labels do not guess.
    """

    matrix: sp.csr_matrix
    names: list[str]
    source: str
    labels: list[str] | None = None

    def __post_init__(self) -> None:
        if self.labels is None:
            self.labels = list(self.names)

    @property
    def n_features(self) -> int:
        return self.matrix.shape[1]

    def summary(self) -> dict:
        """Sizes and sparsity (the paper reports sparsity = 1 − nnz / (items · features))."""
        n_items, n = self.matrix.shape
        nnz = int(self.matrix.nnz)
        per_item = np.diff(self.matrix.indptr)
        return {
            "source": self.source,
            "items": n_items,
            "features": n,
            "nnz": nnz,
            "sparsity": 1.0 - nnz / max(n_items * n, 1),
            "items_without_features": int((per_item == 0).sum()),
            "features_per_item": float(per_item.mean()),
            "min_items_per_feature": int(self.matrix.sum(0).min()),
        }


def genre_features(table: RatingTable) -> ItemFeatures:
    """The 19 GroupLens genres (columns in GroupLens order; genres absent from the data dropped)."""
    if table.item_info is None or "genres" not in table.item_info:
        raise DataError(f"{table.name} has no item genres (ml-100k.item / u.item was not loaded).")
    genres = table.item_info["genres"].reindex(range(table.n_items))
    present = {g for gs in genres.dropna() for g in gs}
    names = [g for g in GROUPLENS_GENRES if g in present] + sorted(present - set(GROUPLENS_GENRES))
    col = {g: j for j, g in enumerate(names)}
    rows, cols = [], []
    for item, gs in enumerate(genres):
        for g in gs if isinstance(gs, list) else []:
            rows.append(item)
            cols.append(col[g])
    return _build(rows, cols, table.n_items, names, "genres")


def kg_pairs(table: RatingTable) -> pd.DataFrame:
    """Distinct (item, relation, entity) facts seen from each linked movie, inverse twins merged."""
    if table.kg is None or table.link is None:
        raise DataError(f"{table.name} has no knowledge graph (ml-100k.kg and ml-100k.link were not loaded).")
    entity_item = table.link.drop_duplicates("entity").set_index("entity")["item"]
    kg = table.kg
    head = kg[kg["head"].isin(entity_item.index)]
    tail = kg[kg["tail"].isin(entity_item.index)]
    forward = pd.DataFrame(
        {
            "item": head["head"].map(entity_item).to_numpy(),
            "relation": head["relation"].to_numpy(),
            "entity": head["tail"].to_numpy(),
        }
    )
    backward = pd.DataFrame(
        {
            "item": tail["tail"].map(entity_item).to_numpy(),
            "relation": tail["relation"].to_numpy(),
            "entity": tail["head"].to_numpy(),
        }
    )
    forward_sets = {r: set(zip(g["item"], g["entity"])) for r, g in forward.groupby("relation")}
    rename = {}
    for rel, group in backward.groupby("relation"):
        facts = set(zip(group["item"], group["entity"]))
        overlap = {r: len(facts & s) for r, s in forward_sets.items()}
        best = max(overlap, key=overlap.get) if overlap else None
        rename[rel] = best if best is not None and overlap[best] >= 0.5 * len(facts) else f"~{rel}"
    backward["relation"] = backward["relation"].map(rename)
    pairs = pd.concat([forward, backward], ignore_index=True).drop_duplicates()
    return pairs.astype({"item": np.int64}).reset_index(drop=True)


def kg_features(table: RatingTable, n_features: int = 150) -> ItemFeatures:
    """The ``n_features`` most frequent (relation, entity) pairs (by number of movies; ties by name)."""
    if n_features < 1:
        raise DataError(f"n_features={n_features} must be ≥ 1.")
    pairs = kg_pairs(table)
    pairs["name"] = pairs["relation"] + "=" + pairs["entity"]
    counts = pairs.groupby("name")["item"].nunique()
    ranked = counts.reset_index().sort_values(["item", "name"], ascending=[False, True])
    if len(ranked) < n_features:
        raise DataError(
            f"The knowledge graph has only {len(ranked)} distinct features; asked for {n_features}."
        )
    names = ranked["name"].head(n_features).tolist()
    col = {name: j for j, name in enumerate(names)}
    kept = pairs[pairs["name"].isin(col)]
    features = _build(
        kept["item"].to_numpy(), kept["name"].map(col).to_numpy(), table.n_items, names, f"kg{n_features}"
    )
    titles = _entity_titles(table)
    features.labels = [kg_label(name, titles) for name in features.names]
    return features


def kg_label(name: str, titles: dict[str, str] | None = None) -> str:
    """Readable label of a ``relation=entity`` feature: ``film.film.award_won=m.0x`` -> ``award won m.0x``;
    an inverse relation (``~`` prefix) reads ``(inverse) ...``; an entity in ``titles`` shows its title."""
    relation, entity = name.split("=", 1)
    inverse = relation.startswith("~")
    short = relation.lstrip("~").rsplit(".", 1)[-1].replace("_", " ")
    return f"{'(inverse) ' if inverse else ''}{short} {(titles or {}).get(entity, entity)}"


def _entity_titles(table: RatingTable) -> dict[str, str]:
    """Freebase id -> movie title for the entities that are movies of the dataset (ml-100k.link)."""
    if table.link is None or table.item_info is None or "title" not in table.item_info:
        return {}
    titles = table.item_info["title"]
    return {e: str(titles[i]) for e, i in zip(table.link["entity"], table.link["item"]) if i in titles.index}


def item_features(table: RatingTable, kind: str = "kg", n_features: int = 150) -> ItemFeatures:
    """Build a feature set by name: ``genres`` or ``kg`` (with ``n_features``)."""
    if kind == "genres":
        return genre_features(table)
    if kind == "kg":
        return kg_features(table, n_features)
    raise DataError(f"features={kind!r} is unknown; choose one of {', '.join(FEATURE_SETS)}.")


def _build(rows, cols, n_items: int, names: list[str], source: str) -> ItemFeatures:
    matrix = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (np.asarray(rows), np.asarray(cols))),
        shape=(n_items, len(names)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0  # binary even if a fact was listed twice
    empty = np.flatnonzero(np.diff(matrix.tocsc().indptr) == 0)
    if len(empty):  # cannot happen for names taken from the data, but masking such a column is meaningless
        keep = np.setdiff1d(np.arange(len(names)), empty)
        matrix, names = matrix[:, keep], [names[j] for j in keep]
    return ItemFeatures(matrix.tocsr(), names, source)
