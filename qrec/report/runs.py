"""Find the runs below a (multi)run directory and key them by what makes two runs comparable.

A run is one ``metrics.json`` (written by :func:`qrec.pipeline.run`) and the arrays beside it:

- ``test_predictions.npy``, ``test_ratings.npy``, ``test_users.npy``: rating runs, one entry per test
  rating in the test loader's order (the user-level bootstrap needs all three);
- ``test_per_user.npz``: ranking runs, arrays ``users`` and one per-user array per metric
  (e.g. ``ndcg_10``), from :func:`qrec.metrics.ranking_metrics` with ``per_user=True``.

Two runs are compared only within a *group* (same ``dataset`` when metrics.json names one) and are
paired on a *unit*: the test set they were scored on, ``(split, fold, seed)``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

PER_USER_FILE = "test_per_user.npz"


def load_runs(root: Path) -> list[dict]:
    """Every run below ``root``: its metrics plus ``_dir`` (where it was found) and a ``label``."""
    runs = []
    for path in sorted(root.rglob("metrics.json")):
        try:
            metrics = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise SystemExit(f"{path} is not valid JSON ({error}); delete or rewrite that run.") from error
        metrics["_dir"] = path.parent
        metrics["label"] = metrics.get("label") or metrics.get("model", path.parent.name)
        runs.append(metrics)
    if not runs:
        raise SystemExit(f"No metrics.json below {root}: is it a `python train.py -m ...` output directory?")
    return runs


def unit_key(run: dict) -> tuple:
    """The test set a run was scored on: (split, fold, seed). ``fold`` is None outside ``kfold``; ranking runs
    record their split in ``dataset`` only."""
    dataset = run.get("dataset") if isinstance(run.get("dataset"), dict) else {}
    return run.get("split") or dataset.get("split"), run.get("fold"), run.get("seed")


def group_key(run: dict) -> str:
    """What must match for two runs' numbers to be comparable (the dataset, when the run names one).

    ``dataset`` as written by the data modules' ``describe()`` is a dict whose split sizes and inferred
    rating scale vary with the seed and fold; only its name and source checksums identify the data.
    """
    dataset = run.get("dataset") or ""
    if isinstance(dataset, dict):
        digest = "+".join(sorted(str(v)[:8] for v in (dataset.get("sources") or {}).values()))
        return f"{dataset.get('name', '')}@{digest}" if digest else str(dataset.get("name", ""))
    return str(dataset)


def by_group(runs: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """group key -> model label -> runs (in unit-key order)."""
    out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for run in sorted(runs, key=lambda r: str(unit_key(r))):
        out[group_key(run)][run["label"]].append(run)
    return {group: dict(labels) for group, labels in out.items()}


def per_unit(runs: list[dict], key: str) -> dict[tuple, float]:
    """unit key -> ``run[key]``.

    Raises:
        ValueError: two runs of one label on the same test set (they cannot be paired; never averaged).
    """
    out: dict[tuple, float] = {}
    for run in runs:
        if key not in run:
            continue
        unit = unit_key(run)
        if unit in out:
            raise ValueError(
                f"two runs of {run['label']} on the same test set {describe_unit(unit)} "
                f"({run['_dir']} and another; a sweep?): give them different labels (label=...) to compare them"
            )
        out[unit] = float(run[key])
    return out


def describe_unit(unit: tuple) -> str:
    split, fold, seed = unit
    return f"split={split}" + (f" fold={fold}" if fold is not None else "") + f" seed={seed}"


def units_text(runs: list[dict]) -> str:
    """The test sets of some runs in words, naming only what varies: ``seed 0, 1, 2``."""
    units = sorted((unit_key(run) for run in runs), key=str)
    varying = [i for i in range(3) if len({u[i] for u in units}) > 1] or [2]
    names = ("split", "fold", "seed")
    if len(varying) == 1:
        return f"{names[varying[0]]} " + ", ".join(str(u[varying[0]]) for u in units)
    return "; ".join(" ".join(f"{names[i]} {u[i]}" for i in varying) for u in units)


def unit_name(units: list[tuple]) -> str:
    """What the units are, in words: ``seed`` if only seeds vary, ``fold`` if only folds, ..."""
    varying = [name for i, name in enumerate(("split", "fold", "seed")) if len({u[i] for u in units}) > 1]
    return "+".join(varying) if varying else "test set"


def rating_arrays(run: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(users, truth, predictions) of a rating run's test set, or None if the run did not save them."""
    files = [run["_dir"] / f"test_{name}.npy" for name in ("users", "ratings", "predictions")]
    if not all(f.is_file() for f in files):
        return None
    users, truth, preds = (np.load(f) for f in files)
    if not len(users) == len(truth) == len(preds):
        raise SystemExit(
            f"{run['_dir']}: test_users/ratings/predictions.npy have {len(users)}/{len(truth)}/{len(preds)} "
            "rows; they must describe the same test ratings. Re-run that configuration."
        )
    return users, truth, preds


def per_user_values(run: dict, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(users, values) of a ranking run's per-user ``metric`` (e.g. ``ndcg_10``), or None if not saved."""
    path = Path(run["_dir"]) / PER_USER_FILE
    if not path.is_file():
        return None
    with np.load(path) as data:
        if "users" not in data or metric not in data:
            return None
        return data["users"], data[metric]
