"""A weighted ensemble of rating models (stacking), e.g. ALS + a quantum hybrid.

Each member is a model config by name (``conf/model/<name>.yaml``, with its own validation-chosen settings
and training budget), trained on the training split like a hybrid's stage 1 (cached by config, data,
seed and code). The weights are either equal or non-negative least squares on the *validation*
predictions (Breiman's stacked regression: a choice made on validation, like any hyper-parameter);
the test split is only predicted. Ablations are ensembles with a member swapped (e.g. the hybrid without
its circuit), so the circuit's contribution can be read off directly.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls

from qrec.config import compose_model
from qrec.data.datamodule import RatingsDataModule
from qrec.models.base import ClosedFormModule
from qrec.models.stage1 import fit_or_load_base

WEIGHTS = ("equal", "val")


class EnsembleModule(ClosedFormModule):
    """r̂ = Σ_m w_m · r̂_m over fitted member models (no trainable parameters of its own).

    Args:
        members: model config names (``als``, ``varnet_lstm_e2e``, ...), at least two.
        weights: ``equal`` (1/M each) or ``val`` (non-negative least squares on validation ratings).
        seed: seeds every member (part of each member's cache key).
        cache_dir: where fitted members are cached (default ``~/.cache/qrec/stage1``).
    """

    def __init__(self, members: list[str], weights: str = "val", seed: int = 0, cache_dir: str | None = None):
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"model.members={members}: an ensemble needs at least two member models.")
        if weights not in WEIGHTS:
            raise ValueError(f"model.weights={weights!r} is unknown; choose one of {', '.join(WEIGHTS)}.")
        self.save_hyperparameters(ignore=["cache_dir"])
        self.cache_dir, self.extra_metrics = cache_dir, {}

    def build(self, dm: RatingsDataModule) -> None:
        hp = self.hparams
        self.members = torch.nn.ModuleList()
        for name in hp.members:
            cfg = compose_model(name, hp.seed)
            if cfg.model.get("history"):
                raise ValueError(f"model.members: {name} is history-aware; ensembles take single-step members.")
            member, cached = fit_or_load_base(cfg.model, dm, hp.seed, cfg.trainer.max_epochs, cfg.data.batch_size,
                                              self.cache_dir)  # fmt: skip
            self.members.append(member.requires_grad_(False))
            self.extra_metrics[f"member/{name}/cached"] = cached
        val = [m.predict_clipped(dm.val.users, dm.val.items).double().numpy() for m in self.members]
        target = dm.val.ratings.double().numpy()
        if hp.weights == "val":
            w, _ = nnls(np.stack(val, 1), target)
        else:
            w = np.full(len(val), 1.0 / len(val))
        self.register_buffer("weights", torch.tensor(w, dtype=torch.float32))
        for name, value, pred in zip(hp.members, w, val):
            self.extra_metrics[f"member/{name}/weight"] = float(value)
            rmse = np.sqrt(((pred - target) ** 2).mean())
            self.extra_metrics[f"member/{name}/val_rmse"] = float(rmse)

    def fit_step(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> None:
        """Nothing to fit per epoch: members and weights were fitted in :meth:`build`."""

    @torch.no_grad()
    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        preds = torch.stack([m.predict_clipped(users, items) for m in self.members], 1)
        return preds @ self.weights


__all__ = ["EnsembleModule"]
