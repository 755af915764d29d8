"""The generator samples without a dense mask: exact size, coverage, skews, seeds, clear errors."""

import numpy as np
import pytest

from qrec.data.synthetic import make_synthetic_ratings
from qrec.data.table import DataError


def _pairs(table) -> np.ndarray:
    return table.users.astype(np.int64) * table.n_items + table.items


def test_exact_size_distinct_pairs_and_full_coverage():
    table = make_synthetic_ratings(500, 300, n_ratings=20_000, item_skew=1.0, user_skew=0.5, seed=3)
    assert len(table) == 20_000 and len(np.unique(_pairs(table))) == 20_000
    assert np.bincount(table.users, minlength=500).min() >= 1  # every code is used: contiguous like a real table
    assert np.bincount(table.items, minlength=300).min() >= 1
    assert set(np.unique(table.ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_far_beyond_any_dense_mask():
    # 10^6 x 10^6 pairs: a dense boolean mask would need 1 TB; the sampler needs O(n_ratings).
    table = make_synthetic_ratings(1_000_000, 1_000_000, n_ratings=2_100_000, features=False, seed=0)
    assert len(np.unique(_pairs(table))) == 2_100_000


def test_zipf_skew_concentrates_ratings_on_popular_items():
    def top_share(skew):
        counts = np.bincount(make_synthetic_ratings(5000, 1000, n_ratings=30_000, item_skew=skew, seed=1).items)
        return np.sort(counts)[::-1][:10].sum() / counts.sum()

    uniform, mild, steep = top_share(0.0), top_share(0.7), top_share(1.2)
    assert uniform < mild < steep
    assert uniform < 0.02 and steep > 0.2


def test_popularity_is_not_encoded_in_item_codes():
    counts = np.bincount(make_synthetic_ratings(300, 1000, n_ratings=30_000, item_skew=1.0, seed=2).items)
    rho = np.corrcoef(np.argsort(np.argsort(counts)), np.arange(1000))[0, 1]
    assert abs(rho) < 0.15  # codes in random order: a tie broken by code is not a popularity prior


def test_same_seed_same_table_other_seed_other_table():
    kwargs = {"n_ratings": 500, "item_skew": 0.5}
    a, b = make_synthetic_ratings(seed=5, **kwargs), make_synthetic_ratings(seed=5, **kwargs)
    c = make_synthetic_ratings(seed=6, **kwargs)
    assert np.array_equal(a.users, b.users) and np.array_equal(a.ratings, b.ratings)
    assert not np.array_equal(_pairs(a), _pairs(c))


@pytest.mark.parametrize(
    "kwargs, key",
    [({"n_ratings": 10}, "n_ratings"), ({"n_ratings": 60 * 40 + 1}, "n_ratings"), ({"item_skew": -1}, "skew"),
     ({"density": 0}, "density")],
)
def test_impossible_sizes_are_clear_errors(kwargs, key):
    with pytest.raises(DataError, match=key):
        make_synthetic_ratings(60, 40, **kwargs)


@pytest.mark.parametrize("n, skew", [(1, 0.0), (3, 0.0), (997, 0.5), (5000, 1.2)])
def test_fast_weighted_sampler_is_numpy_choice_draw_for_draw(n, skew):
    from qrec.data.synthetic import _choice, _zipf

    p = _zipf(n, skew, np.random.default_rng(1))
    p[: n // 3] = 0.0 if n > 2 else p[: n // 3]  # zero-probability codes must never be drawn
    p /= p.sum()
    expected = np.random.default_rng(7).choice(n, 50_000, p=p)
    got = _choice(np.random.default_rng(7), p, 50_000)
    assert np.array_equal(got, expected)


def test_user_activity_skew_and_user_sorted_rows():
    def top_share(skew):
        table = make_synthetic_ratings(1000, 2000, n_ratings=30_000, user_skew=skew, seed=4)
        assert np.all(np.diff(_pairs(table)) > 0)  # sorted by user then item, as MovieLens-20M's file
        counts = np.bincount(table.users)
        return np.sort(counts)[::-1][:10].sum() / counts.sum()

    assert top_share(0.0) < 0.02 < 0.1 < top_share(1.2)


def test_dropping_a_random_surplus_keeps_order_and_exact_count():
    from qrec.data.synthetic import _drop_random

    keys = np.arange(0, 30_000, 3)
    kept = [_drop_random(keys, 4_000, np.random.default_rng(s)) for s in range(40)]
    assert all(len(k) == len(keys) - 4_000 and np.all(np.diff(k) > 0) and np.isin(k, keys).all() for k in kept)
    # Uniform: each position is kept with probability 0.6; the two halves agree within 0.01 (~6 standard errors).
    share = np.mean([np.isin(keys, k) for k in kept], axis=0)
    assert abs(share.mean() - 0.6) < 1e-12 and abs(share[:5000].mean() - share[5000:].mean()) < 0.01
