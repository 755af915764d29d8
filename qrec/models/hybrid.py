"""QuantumErrorLSTM (the seed report's hybrid) and its end-to-end and ablation variants.

r̂ = r_q + ê, where r_q is a base model's prediction and ê a recurrent head's estimate of its error.

- staged (``joint: false``, the seed): stage 1 trains the base (VarNet) on the training split, or reuses a
  cached copy trained with the same config, data and seed; stage 2 trains the head on the base's
  training-split residuals (the loss on r_q + ê against r is the loss on ê against r − r_q).
- end-to-end (``joint: true``): base and head start fresh and are trained together on the rating.
- ablations with the same head and budget: ``base: null`` (no quantum input: r_q = the training mean)
  or an ALS base (quantum input replaced by ALS).
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf
from torch.nn import functional as F

from qrec import timing
from qrec.data.datamodule import RatingsDataModule, scale
from qrec.models.base import RatingModule
from qrec.models.components.frozen import FrozenPredictions, split_pairs
from qrec.models.components.history import UserHistory
from qrec.models.components.optim import adam
from qrec.models.components.sequence_head import SequenceHead
from qrec.models.contract import require_fraction, require_non_negative, require_positive
from qrec.models.stage1 import fit_or_load_base

LOSSES = {
    "rmse": lambda pred, target: torch.sqrt(F.mse_loss(pred, target) + 1e-12),
    "mse": F.mse_loss,
    "mae": F.l1_loss,
    "huber": F.huber_loss,
}


class QuantumErrorLSTMModule(RatingModule):
    """A base rating model plus a recurrent error corrector (see the module docstring).

    Args:
        base: config (``_target_`` + arguments) of the base model, or None for the no-base ablation.
        joint: train base and head together on the rating (end-to-end) instead of in two stages.
        base_epochs, base_batch_size: stage-1 training budget (staged mode).
        base_lr: learning rate of the base's parameters (joint mode).
        cell: ``lstm`` (seed) | ``gru`` | ``transformer``.
        loss: ``rmse`` | ``mse`` | ``mae`` | ``huber``.
        history: 0 = one step (the seed's sequence length 1); N > 0 = the user's previous N training
            ratings (strictly earlier timestamps) precede the query step. Needs ``data.with_timestamps``.
        emb_dim, hidden, dropout, lr, weight_decay: the head and its Adam optimiser (seed: 32, 64, 0.1,
            lr 1e-4, no weight decay; our defaults use lr 3e-3 and weight decay 1e-4, chosen on validation).
        seed: seeds stage 1 (part of the cache key).
        cache_dir: where stage-1 models are cached (default ``~/.cache/qrec/stage1``).
    """

    def __init__(
        self, base: DictConfig | dict | None = None, joint: bool = False, base_epochs: int = 10,
        base_batch_size: int | None = 1024, base_lr: float = 0.01, cell: str = "lstm", loss: str = "rmse",
        history: int = 0, emb_dim: int = 32, hidden: int = 64, dropout: float = 0.1, lr: float = 1e-4,
        weight_decay: float = 0.0, seed: int = 0, cache_dir: str | None = None,
    ):  # fmt: skip
        super().__init__()
        require_positive(base_epochs=base_epochs, base_batch_size=base_batch_size, base_lr=base_lr, emb_dim=emb_dim,
                         hidden=hidden, lr=lr)  # fmt: skip
        require_non_negative(weight_decay=weight_decay)
        require_fraction(dropout=dropout)
        if loss not in LOSSES:
            raise ValueError(f"model.loss={loss!r} is unknown; choose one of {', '.join(LOSSES)}.")
        if history < 0:
            raise ValueError(f"model.history={history} must be ≥ 0 (0 = the seed's single step).")
        if joint and base is None:
            raise ValueError("model.joint=true needs a model.base to train end-to-end.")
        if isinstance(base, DictConfig):
            base = OmegaConf.to_container(base, resolve=True)
        self.save_hyperparameters(ignore=["cache_dir"])
        self.cache_dir = cache_dir
        SequenceHead(2, 2, cell=cell)  # validates `cell` now, before any training

    def build(self, dm: RatingsDataModule) -> None:
        hp = self.hparams
        self.base: RatingModule | None = None
        if hp.base is not None and hp.joint:
            from hydra.utils import instantiate

            self.base = instantiate(hp.base)
            self.base.attach(dm)
            if not any(p.requires_grad for p in self.base.parameters()):
                raise ValueError(f"model.joint=true needs a gradient-trained base; {hp.base['_target_']} has none.")
        elif hp.base is not None:
            with timing.span("stage1_s"):
                self.base, cached = fit_or_load_base(hp.base, dm, hp.seed, hp.base_epochs, hp.base_batch_size,
                                                     self.cache_dir)  # fmt: skip
            self.base.requires_grad_(False)
            # The frozen base's predictions never change during stage 2: computed once for every pair of
            # the splits (not per step and per validation epoch); other pairs are computed on demand.
            with timing.span("frozen_s"):
                self.frozen = FrozenPredictions(self.base.predict_clipped, *split_pairs(dm.train, dm.val, dm.test),
                                                dm.n_items)  # fmt: skip
            self.extra_metrics = {"stage1/cached": cached, **self._stage1_metrics(dm)}
        # Stage 1 consumes random numbers only when it trains (not on a cache hit): re-seed so the head's
        # initialisation and the batch order are the same either way.
        L.seed_everything(hp.seed, verbose=False)
        rank_zero_info(f"{'stage 2: ' if hp.base is not None and not hp.joint else ''}{hp.cell.upper()} corrector")
        self.head = SequenceHead(dm.n_users, dm.n_items, hp.emb_dim, hp.hidden, hp.dropout, hp.cell,
                                 single_step=hp.history == 0)  # fmt: skip
        if hp.history:
            if not dm.with_timestamps:
                raise ValueError("model.history > 0 needs data.with_timestamps=true (queries need their time).")
            t = dm.train
            self.user_history = UserHistory(t.users, t.items, t.ratings, t.timestamps, dm.n_users)

    @torch.no_grad()
    def _stage1_metrics(self, dm: RatingsDataModule) -> dict:
        """RMSE and prediction range of the stage-1 model alone (reported beside the hybrid's)."""
        out = {}
        parts = (("test", dm.test),) if dm.train_on_val else (("val", dm.val), ("test", dm.test))  # refit: val is train
        for name, part in parts:
            pred = self.frozen(part.users, part.items, self.base.predict_clipped)
            out[f"stage1/{name}_rmse"] = float(((pred - part.ratings) ** 2).mean().sqrt())
            out[f"stage1/{name}_pred_min"], out[f"stage1/{name}_pred_max"] = float(pred.min()), float(pred.max())
        return out

    def refit_overrides(self) -> dict:
        """A staged hybrid's refit trains stage 1 for the epochs its validated stage 1 kept."""
        if self.base is None or self.hparams.joint:
            return {}
        return {"base_epochs": self.base.stage1_epochs}

    def circuit_drawing(self) -> str | None:
        """The base circuit's drawing, if the base is a circuit (W&B logs it)."""
        return None if self.base is None else self.base.circuit_drawing()

    def base_prediction(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """r_q in stars: the base's prediction, or the training mean when there is no base."""
        if self.base is None:
            return self.mu.expand(len(users))
        if self.hparams.joint:
            return self.base.predict(users, items)
        return self.frozen(users, items, self.base.predict_clipped)

    def forward(self, users: torch.Tensor, items: torch.Tensor, timestamps: torch.Tensor | None) -> torch.Tensor:
        r_q = self.base_prediction(users, items)
        values, item_steps = scale(r_q, self.rating_scale).unsqueeze(1), items.unsqueeze(1)
        valid = None  # one step, always valid: no mask
        if self.hparams.history:
            if timestamps is None:
                raise ValueError("model.history > 0 needs data.with_timestamps=true (queries need their time).")
            past_items, past_ratings, past_valid = self.user_history.window(users, timestamps, self.hparams.history)
            values = torch.cat([scale(past_ratings, self.rating_scale) * past_valid, values], 1)
            item_steps = torch.cat([past_items, item_steps], 1)
            valid = torch.cat([past_valid, torch.ones_like(past_valid[:, :1])], 1)
        return r_q + self.head(values, users, item_steps, valid)

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if self.hparams.history:
            raise ValueError("A history-aware model needs each query's timestamp: use evaluate(batch).")
        return self.forward(users, items, None)

    def evaluate(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if not self.hparams.history:
            return self.predict_clipped(batch[0], batch[1])
        return self.predict_clipped(batch[0], batch[1], lambda users, items: self.forward(users, items, batch[3]))

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        timestamps = batch[3] if len(batch) > 3 else None
        loss = LOSSES[self.hparams.loss](self.forward(batch[0], batch[1], timestamps), batch[2])
        self.log_train_loss(loss)
        return loss

    def on_train_epoch_start(self) -> None:
        if self.base is not None and not self.hparams.joint:
            self.base.eval()  # frozen stage 1: Lightning's model.train() must not switch it back

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        groups = [{"params": self.head.parameters(), "lr": hp.lr, "weight_decay": hp.weight_decay}]
        if self.base is not None and hp.joint:  # circuit angles are periodic: no weight decay on them
            base_params = [p for p in self.base.parameters() if p.requires_grad]
            groups.append({"params": base_params, "lr": hp.base_lr, "weight_decay": 0.0})
        return adam(groups)


__all__ = ["QuantumErrorLSTMModule"]
