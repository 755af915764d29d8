"""Explicit ALS-WR with user/item biases, as closed-form half-steps in a LightningModule."""

from __future__ import annotations

import torch

from qrec.data.datamodule import RatingsDataModule
from qrec.models.base import ClosedFormModule
from qrec.models.components.als import RowLayout


class ALSModule(ClosedFormModule):
    """r̂ = μ + b_u + b_i + p_u·q_i; each epoch solves all users, then all items, exactly.

    Factors and biases are buffers: they follow the device and land in checkpoints, and there is
    no optimizer or loss. The user half-step regresses r − μ − b_i on [q_i, 1] (unknowns p_u, b_u);
    the item half-step is symmetric.

    Args:
        rank: number of latent factors (> 0).
        reg: λ for the factors, multiplied by each user's/item's rating count (ALS-WR).
        reg_bias: the same for the biases.
        init_std: std of the random item factors the first sweep starts from.
        cg_steps: 0 solves every half-step exactly (Cholesky); k > 0 takes k preconditioned conjugate-gradient
            steps per row from the previous sweep's solution instead (Takács et al. 2011): approximate,
            faster up to 5 M ratings on a 2-core CPU but not at 20 M (docs/speed.md: timings, RMSE).
    """

    def __init__(self, rank: int = 64, reg: float = 0.125, reg_bias: float = 0.05, init_std: float = 0.1,
                 cg_steps: int = 0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"model.rank={rank} must be a positive number of factors.")
        for key, value in (("reg", reg), ("reg_bias", reg_bias), ("init_std", init_std), ("cg_steps", cg_steps)):
            if value < 0:
                raise ValueError(f"model.{key}={value} must be ≥ 0.")
        self.save_hyperparameters()

    def build(self, dm: RatingsDataModule) -> None:
        k = self.hparams.rank
        self.register_buffer("user_factors", torch.zeros(dm.n_users, k))
        self.register_buffer("item_factors", torch.randn(dm.n_items, k) * self.hparams.init_std)
        self.register_buffer("user_bias", self.b_user.clone())
        self.register_buffer("item_bias", self.b_item.clone())
        self.register_buffer("global_mean", torch.tensor(dm.global_mean))
        self._layouts = None  # built from the first training batch (the whole training split)

    def _reg(self) -> torch.Tensor:
        hp = self.hparams
        return torch.tensor([hp.reg] * hp.rank + [hp.reg_bias], device=self.device)

    def fit_step(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> None:
        if self._layouts is None:
            self._layouts = (RowLayout(users, items, len(self.user_factors)),
                             RowLayout(items, users, len(self.item_factors)))  # fmt: skip
        by_user, by_item = self._layouts
        reg = self._reg()
        centred = ratings - self.global_mean
        steps = self.hparams.get("cg_steps", 0)  # checkpoints written before cg_steps existed: exact
        ones = torch.ones(len(self.item_factors), 1, device=self.device)
        init = torch.cat([self.user_factors, self.user_bias[:, None]], 1) if steps else None
        solution = by_user.solve(torch.cat([self.item_factors, ones], 1), centred - self.item_bias[items], reg,
                                 init, steps)  # fmt: skip
        self.user_factors, self.user_bias = solution[:, :-1].contiguous(), solution[:, -1].contiguous()
        ones = torch.ones(len(self.user_factors), 1, device=self.device)
        init = torch.cat([self.item_factors, self.item_bias[:, None]], 1) if steps else None
        solution = by_item.solve(torch.cat([self.user_factors, ones], 1), centred - self.user_bias[users], reg,
                                 init, steps)  # fmt: skip
        self.item_factors, self.item_bias = solution[:, :-1].contiguous(), solution[:, -1].contiguous()

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_factors[users] * self.item_factors[items]).sum(-1)
        return self.global_mean + self.user_bias[users] + self.item_bias[items] + dot
