"""A weighted ensemble of rating models (stacking), e.g. ALS + a quantum hybrid.

Each member is a model config by name (``conf/model/<name>.yaml``, with its own validation-chosen settings
and training budget), trained on the training split like a hybrid's stage 1 (cached by config, data,
seed and code). The weights are either equal or non-negative least squares on the *validation*
predictions (Breiman's stacked regression: a choice made on validation, like any hyper-parameter);
the test split is only predicted. Ablations are ensembles with a member swapped (e.g. the hybrid without
its circuit), so the circuit's contribution can be read off directly.

Weights fitted on validation make the validation error of the blend in-sample. With ``weights=val`` the
reported ``val/rmse`` (and so the value a sweeper optimises) is therefore *cross-fitted*: the validation
ratings are split into ``folds`` seeded folds (by (user, item) pair) and each rating is predicted with
weights fitted on the other folds. The weights used on the test split are fitted on all validation
ratings. ``ensemble/val_rmse_in_sample`` is reported beside it for comparison.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls

from qrec import timing
from qrec.config import compose_model
from qrec.data.datamodule import RatingsDataModule
from qrec.models.base import ClosedFormModule
from qrec.models.components.frozen import FrozenPredictions, split_pairs
from qrec.models.stage1 import fit_or_load_base

WEIGHTS = ("equal", "val")


class EnsembleModule(ClosedFormModule):
    """r̂ = Σ_m w_m · r̂_m over fitted member models (no trainable parameters of its own).

    Args:
        members: model config names (``als``, ``varnet_lstm_e2e``, ...), at least two.
        weights: ``equal`` (1/M each), ``val`` (non-negative least squares on validation ratings, validation
            score cross-fitted), or M fixed non-negative numbers (the ``refit_on_val`` refit passes the
            weights its validated fit chose).
        folds: cross-fitting folds of ``weights=val`` (≥ 2).
        member_epochs: epochs per member, overriding each member config's ``trainer.max_epochs`` (the
            ``refit_on_val`` refit passes the epochs each validated member kept).
        seed: seeds every member (part of each member's cache key) and the folds.
        cache_dir: where fitted members are cached (default ``~/.cache/qrec/stage1``).
    """

    def __init__(
        self, members: list[str], weights: str | list[float] = "val", folds: int = 5,
        member_epochs: list[int] | None = None, seed: int = 0, cache_dir: str | None = None,
    ):  # fmt: skip
        super().__init__()
        members = list(members)
        if len(members) < 2:
            raise ValueError(f"model.members={members}: an ensemble needs at least two member models.")
        if isinstance(weights, str):
            if weights not in WEIGHTS:
                raise ValueError(f"model.weights={weights!r} is unknown; choose one of {', '.join(WEIGHTS)}.")
        else:
            weights = [float(w) for w in weights]
            if len(weights) != len(members) or min(weights) < 0:
                raise ValueError(f"model.weights={weights}: give {len(members)} non-negative numbers or equal|val.")
        if folds < 2:
            raise ValueError(f"model.folds={folds} must be ≥ 2 (cross-fitting needs a held-out fold).")
        if member_epochs is not None and len(member_epochs) != len(members):
            raise ValueError(f"model.member_epochs={list(member_epochs)}: give one per member ({len(members)}).")
        self.save_hyperparameters(ignore=["cache_dir"])
        self.cache_dir = cache_dir
        self.val_lookup: tuple[torch.Tensor, torch.Tensor] | None = None

    def build(self, dm: RatingsDataModule) -> None:
        hp = self.hparams
        self.members = torch.nn.ModuleList()
        for i, name in enumerate(hp.members):
            cfg = compose_model(name, hp.seed)
            if cfg.model.get("history"):
                raise ValueError(f"model.members: {name} is history-aware; ensembles take single-step members.")
            epochs = cfg.trainer.max_epochs if hp.member_epochs is None else int(hp.member_epochs[i])
            with timing.span("stage1_s"):
                member, cached = fit_or_load_base(cfg.model, dm, hp.seed, epochs, cfg.data.batch_size,
                                                  self.cache_dir)  # fmt: skip
            self.members.append(member.requires_grad_(False))
            self.extra_metrics[f"member/{name}/cached"] = cached
        # The members are frozen: their predictions for every pair of the splits are computed once.
        with timing.span("frozen_s"):
            pairs = split_pairs(dm.train, dm.val, dm.test)
            self.frozen = FrozenPredictions(self.member_predictions, *pairs, dm.n_items)
        val = self.frozen(dm.val.users, dm.val.items, self.member_predictions).double().numpy()  # (n, members)
        target = dm.val.ratings.double().numpy()
        if hp.weights == "val":
            w, _ = nnls(val, target)
            fold = crossfit_folds(dm.val.users.numpy(), dm.val.items.numpy(), dm.n_items, hp.folds, hp.seed)
            fold_w = np.stack([nnls(val[fold != f], target[fold != f])[0] for f in range(hp.folds)])
            keys = dm.val.users.numpy() * dm.n_items + dm.val.items.numpy()
            order = np.argsort(keys, kind="stable")
            self.val_lookup = (torch.from_numpy(keys[order]), torch.from_numpy(fold[order]))
            self.fold_weights = torch.tensor(fold_w, dtype=torch.float32)
            out_of_fold = np.clip((val * fold_w[fold]).sum(1), *self.rating_scale)
            in_sample = np.clip(val @ w, *self.rating_scale)
            self.extra_metrics["ensemble/val_rmse_crossfit"] = float(np.sqrt(((out_of_fold - target) ** 2).mean()))
            self.extra_metrics["ensemble/val_rmse_in_sample"] = float(np.sqrt(((in_sample - target) ** 2).mean()))
        elif hp.weights == "equal":
            w = np.full(val.shape[1], 1.0 / val.shape[1])
        else:
            w = np.asarray(hp.weights, dtype=np.float64)
        self.register_buffer("weights", torch.tensor(w, dtype=torch.float32))
        for i, name in enumerate(hp.members):
            self.extra_metrics[f"member/{name}/weight"] = float(w[i])
            if not dm.train_on_val:  # a refit's members trained on these ratings: no held-out score
                self.extra_metrics[f"member/{name}/val_rmse"] = float(np.sqrt(((val[:, i] - target) ** 2).mean()))

    def refit_overrides(self) -> dict:
        """The refit keeps this fit's weights and each member's validated epochs (nothing re-chosen)."""
        return {"weights": self.weights.tolist(), "member_epochs": [m.stage1_epochs for m in self.members]}

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        """With ``weights=val``: each validation rating is blended with the weights of the folds it was not in."""
        if self.val_lookup is None:
            return super().validation_step(batch, batch_idx)
        users, items = batch[0].cpu(), batch[1].cpu()
        keys, folds = self.val_lookup
        query = users * self.item_seen.numel() + items
        at = torch.searchsorted(keys, query).clamp(max=len(keys) - 1)
        if not torch.equal(keys[at], query):
            raise ValueError(
                "EnsembleModule: a validation batch holds (user, item) pairs its weights were not cross-fitted "
                "on; validate on the data module the ensemble was built with."
            )
        w = self.fold_weights[folds[at]].to(self.weights.device)  # (batch, members)

        def blend(u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
            return (self.frozen(u, i, self.member_predictions) * w).sum(1)

        self.val_metrics.update(self.predict_clipped(batch[0], batch[1], blend), batch[2])

    def fit_step(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> None:
        """Nothing to fit per epoch: members and weights were fitted in :meth:`build`."""

    @torch.no_grad()
    def member_predictions(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(b, n_members) clipped predictions of every member."""
        return torch.stack([m.predict_clipped(users, items) for m in self.members], 1)

    @torch.no_grad()
    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.frozen(users, items, self.member_predictions) @ self.weights


def crossfit_folds(users: np.ndarray, items: np.ndarray, n_items: int, folds: int, seed: int) -> np.ndarray:
    """(n,) fold id in [0, folds) per rating; ratings of the same (user, item) pair share a fold. Seeded."""
    _, pair = np.unique(users.astype(np.int64) * n_items + items, return_inverse=True)
    rank = np.random.default_rng(seed).permutation(pair.max() + 1)
    return rank[pair] % folds


__all__ = ["EnsembleModule", "crossfit_folds"]
