"""Every ``conf/model/*.yaml`` runs through ``qrec.pipeline.run`` as ``python train.py model=<name>`` would.

- fast: on the synthetic counterpart of its natural data (same task, same item features), one epoch, the
  default callbacks (checkpoint + early stopping on the config's own ``optimized_metric``);
- ``slow``: on its natural data (MovieLens-100k, read from the local cache), one epoch.

Each config must declare the metric it is judged by and compose with data of its own task by default.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra.utils import get_class

from qrec.models.base import RatingModule
from qrec.pipeline import run
from tests.contract.harness import MODELS

RATING_KEYS = ("val/rmse", "test/rmse", "test/mae", "test/pred_min", "test/pred_max", "test/pred_std",
               "test/infer_s_per_20k", "fit_s", "model", "split", "protocol", "seed")  # fmt: skip
RANKING_KEYS = ("val/ndcg_10", "test/ndcg_10", "test/recall_10", "test/hr_10",
                "fit_s", "model", "split", "protocol", "seed")  # fmt: skip
# Cheap stand-ins where the config's own budget is minutes of training (documented, not silent):
# an ensemble trains each member with that member's full config; a hybrid's stage 1 with base_epochs.
CHEAP = {
    "ensemble": ("model.members=[bias,svd]",),
    "ensemble_lstm_only": ("model.members=[bias,svd]",),
}
HYBRIDS = ("als_lstm", "lstm_only", "varnet_lstm", "varnet_lstm_e2e")


def _natural(make_cfg, name):
    return make_cfg(f"model={name}", "trainer.max_epochs=1", "logger=none", *CHEAP.get(name, ()),
                    *(("model.base_epochs=1",) if name in HYBRIDS else ()))  # fmt: skip


@pytest.mark.parametrize("name", MODELS)
def test_config_declares_its_metric_and_natural_data(make_cfg, name):
    cfg = _natural(make_cfg, name)
    rating = issubclass(get_class(cfg.model._target_), RatingModule)
    data = "ImplicitDataModule" if cfg.data.get("implicit") else "RatingsDataModule"  # what qrec.data.sources builds
    if rating:
        assert (cfg.optimized_metric, cfg.optimized_mode, data) == ("val/rmse", "min", "RatingsDataModule")
    else:
        assert (cfg.optimized_metric, cfg.optimized_mode, data) == ("val/ndcg_10", "max", "ImplicitDataModule")
    for callback in ("model_checkpoint", "early_stopping"):
        assert cfg.callbacks[callback].monitor == cfg.optimized_metric


def _synthetic_counterpart(cfg) -> list[str]:
    """Overrides that swap the natural data for the synthetic table of the same kind and features."""
    if "features" not in cfg.data:
        return ["data=synthetic"]
    features = cfg.data.features
    overrides = ["data=synthetic_implicit", "data.threshold=4", f"data.features={features if features else 'null'}"]
    if features == "kg":
        overrides.append("+data.n_features=20")  # the synthetic knowledge graph has 34 distinct features
    return overrides


@pytest.mark.parametrize("name", MODELS)
def test_config_runs_one_epoch_on_synthetic_data(make_cfg, tmp_path, name):
    natural = _natural(make_cfg, name)
    overrides = [f"model={name}", "trainer.max_epochs=1", "logger=none", *_synthetic_counterpart(natural),
                 *(("model.base_epochs=1",) if name in HYBRIDS else ())]  # fmt: skip
    metrics = run(make_cfg(*overrides))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    keys = RATING_KEYS if "features" not in natural.data else RANKING_KEYS
    assert all(key in saved for key in keys), sorted(saved)
    assert metrics["optimized"] == metrics[natural.optimized_metric]
    assert metrics["best_checkpoint"] and metrics["protocol"].startswith(("explicit", "implicit"))
    if "features" not in natural.data:
        assert 1.0 <= metrics["test/pred_min"] <= metrics["test/pred_max"] <= 5.0
        assert len(np.load(tmp_path / "test_predictions.npy")) == len(np.load(tmp_path / "test_users.npy"))
    else:  # the report's user-level bootstrap reads every tested user's nDCG@10 from this file
        with np.load(tmp_path / "test_per_user.npz") as per_user:
            assert len(np.unique(per_user["users"])) == len(per_user["users"]) == len(per_user["ndcg_10"]) > 0
            assert per_user["ndcg_10"].mean() == pytest.approx(metrics["test/ndcg_10"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_config_runs_one_epoch_on_its_natural_data(make_cfg, name):
    cfg = _natural(make_cfg, name)
    metrics = run(cfg)
    assert metrics["optimized"] == metrics[cfg.optimized_metric]


def test_summary_names_the_protocol(make_cfg, capsys):
    metrics = run(make_cfg("model=itemknn_cbf", "data=synthetic_implicit", "data.features=genres", "logger=none"))
    protocol = "implicit: ratings>=3, random 80/20 then 80/20, seed 0, features genres"
    assert metrics["protocol"] == protocol
    assert f"ItemKNNCBFModule) on {protocol}" in capsys.readouterr().out
    metrics = run(make_cfg("model=bias", "data=synthetic", "logger=none", "data.split=kfold", "data.fold=2"))
    assert metrics["protocol"] == "explicit ratings: 5-fold, fold 2 to test, 10% of the rest to validation, seed 0"
