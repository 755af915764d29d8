"""Fit one model config on tiny synthetic data and measure it (shared by the contract tests).

Kept free of pytest so ``python -m tests.contract.harness`` can print the measured table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from qrec.config import CONF, compose_config
from qrec.data import RatingsDataModule
from qrec.data.movielens import RatingTable
from qrec.models.contract import RankingModule, RecommenderModule

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


@dataclass
class Fitted:
    """A fitted module, its data module and the composed config it came from."""

    name: str
    cfg: DictConfig
    dm: L.LightningDataModule
    module: RecommenderModule


def with_cold(dataset: Callable[[], RatingTable]) -> Callable[[], RatingTable]:
    """The same table without any rating of its last user and last item, which stay in the code range:
    a user and an item no split has ever seen (the cold-start paths inside the table)."""

    def load() -> RatingTable:
        table = dataset()
        keep = (table.users != table.n_users - 1) & (table.items != table.n_items - 1)
        return replace(table, users=table.users[keep], items=table.items[keep], ratings=table.ratings[keep],
                       timestamps=table.timestamps[keep])  # fmt: skip

    return load


def compose(name: str, data: str, extra: list[str], out: Path) -> DictConfig:
    return compose_config([f"model={name}", f"data={data}", "logger=none", "callbacks=none", *extra], out)


def fit(name: str, data: str, epochs: int, extra: list[str], out: Path) -> Fitted:
    """Fit ``model=<name>`` on ``data`` for ``epochs`` epochs (no validation loop, no checkpoint)."""
    cfg = compose(name, data, extra, out)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = instantiate(cfg.data)
    dm.dataset = with_cold(dm.dataset)
    dm.setup("fit")
    module = instantiate(cfg.model)
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0,
        limit_train_batches=cfg.trainer.get("limit_train_batches") or 1.0, default_root_dir=str(out),
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    module.eval()
    return Fitted(name, cfg, dm, module)


def fresh_copy(fitted: Fitted) -> RecommenderModule:
    """A new module from the same config, attached to the same data, loaded from the fitted state_dict."""
    L.seed_everything(fitted.cfg.seed + 1, verbose=False)  # a different init: the state must carry everything
    module = instantiate(fitted.cfg.model)
    module.attach(fitted.dm)
    module.load_state_dict(fitted.module.state_dict())
    return module.eval()


# --- rating ---------------------------------------------------------------------------------------
@torch.no_grad()
def rating_outputs(module, dm: RatingsDataModule) -> torch.Tensor:
    """(n_test,) clipped test predictions through the model's evaluation path."""
    test = dm.test
    batch = tuple(t for t in test[: 4 if dm.with_timestamps else 3])
    return module.evaluate(batch)


def rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(((pred.double() - target.double()) ** 2).mean().sqrt())


@torch.no_grad()
def rating_scores(fitted: Fitted) -> dict[str, float]:
    """Test RMSE of the model, of the train-only bias baseline (μ + b_u + b_i, clipped) and of the mean."""
    dm, module = fitted.dm, fitted.module
    test = dm.test
    bias = module.baseline(test.users, test.items).clamp(1, 5)
    mean = torch.full_like(test.ratings, dm.global_mean)
    return {
        "model": rmse(rating_outputs(module, dm), test.ratings),
        "bias": rmse(bias, test.ratings),
        "mean": rmse(mean, test.ratings),
    }


# --- ranking --------------------------------------------------------------------------------------
def random_ndcg(relevant, exclude, k: int = 10) -> float:
    """Closed-form expected nDCG@k of a uniformly random ranking, averaged over users with a relevant item.

    Hand-written (no library computes it): with R relevant among N candidates, each position holds a
    relevant item with probability R / N, so E[DCG@k] = (R / N) · Σ_{p≤min(k,N)} 1 / log2(p + 1).
    """
    values = []
    for u in np.flatnonzero(np.diff(relevant.indptr) > 0):
        n_rel = relevant.indptr[u + 1] - relevant.indptr[u]
        n_cand = relevant.shape[1] - (exclude.indptr[u + 1] - exclude.indptr[u])
        disc = 1.0 / np.log2(np.arange(2, k + 2))
        values.append(n_rel / n_cand * disc[: min(k, n_cand)].sum() / disc[: min(k, n_rel)].sum())
    return float(np.mean(values))


def ndcg(scores: np.ndarray, relevant, exclude, k: int = 10) -> float:
    """nDCG@k through the project's ranking metric (the one every qrec ranking path uses)."""
    from qrec.metrics import ranking_metrics

    m = ranking_metrics(scores, relevant, exclude, k=k)
    return float(m["ndcg"] if "ndcg" in m else m[f"ndcg_{k}"])


@torch.no_grad()
def ranking_scores(fitted: Fitted) -> dict[str, float]:
    """Test nDCG@10 of the model, of popularity (training counts) and of a random ranking (expected)."""
    dm, module = fitted.dm, fitted.module
    assert isinstance(module, RankingModule)
    users = torch.arange(dm.n_users)
    scores = module.score_all(users).double().cpu().numpy()
    relevant, exclude = dm.relevant("test"), dm.exclude("test")
    popularity = np.tile(np.asarray(dm.train.sum(0), dtype=np.float64), (dm.n_users, 1))
    return {
        "model": ndcg(scores, relevant, exclude),
        "pop": ndcg(popularity, relevant, exclude),
        "random": random_ndcg(relevant, exclude),
        "finite": bool(np.isfinite(scores).all()),
    }


if __name__ == "__main__":  # python -m tests.contract.harness: the measured table behind the expectations
    import os
    import sys
    import tempfile
    import time

    from tests.contract.expectations import EXPECT

    for name in sys.argv[1:] or MODELS:
        e = EXPECT[name]
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["QREC_DATA_DIR"] = tmp  # stage-1 / member caches: fresh
            start = time.perf_counter()
            fitted = fit(name, e.data, e.epochs, e.fit_overrides, Path(tmp))
            scores = rating_scores(fitted) if e.task == "rating" else ranking_scores(fitted)
            print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()},
                  f"{time.perf_counter() - start:.1f}s", flush=True)
