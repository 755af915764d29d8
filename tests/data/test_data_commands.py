"""The issue's commands end to end (tiny data, one epoch): own files, Parquet, MovieLens fixtures, sweeps, CAQUBO."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qrec.data import make_synthetic_ratings
from qrec.pipeline import run

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def ratings_frame() -> pd.DataFrame:
    t = make_synthetic_ratings(n_users=40, n_items=30, density=0.4, seed=1)
    return pd.DataFrame({"customer_id": [f"c{u:03d}" for u in t.users], "sku": [f"sku-{i}" for i in t.items],
                         "stars": t.ratings * 2, "timestamp": t.timestamps})  # a 2-10 scale  # fmt: skip


def test_als_on_my_ratings_csv(make_cfg, tmp_path):
    path = tmp_path / "my_ratings.csv"
    ratings_frame().rename(columns={"customer_id": "user", "sku": "item", "stars": "rating"}).to_csv(path, index=False)
    metrics = run(make_cfg("model=als", "data=ratings_file", f"data.path={path}", "trainer.max_epochs=2"))
    data = metrics["dataset"]
    assert data["name"] == "my_ratings" and data["ratings"] == len(pd.read_csv(path))
    assert data["rating_scale"] == [2.0, 10.0] and data["scale_source"] == "inferred from the training split"
    assert len(data["sources"]["my_ratings.csv"]) == 64 and np.isfinite(metrics["test/rmse"])
    assert json.loads((tmp_path / "metrics.json").read_text())["dataset"]["split"] == "random"
    assert "test/cold_users" in metrics


def test_varnet_lstm_on_parquet_with_column_mapping(make_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))  # the stage-1 cache
    path = tmp_path / "ratings.parquet"
    ratings_frame().to_parquet(path)
    metrics = run(make_cfg(
        "model=varnet_lstm", "data=ratings_file", f"data.path={path}", "data.columns.user=customer_id",
        "data.columns.item=sku", "data.columns.rating=stars", "data.columns.timestamp=null",
        "data.rating_scale=[2,10]", "trainer.max_epochs=1", "model.base_epochs=1",
    ))  # fmt: skip
    assert metrics["dataset"]["rating_scale"] == [2.0, 10.0] and not metrics["dataset"]["timestamps"]
    predictions = np.load(tmp_path / "test_predictions.npy")
    assert predictions.min() >= 2 and predictions.max() <= 10  # clipped to the data's scale, not 1-5


def test_ml1m_offline_root_and_cached_download(make_cfg, tmp_path, monkeypatch):
    metrics = run(make_cfg("model=als", "data=ml1m", f"data.root={FIXTURES / 'ml-1m'}", "trainer.max_epochs=2"))
    assert metrics["dataset"]["name"] == "ml-1m" and metrics["dataset"]["ratings"] == 300
    from qrec.data.table import sha256
    from tests.data.test_movielens_family import make_zip

    zipped = make_zip(tmp_path)
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    cfg = make_cfg("model=bias", "data=ml1m", f"data.url={zipped.as_uri()}", f"data.sha256={sha256(zipped)}",
                   "data.split=leave_last", "trainer.max_epochs=1")  # fmt: skip
    metrics = run(cfg)
    assert metrics["dataset"]["sources"] == {"ml-1m.zip": sha256(zipped)}
    assert metrics["dataset"]["split"] == "leave_last"
    assert metrics["dataset"]["parts"]["test"] == 30  # one rating per user


def test_sweep_over_models_and_datasets(tmp_path):
    """`python train.py -m model=bias,als data=ml1m,ml10m ...` on the fixtures (data.root holds both folders)."""
    env = {**os.environ, "QREC_DATA_DIR": str(tmp_path / "cache")}
    cmd = [sys.executable, "train.py", "-m", "model=bias,als", "data=ml1m,ml10m", f"data.root={FIXTURES}", "seed=0",
           "trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep").rglob("metrics.json"))]
    assert sorted((r["model"], r["dataset"]["name"]) for r in runs) == sorted(
        (m, d) for m in ("BiasModule", "ALSModule") for d in ("ml-1m", "ml-10m"))


def test_itemknn_cbf_with_features_file_and_caqubo(make_cfg, tmp_path):
    rng = np.random.default_rng(0)
    clicks = tmp_path / "clicks.csv"
    rows = [f"u{u},m{i}\n" for u in range(40) for i in rng.choice(25, 8, replace=False)]
    clicks.write_text("user,item\n" + "".join(rows))
    features = tmp_path / "item_features.csv"
    pairs = [f"m{i},g{j}\n" for i in range(25) for j in range(5) if (i + j) % 3 == 0]
    features.write_text("item,feature\n" + "".join(pairs))
    pytest.importorskip("dimod")
    metrics = run(make_cfg("model=itemknn_cbf", "data=ratings_file_implicit", f"data.path={clicks}",
                           f"data.features.path={features}", "callbacks=caqubo", "callbacks.caqubo.num_reads=5",
                           "optimized_metric=val/ndcg_10", "optimized_mode=max"))  # fmt: skip
    assert metrics["dataset"]["features"] == "file:item_features.csv"
    assert (tmp_path / "selection.json").is_file() and np.isfinite(metrics["test/ndcg_10"])
