"""Feature-aware ranking models and the CAQUBO callback end to end on synthetic data."""

import functools
import json

import lightning as L
import numpy as np
import pytest
import torch

from qrec.callbacks.caqubo import CAQUBOCallback
from qrec.data import make_synthetic_ratings
from qrec.data.implicit import ImplicitDataModule
from qrec.models.itemknn_cbf import ItemKNNCBFModule
from qrec.models.mlp_con import MLPCONModule
from qrec.models.mlp_dp import MLPDPModule
from qrec.models.ncf import NCFModule

pytest.importorskip("dwave.samplers")


@pytest.fixture(scope="module")
def dm():
    make = functools.partial(make_synthetic_ratings, n_users=50, n_items=40, density=0.5, seed=1)
    data = ImplicitDataModule(make, features="kg", n_features=8, threshold=3.0, seed=0, batch_size=128)
    data.setup()
    return data


def _trainer(tmp_path, callbacks=(), epochs=1, batches=None):
    return L.Trainer(
        max_epochs=epochs,
        limit_train_batches=batches,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
    )


@pytest.mark.parametrize("cls", [MLPDPModule, MLPCONModule, NCFModule])
def test_neural_models_score_pairs_consistently_and_mask_without_retraining(cls, dm, tmp_path):
    torch.manual_seed(0)
    model = cls()
    _trainer(tmp_path).fit(model, datamodule=dm)
    users, items = torch.arange(6), torch.arange(9)
    with torch.no_grad():
        full = model.score(users, items)
        pairs = model.pair_scores(users.repeat_interleave(9), items.repeat(6)).reshape(6, 9)
        keep = np.ones(8, dtype=bool)
        keep[:3] = False
        masked = model.score(users, items, torch.as_tensor(keep))
    torch.testing.assert_close(full, pairs, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(full, masked)  # the mask reaches the scores...
    model.set_feature_mask(keep)
    with torch.no_grad():
        torch.testing.assert_close(model.score(users, items), masked)  # ...and persists, no retraining
    metrics = model.evaluate("test")
    assert set(metrics) == {"test/ndcg_10", "test/recall_10", "test/hr_10"}
    assert all(0 <= v <= 1 for v in metrics.values())


def test_item_local_evaluator_of_a_trained_model_is_exact(dm, tmp_path):
    torch.manual_seed(0)
    model = MLPDPModule()
    _trainer(tmp_path).fit(model, datamodule=dm)
    model.double()
    cf = model.counterfactual("val", top_l=12)
    for masked in [(0,), (1, 5), (2, 7)]:
        keep = np.ones(8, dtype=bool)
        keep[list(masked)] = False
        assert cf.evaluate(masked) == cf.brute_force(keep)
    assert cf.base == pytest.approx(model.evaluate("val")["val/ndcg_10"], abs=1e-12)


def test_itemknn_module_matches_selection_library(dm):
    model = ItemKNNCBFModule(k=10)
    model.attach(dm)
    cf = model.counterfactual("val", top_l=12)
    assert cf.base == pytest.approx(model.evaluate("val")["val/ndcg_10"], abs=1e-12)
    keep = np.ones(8, dtype=bool)
    keep[[1, 4]] = False
    assert cf.evaluate([1, 4]) == pytest.approx(model.evaluate("val", keep)["val/ndcg_10"], abs=1e-12)


def test_caqubo_callback_end_to_end(dm, tmp_path):
    callback = CAQUBOCallback(solver=["exact", "sa"], k=[None, 4], output_dir=str(tmp_path), progress=False)
    model = ItemKNNCBFModule(k=10)
    _trainer(tmp_path, [callback], batches=1).fit(model, datamodule=dm)
    result = json.loads((tmp_path / "selection.json").read_text())
    for key in (
        "method",
        "solver",
        "k",
        "selected",
        "energy",
        "val_ndcg_10_all",
        "val_ndcg_10_selected",
        "test_ndcg_10_all",
        "test_ndcg_10_selected",
        "counterfactual_s",
        "solve_s",
    ):
        assert key in result, key
    assert result["method"] == "caqubo" and result["solver"] == "exact" and result["k"] is None
    assert len(result["sweep"]) == 4 and [r["n_selected"] for r in result["sweep"]][1::2] == [4, 4]
    assert set(result["selected"]) <= set(dm.feature_names)
    # The exact unconstrained optimum has the lowest energy of all unconstrained runs.
    assert result["sweep"][0]["energy"] <= result["sweep"][2]["energy"] + 1e-12
    assert (tmp_path / "caqubo_q.png").stat().st_size > 0
    assert np.load(tmp_path / "counterfactual.npz")["pair"].shape == (8, 8)
    assert model.extra_metrics["caqubo/n_selected"] == result["n_selected"]


@pytest.mark.parametrize("method", ["miqubo", "coqubo", "qubo_boosting", "cqfs"])
def test_callback_baselines_keep_exactly_k(method, dm, tmp_path):
    callback = CAQUBOCallback(
        method=method,
        solver="tabu",
        k=3,
        num_reads=5,
        output_dir=str(tmp_path),
        heatmap=False,
        progress=False,
    )
    model = ItemKNNCBFModule(k=10)
    model.attach(dm)
    result = callback.run(model, tmp_path)
    assert result["n_selected"] == 3 and result["method"] == method


def test_callback_rejects_bad_configuration():
    with pytest.raises(ValueError, match="method"):
        CAQUBOCallback(method="pca")
    with pytest.raises(ValueError, match="solver"):
        CAQUBOCallback(solver="annealer")


def test_qpu_without_token_can_fall_back(dm, tmp_path, monkeypatch):
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(tmp_path / "missing.conf"))
    model = ItemKNNCBFModule(k=10)
    model.attach(dm)
    strict = CAQUBOCallback(solver="qpu", k=3, output_dir=str(tmp_path), heatmap=False, progress=False)
    with pytest.raises(RuntimeError, match="token"):
        strict.run(model, tmp_path)
    lenient = CAQUBOCallback(
        solver="qpu", k=3, on_solver_error="fallback", output_dir=str(tmp_path), heatmap=False, progress=False
    )
    with pytest.warns(UserWarning, match="Falling back"):
        result = lenient.run(model, tmp_path)
    assert result["solver"] == "sa" and "token" in result["solver_error"]


