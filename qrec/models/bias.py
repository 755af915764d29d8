"""Global mean + regularised user and item biases: the honest floor every model must beat."""

from __future__ import annotations

import torch

from qrec.data.datamodule import RatingsDataModule
from qrec.models.base import ClosedFormModule
from qrec.models.components.biases import bias_sweep


class BiasModule(ClosedFormModule):
    """r̂ = μ + b_u + b_i, fitted by alternating closed-form sweeps (one sweep per epoch).

    Args:
        reg_user, reg_item: ridge penalties (≥ 0) pulling rarely-rated users/items towards 0.
    """

    def __init__(self, reg_user: float = 2.0, reg_item: float = 2.0):
        super().__init__()
        for key, value in (("reg_user", reg_user), ("reg_item", reg_item)):
            if value < 0:
                raise ValueError(f"model.{key}={value} must be ≥ 0.")
        self.save_hyperparameters()

    def build(self, dm: RatingsDataModule) -> None:
        self.register_buffer("user_bias", torch.zeros(dm.n_users))
        self.register_buffer("item_bias", torch.zeros(dm.n_items))
        self.global_mean = dm.global_mean

    def fit_step(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> None:
        mu = self.global_mean
        self.item_bias = bias_sweep(users, items, ratings - mu - self.user_bias[users], len(self.item_bias),
                                    self.hparams.reg_item, by_user=False)  # fmt: skip
        self.user_bias = bias_sweep(users, items, ratings - mu - self.item_bias[items], len(self.user_bias),
                                    self.hparams.reg_user, by_user=True)  # fmt: skip

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.mu + self.user_bias[users] + self.item_bias[items]
