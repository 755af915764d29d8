"""GPU-clean code without a GPU: every model's prediction runs on the ``meta`` device.

A tensor created on a fixed device (``torch.zeros(n)`` on the CPU) next to the model's buffers fails
here exactly as it would on ``cuda`` (``Expected all tensors to be on the same device``).
"""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from qrec.config import compose_config

META = torch.device("meta")
RATING_MODELS = ["bias", "als", "svd", "svd model.center=none", "ease", "nmf", "lstm_only", "varnet", "swap_test"]
RANKING_MODELS = ["ncf", "mlp_con", "mlp_dp"]  # itemknn_cbf scores with scipy on the CPU by design


def _setup(tmp_path, name: str, data: str):
    model, *overrides = name.split()
    cfg = compose_config([f"model={model}", f"data={data}", *overrides], tmp_path)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    model = instantiate(cfg.model)
    model.attach(dm)
    return dm, model


@pytest.mark.parametrize("name", RATING_MODELS)
def test_rating_prediction_follows_the_model_device(tmp_path, monkeypatch, name):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path))
    dm, model = _setup(tmp_path, name, "synthetic")
    model.to(META)
    users, items = dm.test.users[:16].to(META), dm.test.items[:16].to(META)
    with torch.no_grad():
        preds = model.predict_clipped(users, items)
    assert preds.device == META and preds.shape == (16,)


@pytest.mark.parametrize("name", ["bias", "nmf"])
def test_closed_form_step_follows_the_model_device(tmp_path, monkeypatch, name):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path))
    dm, model = _setup(tmp_path, name, "synthetic")
    model.to(META)
    model.fit_step(*(t.to(META) for t in dm.train[:3]))
    assert all(b.device == META for b in model.buffers())


@pytest.mark.parametrize("name", RANKING_MODELS)
def test_ranking_scores_follow_the_model_device(tmp_path, monkeypatch, name):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path))
    dm, model = _setup(tmp_path, f"{name} data.features=genres", "synthetic_implicit")
    model.to(META)
    with torch.no_grad():
        scores = model.score(torch.arange(4, device=META))
    assert scores.device == META and scores.shape == (4, dm.n_items)


@pytest.mark.parametrize("head", ["linear", "qi"])
def test_two_tower_scores_follow_the_model_device(tmp_path, monkeypatch, head):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path))
    dm, model = _setup(tmp_path, f"two_tower model.head={head}", "synthetic_implicit")
    model.to(META)
    with torch.no_grad():
        scores = model.score_matrix(torch.arange(4, device=META))  # (`score` uses unique(): no meta kernel)
    assert scores.device == META and scores.shape == (4, dm.n_items)
