"""Configs that would train nothing are rejected before any data or model work, naming the key."""

import pytest

from qrec.checks import check_config
from qrec.pipeline import run


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=varnet", "model.lr=0"], "model.lr=0"),
        (["model=varnet", "model.lr=-0.01"], "model.lr=-0.01"),
        (["model=varnet", "model.weight_decay=-1e-4"], "model.weight_decay=-0.0001"),
        (["model=varnet_lstm", "model.base_lr=0"], "model.base_lr=0"),
        (["model=varnet_lstm", "model.base.lr=0"], "model.base.lr=0"),
        (["model=varnet", "trainer.max_epochs=0"], "trainer.max_epochs=0"),
        (["model=als", "trainer.max_epochs=0"], "trainer.max_epochs=0"),
        (["model=als", "trainer.max_epochs=-3"], "trainer.max_epochs=-3"),
        (["model=varnet", "+trainer.max_steps=0"], "trainer.max_steps=0"),
        (["seed=abc"], "seed='abc'"),
        (["seed=-1"], "seed=-1"),
        (["seed=1.5"], "seed=1.5"),
        (["threads=0"], "threads=0"),
        (["threads=1.5"], "threads=1.5"),
    ],
)
def test_config_that_trains_nothing_is_rejected(make_cfg, overrides, message, monkeypatch):
    cfg = make_cfg("data=synthetic", *overrides)
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        check_config(cfg)
    # ... and `run` raises it before touching data: a data module that would fail proves the order.
    monkeypatch.setattr("qrec.pipeline.instantiate", lambda *a, **k: pytest.fail("data/model built first"))
    with pytest.raises(ValueError, match="seed|lr|weight decay|max_epochs|max_steps|threads"):
        run(cfg)


@pytest.mark.parametrize(
    "overrides", [["model=varnet"], ["model=als"], ["seed=4294967295"], ["trainer.max_epochs=-1"], ["model=ensemble"]]
)
def test_sensible_configs_pass(make_cfg, overrides):
    check_config(make_cfg("data=synthetic", *overrides))


def test_threads_apply_to_the_run_and_are_restored(make_cfg, monkeypatch):
    import torch

    seen = []
    monkeypatch.setattr("qrec.pipeline._run", lambda cfg: seen.append(torch.get_num_threads()) or {})
    original = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run(make_cfg("data=synthetic", "model=bias", "threads=1"))
        run(make_cfg("data=synthetic", "model=bias", "threads=null"))
        assert seen == [1, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(original)
    assert make_cfg("model=varnet_lstm").threads == 1  # the hybrid's config asks for one thread
