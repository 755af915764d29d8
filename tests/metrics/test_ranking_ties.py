"""Tie-aware ranking metrics: order-free, exact expectations, equal to references, the same on every path."""

import itertools
import sys
from math import comb

import numpy as np
import pytest
import scipy.sparse as sp

from qrec.metrics import ranking_metrics
from qrec.metrics.ranking import dcg_weights

NAMES = ("ndcg_10", "recall_10", "hr_10")


def _tied_data(seed=0, n_users=40, n_items=60, levels=4):
    """Integer scores (many ties), sparse relevance, a disjoint exclusion set; every user has a positive."""
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, (n_users, n_items)).astype(float)
    exclude = rng.random((n_users, n_items)) < 0.2
    relevant = (rng.random((n_users, n_items)) < 0.08) & ~exclude
    relevant[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    exclude &= ~relevant
    return scores, relevant, exclude


def _brute_force(scores, relevant, exclude, k):
    """Average of (nDCG, recall, HR)@k over every order of each tied group (tiny inputs only)."""
    weights = dcg_weights(k)
    out = []
    for s, rel, ex in zip(scores, relevant, exclude):
        if not rel.any():
            continue
        cand = np.flatnonzero(~ex)
        idcg = weights[: min(rel.sum(), k)].sum()
        values = []
        for tiebreak in itertools.permutations(range(len(cand))):
            order = cand[np.lexsort((np.array(tiebreak), -s[cand]))][:k]
            top = rel[order]
            values.append((top @ weights[: len(top)] / idcg, top.sum() / rel.sum(), float(top.any())))
        out.append(np.mean(values, axis=0))
    return np.mean(out, axis=0)


def test_ranking_metrics_does_not_import_torch():
    import subprocess

    code = "import sys, qrec.metrics.ranking, qrec.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("sparse", [False, True])
def test_permuting_items_changes_nothing(sparse):
    scores, relevant, exclude = _tied_data()
    base = ranking_metrics(scores, relevant, exclude, per_user=True)
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(scores.shape[1])
        rel, ex = relevant[:, perm], exclude[:, perm]
        if sparse:
            rel, ex = sp.csr_matrix(rel), sp.csr_matrix(ex)
        res = ranking_metrics(scores[:, perm], rel, ex, per_user=True)
        for name in NAMES:
            assert abs(res[name] - base[name]) <= 1e-12
            np.testing.assert_allclose(res["per_user"][name], base["per_user"][name], rtol=0, atol=1e-12)
    # The old rule (ties by item index) moves with the permutation on these data; the expectation does not.
    assert 0 < base["ndcg_10"] < 1


@pytest.mark.parametrize(("n", "r", "k"), [(50, 4, 10), (12, 12, 10), (8, 3, 10), (30, 1, 5), (30, 20, 5)])
def test_all_equal_scores_give_the_random_ranking_expectation(n, r, k):
    relevant = np.zeros((1, n), dtype=bool)
    relevant[0, np.random.default_rng(n).choice(n, r, replace=False)] = True
    res = ranking_metrics(np.full((1, n), 0.3), relevant, k=k)
    w = dcg_weights(k)
    m = min(k, n)
    # Each position holds a relevant item with probability r/n.
    assert res[f"ndcg_{k}"] == pytest.approx((r / n) * w[:m].sum() / w[: min(r, k)].sum(), abs=1e-12)
    assert res[f"recall_{k}"] == pytest.approx(m / n, abs=1e-12)
    assert res[f"hr_{k}"] == pytest.approx(1 - comb(n - r, m) / comb(n, m), abs=1e-12)


def test_exact_formula_equals_the_average_over_every_tie_order():
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, (6, 7)).astype(float)  # 7! orders per user
    exclude = rng.random((6, 7)) < 0.15
    relevant = (rng.random((6, 7)) < 0.4) & ~exclude
    relevant[:, 0] |= ~relevant.any(1) & ~exclude[:, 0]
    for k in (1, 3, 10):
        res = ranking_metrics(scores, relevant, exclude, k=k)
        brute = _brute_force(scores, relevant, exclude, k)
        got = [res[f"ndcg_{k}"], res[f"recall_{k}"], res[f"hr_{k}"]]
        np.testing.assert_allclose(got, brute, rtol=0, atol=1e-12)
    assert 0 < res["hr_10"] <= 1


def test_hit_rate_of_a_straddling_group_is_hypergeometric():
    # 1 sure item above, then a group of 6 with 2 relevant for the remaining 2 slots (k = 3).
    scores = np.array([[5.0, 1, 1, 1, 1, 1, 1]])
    relevant = np.array([[False, True, True, False, False, False, False]])
    res = ranking_metrics(scores, relevant, k=3)
    assert res["hr_3"] == pytest.approx(1 - comb(4, 2) / comb(6, 2), abs=1e-15)
    assert res["recall_3"] == pytest.approx((2 / 6) * 2 / 2, abs=1e-15)


def test_without_ties_values_equal_torchmetrics():
    torch = pytest.importorskip("torch")
    from torchmetrics.retrieval import RetrievalHitRate, RetrievalNormalizedDCG, RetrievalRecall

    rng = np.random.default_rng(7)
    n_users, n_items, k = 30, 80, 10
    scores = rng.normal(size=(n_users, n_items))  # continuous: no ties
    exclude = rng.random((n_users, n_items)) < 0.2
    relevant = (rng.random((n_users, n_items)) < 0.1) & ~exclude
    relevant[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    exclude &= ~relevant
    ours = ranking_metrics(scores, relevant, exclude, k=k)
    # torchmetrics has no exclusion: pass only the non-excluded (user, item) pairs.
    u, i = np.nonzero(~exclude)
    args = (torch.tensor(scores[u, i]), torch.tensor(relevant[u, i]))
    kw = {"indexes": torch.tensor(u)}
    for name, metric in [
        ("ndcg_10", RetrievalNormalizedDCG(top_k=k)),
        ("recall_10", RetrievalRecall(top_k=k)),
        ("hr_10", RetrievalHitRate(top_k=k)),
    ]:
        assert ours[name] == pytest.approx(float(metric(*args, **kw)), abs=1e-6), name  # torchmetrics: float32


def test_tied_ndcg_equals_sklearn_tie_averaged_ndcg():
    from sklearn.metrics import ndcg_score

    scores, relevant, _ = _tied_data(seed=4)
    ours = ranking_metrics(scores, relevant, k=10, per_user=True)["per_user"]["ndcg_10"]
    theirs = [ndcg_score(relevant[u : u + 1].astype(float), scores[u : u + 1], k=10) for u in range(len(scores))]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_excluded_items_never_rank_and_users_without_positives_are_skipped():
    scores = np.array([[9.0, 1, 0], [0.0, 0, 0]])
    relevant = np.array([[False, True, False], [False, False, False]])
    exclude = np.array([[True, False, False], [False, False, False]])
    res = ranking_metrics(scores, relevant, exclude, k=1, per_user=True)
    assert res["n_users"] == 1 and res["ndcg_1"] == 1.0 and list(res["users"]) == [0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scores": np.full((2, 3), np.nan)}, "NaN or infinite"),
        ({"relevant": np.zeros((2, 3), bool)}, "empty"),
        ({"relevant": np.ones((3, 3), bool)}, "shape"),
        ({"k": 0}, "positive integer"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    args = {"scores": np.zeros((2, 3)), "relevant": np.eye(2, 3, dtype=bool)} | kwargs
    with pytest.raises(ValueError, match=match):
        ranking_metrics(**args)
