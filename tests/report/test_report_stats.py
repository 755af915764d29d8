"""The report's statistics on known numbers and on synthetic data with a known true difference."""

import numpy as np
import pytest
from scipy import stats

from qrec.report.stats import (
    pair_units,
    paired_interval,
    user_bootstrap_delta_mean,
    user_bootstrap_delta_rmse,
)


def test_t_interval_on_known_numbers():
    # deltas 1, 2, 3, 4: mean 2.5, sd 1.29099, sem 0.645497, t(0.975, df=3) = 3.182446 (tables).
    result = paired_interval(np.array([1.0, 2.0, 3.0, 4.0]))
    assert result.n == 4 and result.mean == pytest.approx(2.5)
    assert result.low == pytest.approx(2.5 - 3.182446 * 0.645497, abs=1e-5)
    assert result.high == pytest.approx(2.5 + 3.182446 * 0.645497, abs=1e-5)
    # t = 2.5 / 0.645497 = 3.873 on 3 df: two-sided p = 0.0305; equal to scipy's paired t-test.
    assert result.p == pytest.approx(0.0305, abs=5e-4)
    a, b = np.array([5.0, 7.0, 4.0, 9.0]), np.array([4.0, 5.0, 1.0, 5.0])
    assert paired_interval(a - b).p == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_one_unit_has_no_interval_and_constant_differences_are_a_point():
    single = paired_interval(np.array([0.01]))
    assert single.n == 1 and single.mean == 0.01 and np.isnan(single.low) and np.isnan(single.p)
    constant = paired_interval(np.array([0.01, 0.01, 0.01]))
    assert constant.low == constant.high == pytest.approx(0.01)
    with pytest.raises(ValueError, match="at least one unit"):
        paired_interval(np.array([]))


def test_pairing_is_by_key_not_order_and_reports_missing_partners():
    model = {("random", None, 2): 0.93, ("random", None, 0): 0.91, ("random", None, 3): 0.90}
    reference = {("random", None, 0): 0.90, ("random", None, 1): 0.95, ("random", None, 2): 0.92}
    pairing = pair_units(model, reference)
    assert pairing.keys == [("random", None, 0), ("random", None, 2)]
    assert pairing.only_model == [("random", None, 3)] and pairing.only_reference == [("random", None, 1)]
    deltas = [model[k] - reference[k] for k in pairing.keys]
    assert deltas == pytest.approx([0.01, 0.01])


def _synthetic(rng, scale_model: float, n_users: int = 150, per_user: int = 12):
    """Errors whose size is a property of the user (users differ, a user's ratings share it).

    Reference error s_u·z, model error scale_model·s_u·z' with s_u ~ U(0.5, 1.5): the true
    ΔRMSE is (scale_model − 1)·sqrt(E[s²]) = (scale_model − 1)·sqrt(13/12).
    """
    users = np.repeat(np.arange(n_users), per_user)
    s = rng.uniform(0.5, 1.5, n_users)[users]
    truth = rng.integers(1, 6, len(users)).astype(float)
    reference = truth + s * rng.standard_normal(len(users))
    model = truth + scale_model * s * rng.standard_normal(len(users))
    return users, truth, model, reference, (scale_model - 1.0) * np.sqrt(13 / 12)


@pytest.mark.parametrize("scale_model", [0.8, 1.0])
def test_user_bootstrap_covers_the_true_difference(scale_model):
    rng = np.random.default_rng(0)
    covered, excluded_zero = 0, 0
    for replicate in range(40):
        users, truth, model, reference, true_delta = _synthetic(rng, scale_model)
        interval = user_bootstrap_delta_rmse(users, truth, model, reference, n_resamples=1000, seed=replicate)
        covered += interval.low <= true_delta <= interval.high
        excluded_zero += interval.excludes_zero()
    assert covered >= 34  # nominal 95% of 40 = 38; 34 is ~2.5 binomial sd below it
    if scale_model < 1:  # better by a set margin (ΔRMSE = −0.208): every interval excludes 0
        assert excluded_zero == 40
    else:  # equal models: the interval includes 0 about 95% of the time
        assert excluded_zero <= 6


def test_user_bootstrap_is_seeded_and_checks_lengths():
    users, truth, model, reference, _ = _synthetic(np.random.default_rng(1), 0.9)
    first = user_bootstrap_delta_rmse(users, truth, model, reference, n_resamples=500, seed=3)
    assert first == user_bootstrap_delta_rmse(users, truth, model, reference, n_resamples=500, seed=3)
    assert first.n_units == 150
    rmse = lambda pred: np.sqrt(np.mean((pred - truth) ** 2))  # noqa: E731
    assert first.delta == pytest.approx(rmse(model) - rmse(reference))
    same = user_bootstrap_delta_rmse(users, truth, reference, reference)
    assert same.delta == same.low == same.high == 0.0
    with pytest.raises(ValueError, match="same test ratings"):
        user_bootstrap_delta_rmse(users[:-1], truth, model, reference)


def test_user_bootstrap_of_a_per_user_mean():
    rng = np.random.default_rng(2)
    reference = rng.uniform(0, 1, 400)
    better = user_bootstrap_delta_mean(reference + 0.05 + 0.02 * rng.standard_normal(400), reference, 1000)
    assert better.low > 0 and better.low <= 0.05 <= better.high and better.n_units == 400
    equal = user_bootstrap_delta_mean(rng.uniform(0, 1, 400), reference, 1000)
    assert equal.low < 0 < equal.high
