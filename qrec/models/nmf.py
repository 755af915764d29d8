"""Masked NMF: non-negative factors fitted on observed ratings only."""

from __future__ import annotations

import torch

from qrec.data.datamodule import RatingsDataModule
from qrec.models.base import ClosedFormModule
from qrec.models.components.nmf import masked_nmf_step


class NMFModule(ClosedFormModule):
    """r̂ = w_u · h_i with w, h ≥ 0, fitted by masked multiplicative updates.

    The training matrix is held dense (943 × 1,682 cells for MovieLens-100k); each epoch runs
    ``updates_per_epoch`` updates, so validation RMSE and early stopping work per epoch.

    Args:
        rank: number of non-negative factors (> 0).
        reg: L2 penalty on both factor matrices (≥ 0).
        updates_per_epoch: multiplicative updates between validations (> 0).
        seed: seeds the random positive initialisation.
    """

    def __init__(self, rank: int = 100, reg: float = 0.25, updates_per_epoch: int = 2, seed: int = 0):
        super().__init__()
        if rank < 1 or updates_per_epoch < 1:
            raise ValueError(f"model.rank={rank} and model.updates_per_epoch={updates_per_epoch} must be > 0.")
        if reg < 0:
            raise ValueError(f"model.reg={reg} must be ≥ 0.")
        self.save_hyperparameters()

    def build(self, dm: RatingsDataModule) -> None:
        k = self.hparams.rank
        gen = torch.Generator().manual_seed(self.hparams.seed)
        # Start where W·H ≈ the mean rating everywhere, with noise to break symmetry.
        scale = (dm.global_mean / k) ** 0.5
        self.register_buffer("user_factors", scale * (0.5 + torch.rand(dm.n_users, k, generator=gen)))
        self.register_buffer("item_factors", scale * (0.5 + torch.rand(k, dm.n_items, generator=gen)))

    def fit_step(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> None:
        shape = (len(self.user_factors), self.item_factors.shape[1])
        dense = torch.zeros(shape, device=ratings.device).index_put_((users, items), ratings)
        mask = torch.zeros(shape, dtype=torch.bool, device=ratings.device).index_put_(
            (users, items), torch.ones_like(ratings, dtype=torch.bool)
        )
        w, h = self.user_factors, self.item_factors
        for _ in range(self.hparams.updates_per_epoch):
            w, h = masked_nmf_step(dense, mask, w, h, self.hparams.reg)
        self.user_factors, self.item_factors = w, h

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.user_factors[users] * self.item_factors[:, items].T).sum(-1)