def test_hydra_configs_compose(tmp_path):
    from hydra.utils import instantiate

    from qrec.config import compose_config

    combos = [(m, "ml100k_kg150") for m in ("itemknn_cbf", "mlp_dp", "mlp_con", "ncf")]
    combos += [("itemknn_cbf", "ml100k_kg500"), ("itemknn_cbf", "ml100k_genres")]
    for model, data in combos:
        cfg = compose_config([f"model={model}", f"data={data}", "callbacks=caqubo"], tmp_path)
        assert cfg.callbacks.caqubo._target_.endswith("CAQUBOCallback")
    cfg = compose_config(["experiment=caqubo_kg150", "model=ncf"], tmp_path)
    assert cfg.optimized_metric == "val/ndcg_10" and list(cfg.callbacks.caqubo.k)[1:] == [130, 135, 140, 145]
    callback = instantiate(cfg.callbacks.caqubo)
    assert isinstance(callback, CAQUBOCallback)
    assert instantiate(cfg.model).__class__.__name__ == "NCFModule"


def test_callback_on_a_neural_model_with_retrain(dm, tmp_path):
    # n_jobs=2 must not fork a torch model (that can deadlock): the callback runs it in-process.
    callback = CAQUBOCallback(
        solver="steepest",
        k=4,
        n_jobs=2,
        retrain=True,
        output_dir=str(tmp_path),
        heatmap=False,
        progress=False,
    )
    torch.manual_seed(0)
    _trainer(tmp_path, [callback]).fit(MLPDPModule(dim=8, hidden=16), datamodule=dm)
    result = json.loads((tmp_path / "selection.json").read_text())
    assert result["n_selected"] == 4 and result["info"]["evaluations"] == 8 + 28
    assert 0.0 <= result["test_ndcg_10_retrained"] <= 1.0


def test_qubo_boosting_weak_models_are_item_knn_refitted_per_feature(dm):
    """For Item-KNN, QUBO-Boosting's weak model i is the same model with only feature i kept."""
    model = ItemKNNCBFModule(k=5, shrink=2.0)
    model.attach(dm)
    users, items = dm.train_pairs[0][:40], dm.train_pairs[1][:40]
    H = model.one_feature_scores(users, items)
    n = dm.features.matrix.shape[1]
    for i in range(n):
        keep = np.zeros(n, dtype=bool)
        keep[i] = True
        full = model.score(torch.as_tensor(users), keep=keep).numpy()
        np.testing.assert_allclose(H[:, i], full[np.arange(len(users)), items])
