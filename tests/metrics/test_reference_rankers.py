"""model=pop and model=random_rank: random_rank scores exactly the random-ranking expectation."""

import json

import numpy as np
import pytest

from qrec.metrics.ranking import dcg_weights
from qrec.pipeline import run


def _closed_form_random(relevant, exclude, k=10):
    """Mean over users with a positive of E[nDCG@k], E[Recall@k], E[HR@k] of a uniformly random ranking."""
    from math import comb

    w = dcg_weights(k)
    out = []
    for rel, ex in zip(relevant.toarray().astype(bool), exclude.toarray().astype(bool)):
        r = int(rel.sum())
        if r == 0:
            continue
        n = int((~ex).sum())  # candidates
        m = min(k, n)
        out.append(((r / n) * w[:m].sum() / w[: min(r, k)].sum(), m / n, 1 - comb(n - r, m) / comb(n, m)))
    return np.mean(out, axis=0)


def test_random_rank_scores_exactly_the_random_expectation(make_cfg):
    cfg = make_cfg("model=random_rank", "data=synthetic_implicit", "logger=none")
    metrics = run(cfg)
    dm_cfg = make_cfg("model=random_rank", "data=synthetic_implicit").data
    from hydra.utils import instantiate

    dm = instantiate(dm_cfg)
    dm.setup()
    for split in ("val", "test"):
        expected = _closed_form_random(dm.relevant(split), dm.exclude(split))
        got = [metrics[f"{split}/{m}_10"] for m in ("ndcg", "recall", "hr")]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)  # logged through Lightning (float32)


def test_pop_ranks_by_training_counts_and_beats_random(make_cfg):
    cfg = make_cfg("model=pop", "data=synthetic_implicit", "logger=none")
    pop = run(cfg)
    saved = json.loads(open(cfg.paths.output_dir + "/metrics.json").read())
    assert saved["test/ndcg_10"] == pytest.approx(pop["test/ndcg_10"])
    assert saved["optimized"] == pytest.approx(pop["val/ndcg_10"])  # judged by validation nDCG@10
    rnd = run(make_cfg("model=random_rank", "data=synthetic_implicit", "logger=none"))
    assert pop["test/ndcg_10"] > rnd["test/ndcg_10"] + 0.05
