"""MLP-DP: item features fused with the item embedding through an MLP, dot product with the user."""

from __future__ import annotations

import torch
from torch import nn

from qrec.data.implicit import ImplicitDataModule
from qrec.models.ranking import BPRModule, mlp


class MLPDPModule(BPRModule):
    """MLP-DP: item vector = MLP([item embedding ; item features]); score = user embedding · item vector.

    Args:
        dim: embedding size. hidden: hidden width of the item MLP. lr, weight_decay: Adam.
    """

    def __init__(self, dim: int = 64, hidden: int = 128, lr: float = 1e-3, weight_decay: float = 1e-6):
        super().__init__(lr, weight_decay)
        if dim < 1 or hidden < 1:
            raise ValueError(f"dim={dim} and hidden={hidden} must be ≥ 1.")
        self.dim, self.hidden = dim, hidden
        self.save_hyperparameters()

    def build(self, dm: ImplicitDataModule) -> None:
        self.user_emb = nn.Embedding(dm.n_users, self.dim)
        self.item_emb = nn.Embedding(dm.n_items, self.dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        self.item_mlp = mlp([self.dim + self.features.shape[1], self.hidden, self.dim])

    def item_vectors(self, items: torch.Tensor | None, keep: torch.Tensor | None) -> torch.Tensor:
        emb = self.item_emb.weight if items is None else self.item_emb(items)
        return self.item_mlp(torch.cat([emb, self.masked_features(items, keep)], dim=1))

    def pair_scores(self, users, items, keep=None):
        return (self.user_emb(users) * self.item_vectors(items, keep)).sum(1)

    def score(self, users, items=None, keep=None):
        return self.user_emb(users) @ self.item_vectors(items, keep).T
