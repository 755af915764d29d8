"""Significance with independent units: paired intervals over test sets, and a user-level bootstrap.

Pure functions on numpy arrays (no Lightning, no files), so each is unit-tested on known numbers.

Two questions, two units (the reasoning is written out in ``docs/significance.md``):

- *Does model A beat the reference across test sets?* The unit is one test set (a seed of the random
  split, a k-fold fold, a GroupLens u1..u5 fold). :func:`pair_units` matches runs by that key,
  :func:`paired_interval` gives the mean per-unit difference, a 95% t-interval and a paired t-test.
- *Within one test set, is the difference larger than the spread between users?* The unit is a user
  (a user's ratings are correlated, users are not): :func:`user_bootstrap_delta_rmse` and
  :func:`user_bootstrap_delta_mean` resample users with replacement.

Individual ratings are never the unit: ratings of one user, or of one item, share errors, and the
random test sets of different seeds overlap, so a test over pooled ratings counts the same evidence
many times and prints p-values far smaller than the seed-to-seed spread supports.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import NamedTuple

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


class Pairing(NamedTuple):
    """Units both sides have, and the units only one side has (reported, never silently dropped)."""

    keys: list
    only_model: list
    only_reference: list


class PairedInterval(NamedTuple):
    """Mean per-unit difference (model − reference) with a 95% t-interval and a paired t-test p-value.

    ``low``, ``high`` and ``p`` are NaN when there are fewer than 2 units (no spread to estimate).
    """

    mean: float
    low: float
    high: float
    p: float
    n: int


class BootstrapInterval(NamedTuple):
    """A difference on one test set, its 95% bootstrap interval and the number of resampled units."""

    delta: float
    low: float
    high: float
    n_units: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def pair_units(model: Mapping[Hashable, float], reference: Mapping[Hashable, float]) -> Pairing:
    """Match two models' per-unit values by unit key (a seed, fold or split), never by list order.

    Args:
        model: unit key -> value for the model being compared.
        reference: unit key -> value for the reference model.
    """
    keys = sorted(set(model) & set(reference), key=str)
    return Pairing(
        keys,
        sorted(set(model) - set(reference), key=str),
        sorted(set(reference) - set(model), key=str),
    )


def paired_interval(deltas: np.ndarray, confidence: float = CONFIDENCE) -> PairedInterval:
    """Student-t interval and two-sided one-sample t-test (= paired t-test) of per-unit differences.

    The t-test, not the Wilcoxon signed-rank test: with the 3-5 units a seed or fold protocol gives,
    Wilcoxon's smallest attainable two-sided p is 0.25 (n=3) or 0.0625 (n=5), so it can never speak.

    Args:
        deltas: (n_units,) model − reference, one value per independent unit.
    """
    deltas = np.asarray(deltas, dtype=float)
    n = len(deltas)
    if n == 0:
        raise ValueError("paired_interval needs at least one unit.")
    mean = float(deltas.mean())
    if n < 2:
        return PairedInterval(mean, float("nan"), float("nan"), float("nan"), n)
    sem = float(deltas.std(ddof=1) / np.sqrt(n))
    if sem == 0.0:  # identical differences on every unit: the interval is that point
        return PairedInterval(mean, mean, mean, 1.0 if mean == 0 else 0.0, n)
    low, high = stats.t.interval(confidence, df=n - 1, loc=mean, scale=sem)
    p = float(stats.ttest_1samp(deltas, 0.0).pvalue)
    return PairedInterval(mean, float(low), float(high), p, n)


def _bootstrap(data: tuple[np.ndarray, ...], statistic, n_resamples: int, seed: int) -> tuple[float, float]:
    # scipy resamples the users (axis 0 of every array together, paired=True) and returns the BCa
    # interval; vectorised, so B resamples are a few matrix reductions.
    result = stats.bootstrap(
        data, statistic, paired=True, vectorized=True, n_resamples=n_resamples, confidence_level=CONFIDENCE,
        method="BCa", rng=np.random.default_rng(seed),
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def user_bootstrap_delta_rmse(
    users: np.ndarray,
    truth: np.ndarray,
    pred_model: np.ndarray,
    pred_reference: np.ndarray,
    n_resamples: int = 2000,
    seed: int = 0,
) -> BootstrapInterval:
    """ΔRMSE (model − reference) on one test set, with a 95% interval from resampling users.

    A resample draws users with replacement and keeps all of each drawn user's ratings; both models
    are scored on exactly the same resampled ratings, so the interval is of the paired difference.

    Args:
        users: (n_ratings,) user code of each test rating.
        truth: (n_ratings,) true stars.
        pred_model: (n_ratings,) the model's predictions, same order.
        pred_reference: (n_ratings,) the reference's predictions, same order.
        n_resamples: bootstrap resamples B.
        seed: fixes the resamples.
    """
    users, truth = np.asarray(users), np.asarray(truth, dtype=float)
    pred_model, pred_reference = np.asarray(pred_model, dtype=float), np.asarray(pred_reference, dtype=float)
    if not len(users) == len(truth) == len(pred_model) == len(pred_reference):
        raise ValueError(
            f"users, truth and predictions differ in length ({len(users)}, {len(truth)}, {len(pred_model)}, "
            f"{len(pred_reference)}): they must describe the same test ratings in the same order."
        )
    _, codes = np.unique(users, return_inverse=True)
    n_users = int(codes.max()) + 1
    # Per-user sums make the resampled RMSE a ratio of weighted sums: sqrt(Σ sse_u / Σ n_u).
    sse_model = np.bincount(codes, weights=(pred_model - truth) ** 2, minlength=n_users)
    sse_reference = np.bincount(codes, weights=(pred_reference - truth) ** 2, minlength=n_users)
    counts = np.bincount(codes, minlength=n_users).astype(float)

    def delta(a: np.ndarray, b: np.ndarray, n: np.ndarray, axis: int = -1) -> np.ndarray:
        total = n.sum(axis=axis)
        return np.sqrt(a.sum(axis=axis) / total) - np.sqrt(b.sum(axis=axis) / total)

    point = float(delta(sse_model, sse_reference, counts))
    if np.array_equal(sse_model, sse_reference):  # identical errors for every user: no spread at all
        return BootstrapInterval(point, point, point, n_users)
    low, high = _bootstrap((sse_model, sse_reference, counts), delta, n_resamples, seed)
    return BootstrapInterval(point, low, high, n_users)


def user_bootstrap_delta_mean(
    values_model: np.ndarray, values_reference: np.ndarray, n_resamples: int = 2000, seed: int = 0
) -> BootstrapInterval:
    """Δ of a per-user mean metric (nDCG@k, Recall@k) with a 95% interval from resampling users.

    Args:
        values_model: (n_users,) the model's per-user metric.
        values_reference: (n_users,) the reference's per-user metric for the same users, same order.
    """
    diff = np.asarray(values_model, dtype=float) - np.asarray(values_reference, dtype=float)
    if diff.ndim != 1 or len(diff) == 0:
        raise ValueError(f"per-user values must be two equal-length 1-D arrays (got shape {diff.shape}).")
    point = float(diff.mean())
    if np.all(diff == diff[0]):
        return BootstrapInterval(point, point, point, len(diff))
    low, high = _bootstrap((diff,), lambda d, axis=-1: d.mean(axis=axis), n_resamples, seed)
    return BootstrapInterval(point, low, high, len(diff))
