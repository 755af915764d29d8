"""Every model against a reference: paired over test sets, and user-level bootstrap within each test set."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from qrec.report.runs import describe_unit, per_unit, per_user_values, rating_arrays, unit_key, unit_name
from qrec.report.stats import (
    BootstrapInterval,
    PairedInterval,
    pair_units,
    paired_interval,
    user_bootstrap_delta_mean,
    user_bootstrap_delta_rmse,
)

RATING_METRICS = ("test/rmse", "test/mae")
RANKING_METRIC = "ndcg_10"  # the per-user array the ranking bootstrap reads (test/ndcg_10 averaged)


class Comparison(NamedTuple):
    """One model against the reference within one group of comparable runs.

    Attributes:
        unit: what the paired units are (``seed``, ``fold``, ``split``, ...).
        paired: metric key (``test/rmse``) -> interval of the per-unit difference (model − reference).
        user_level: (unit key, bootstrap interval of the difference within that test set), unit order.
        user_metric: what ``user_level`` differences are of (``RMSE`` or ``nDCG@10``).
        only_model, only_reference: unit keys one side lacks; they are left out of the pairing.
    """

    unit: str
    paired: dict[str, PairedInterval]
    user_level: list[tuple[tuple, BootstrapInterval]]
    user_metric: str
    only_model: list
    only_reference: list


def metric_keys(runs: list[dict]) -> list[str]:
    """The test metrics to pair on: RMSE and MAE for rating runs, every test/ndcg_* and recall_* otherwise."""
    present = {key for run in runs for key in run if key.startswith("test/")}
    rating = [key for key in RATING_METRICS if key in present]
    return rating or sorted(key for key in present if key.split("/")[1].startswith(("ndcg_", "recall_")))


def find_reference(labels: list[str], runs_by_label: dict[str, list[dict]], reference: str) -> str | None:
    """The label whose runs are the reference: an exact label first, else a model class (``als`` = ``ALSModule``)."""
    if reference in labels:
        return reference
    wanted = reference.lower().removesuffix("module")
    for label in labels:
        model = str(runs_by_label[label][0].get("model", ""))
        if wanted in (label.lower(), model.lower().removesuffix("module")):
            return label
    return None


def compare(model_runs: list[dict], reference_runs: list[dict], n_resamples: int = 2000, seed: int = 0) -> Comparison:
    """The model's differences from the reference, paired by test set (never by list order)."""
    keys = metric_keys(model_runs + reference_runs)
    pairing = pair_units(per_unit(model_runs, keys[0]), per_unit(reference_runs, keys[0]))
    paired = {}
    for key in keys:
        model, reference = per_unit(model_runs, key), per_unit(reference_runs, key)
        common = [unit for unit in pairing.keys if unit in model and unit in reference]
        if common:
            paired[key] = paired_interval(np.array([model[unit] - reference[unit] for unit in common]))
    rating = keys[0] in RATING_METRICS
    by_unit_model = {unit_key(run): run for run in model_runs}
    by_unit_reference = {unit_key(run): run for run in reference_runs}
    user_level = []
    for unit in pairing.keys:
        a, b = by_unit_model[unit], by_unit_reference[unit]
        interval = _rating_bootstrap(a, b, n_resamples, seed) if rating else _ranking_bootstrap(a, b, n_resamples, seed)
        if interval is not None:
            user_level.append((unit, interval))
    return Comparison(
        unit_name(pairing.keys or [unit_key(run) for run in model_runs]), paired, user_level,
        "RMSE" if rating else "nDCG@10", pairing.only_model, pairing.only_reference,
    )  # fmt: skip


def _rating_bootstrap(run: dict, reference: dict, n_resamples: int, seed: int) -> BootstrapInterval | None:
    arrays, reference_arrays = rating_arrays(run), rating_arrays(reference)
    if arrays is None or reference_arrays is None:
        return None
    (users, truth, preds), (ref_users, ref_truth, ref_preds) = arrays, reference_arrays
    if not (np.array_equal(users, ref_users) and np.array_equal(truth, ref_truth)):
        raise SystemExit(
            f"{run['_dir']} and {reference['_dir']} claim the same test set ({describe_unit(unit_key(run))}) "
            "but their test_users.npy / test_ratings.npy differ: they ran on different data. Re-run one of them."
        )
    return user_bootstrap_delta_rmse(users, truth, preds, ref_preds, n_resamples, seed)


def _ranking_bootstrap(run: dict, reference: dict, n_resamples: int, seed: int) -> BootstrapInterval | None:
    values, reference_values = per_user_values(run, RANKING_METRIC), per_user_values(reference, RANKING_METRIC)
    if values is None or reference_values is None:
        return None
    (users, ndcg), (ref_users, ref_ndcg) = values, reference_values
    if not np.array_equal(np.sort(users), np.sort(ref_users)):
        raise SystemExit(
            f"{run['_dir']} and {reference['_dir']} scored different users on {describe_unit(unit_key(run))}; "
            "the per-user comparison needs the same evaluation users. Re-run one of them."
        )
    order, ref_order = np.argsort(users), np.argsort(ref_users)
    return user_bootstrap_delta_mean(ndcg[order], ref_ndcg[ref_order], n_resamples, seed)
