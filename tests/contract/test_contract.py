"""The shared contract every model config passes (LensKit-style): discovered from ``conf/model/*.yaml``.

For each model: it fits on tiny synthetic data; its predictions (rating) or scores (ranking) are finite for
a user and an item no split has seen; a fresh module + ``attach`` + ``load_state_dict`` reproduces them
exactly; it meets its reference (``tests/contract/expectations.py`` states each one and why); bad
constructor values raise a ``ValueError`` naming the key. One fit per model is shared by the checks.
"""

from __future__ import annotations

import numbers

import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from qrec.models.base import RatingModule
from qrec.models.contract import RankingModule
from tests.contract.expectations import EXPECT
from tests.contract.harness import MODELS, compose, fit, fresh_copy, ranking_scores, rating_outputs, rating_scores

# Numeric arguments for which any value is valid (so -1 cannot be rejected).
ANY_VALUE = {"seed"}


def test_every_model_config_has_a_row():
    missing = sorted(set(MODELS) - set(EXPECT))
    assert not missing, f"add a row for {missing} to tests/contract/expectations.py (what it must achieve, why)"
    assert set(EXPECT) == set(MODELS), f"rows without a config: {sorted(set(EXPECT) - set(MODELS))}"


@pytest.fixture(scope="session")
def fitted_models(tmp_path_factory):
    """name -> Fitted, filled on first use (stage-1 and member caches: tests/conftest.py keeps them in tmp)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            e = EXPECT[name]
            cache[name] = fit(name, e.data, e.epochs, e.fit_overrides, tmp_path_factory.mktemp(name))
        return cache[name]

    return get


@pytest.mark.parametrize("name", MODELS)
def test_class_implements_its_task_contract(name, tmp_path):
    cfg = compose(name, EXPECT[name].data, [], tmp_path)
    cls = get_class(cfg.model._target_)
    expected = RatingModule if EXPECT[name].task == "rating" else RankingModule
    assert issubclass(cls, expected) and cls.task == EXPECT[name].task


@pytest.mark.parametrize("name", MODELS)
def test_meets_its_reference(name, fitted_models):
    e, f = EXPECT[name], fitted_models(name)
    if e.task == "rating":
        s = rating_scores(f)
        checks = {
            "mean": s["model"] <= s["mean"] - e.margin,
            "bias": s["model"] <= s["bias"] - e.margin,
            "fails": s["model"] > s["bias"],
        }
    else:
        s = ranking_scores(f)
        checks = {
            "random": s["model"] >= s["random"] + e.margin,
            "at_random": abs(s["model"] - s["random"]) <= e.margin,
            "pop": s["model"] >= s["pop"] + e.margin,
            "equals_pop": abs(s["model"] - s["pop"]) < 1e-12,
            "equals_random": abs(s["model"] - s["random"]) < 1e-12,
        }
    assert checks[e.reference], f"{name}: expected {e.reference} (margin {e.margin}); measured {s}"


@pytest.mark.parametrize("name", MODELS)
@torch.no_grad()
def test_finite_for_cold_users_and_items(name, fitted_models):
    f = fitted_models(name)
    dm, module = f.dm, f.module
    cold_user, cold_item = dm.n_users - 1, dm.n_items - 1  # in the table, in no split (harness.with_cold)
    if EXPECT[name].task == "ranking":
        assert dm.train[cold_user].nnz == 0 and dm.train[:, cold_item].nnz == 0
        scores = module.score_all(torch.arange(dm.n_users))
        assert scores.shape == (dm.n_users, dm.n_items) and torch.isfinite(scores).all()
        return
    assert not module.user_seen[cold_user] and not module.item_seen[cold_item]
    user, item = int(dm.train.users[0]), int(dm.train.items[0])
    users = torch.tensor([cold_user, user, cold_user, dm.n_users, -1, 10**6])
    items = torch.tensor([item, cold_item, cold_item, item, cold_item, 10**6])
    n = len(users)
    batch = (users, items, torch.full((n,), 3.0), torch.full((n,), 10**10, dtype=torch.int64))
    preds = module.evaluate(batch if dm.with_timestamps else batch[:3])
    mu, bu, bi = module.mu, module.b_user[user], module.b_item[item]
    expected = torch.stack([mu + bi, mu + bu, mu, mu + bi, mu, mu]).clamp(1, 5)  # the bias fallback
    torch.testing.assert_close(preds, expected.to(preds.dtype))


@pytest.mark.parametrize("name", MODELS)
@torch.no_grad()
def test_state_dict_round_trip(name, fitted_models):
    f = fitted_models(name)
    copy = fresh_copy(f)
    if EXPECT[name].task == "rating":
        a, b = rating_outputs(f.module, f.dm), rating_outputs(copy, f.dm)
    else:
        users = torch.arange(f.dm.n_users)
        a, b = f.module.score_all(users), copy.score_all(users)
    torch.testing.assert_close(b, a, rtol=0, atol=0)


def _bad_values(name: str, tmp_path) -> list[tuple[str, object, str]]:
    """(key, bad value, text the error must contain): -1 for every numeric argument, plus the row's extras."""
    cfg = compose(name, EXPECT[name].data, [], tmp_path)
    args = OmegaConf.to_container(cfg.model, resolve=True)
    bad = [
        (key, -1, f"{key}=-1")
        for key, value in args.items()
        if isinstance(value, numbers.Number) and not isinstance(value, bool) and key not in ANY_VALUE
    ]
    for override, text in EXPECT[name].bad:
        key, value = override.removeprefix("model.").split("=", 1)
        bad.append((key, OmegaConf.to_container(OmegaConf.from_dotlist([f"v={value}"]))["v"], text))
    return bad


@pytest.mark.parametrize("name", MODELS)
def test_rejects_bad_constructor_values(name, tmp_path):
    cfg = compose(name, EXPECT[name].data, [], tmp_path)
    args = OmegaConf.to_container(cfg.model, resolve=True)
    cls = get_class(args.pop("_target_"))
    args.pop("_recursive_", None)
    cases = _bad_values(name, tmp_path)
    assert cases, f"{name}: no constructor value is checked; add a `bad` entry to its row"
    for key, value, text in cases:
        with pytest.raises(ValueError, match=None) as err:
            cls(**{**args, key: value})
        assert text in str(err.value), f"{name}: {key}={value!r} raised {err.value!r}, which does not say {text!r}"
