"""NCF (NeuMF: GMF + MLP) with item features through an MLP added to the item embeddings (BPR)."""

from __future__ import annotations

import torch
from torch import nn

from qrec.data.implicit import ImplicitDataModule
from qrec.models.contract import require_positive
from qrec.models.ranking import BPRModule, mlp


class NCFModule(BPRModule):
    """score(u, i) = w_g·(p_u ⊙ q̃_i) + w_m·MLP([p'_u ; q̃'_i]) + b, with q̃ = q + FeatureMLP(f_i).

    Args:
        dim: embedding size of each branch. hidden: MLP-branch widths (the first layer is applied to
            the user and item halves separately, which is the same function and lets all-pairs
            scoring avoid materialising concatenations). feature_hidden: width of the feature tower.
        lr, weight_decay: Adam. chunk: users scored at once in all-pairs mode.
    """

    def __init__(
        self,
        dim: int = 32,
        hidden: tuple[int, ...] = (64, 32),
        feature_hidden: int = 64,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        chunk: int = 64,
    ):
        super().__init__(lr, weight_decay)
        require_positive(chunk=chunk)
        hidden = tuple(hidden)
        if dim < 1 or not hidden or min(hidden) < 1 or feature_hidden < 1:
            raise ValueError(f"dim={dim}, hidden={hidden}, feature_hidden={feature_hidden} must be positive.")
        self.dim, self.hidden, self.feature_hidden, self.chunk = dim, hidden, feature_hidden, chunk
        self.save_hyperparameters()

    def build(self, dm: ImplicitDataModule) -> None:
        n_feat = self.features.shape[1]
        d = self.dim
        self.user_gmf, self.item_gmf = nn.Embedding(dm.n_users, d), nn.Embedding(dm.n_items, d)
        self.user_mlp, self.item_mlp = nn.Embedding(dm.n_users, d), nn.Embedding(dm.n_items, d)
        for emb in (self.user_gmf, self.item_gmf, self.user_mlp, self.item_mlp):
            nn.init.normal_(emb.weight, std=0.1)
        self.feature_tower = mlp([n_feat, self.feature_hidden, 2 * d])  # -> GMF half, MLP half
        h0 = self.hidden[0]
        self.user_in = nn.Linear(d, h0)
        self.item_in = nn.Linear(d, h0, bias=False)
        self.mlp_rest = mlp(list(self.hidden)) if len(self.hidden) > 1 else nn.Identity()
        self.w_gmf = nn.Linear(d, 1, bias=False)
        self.w_mlp = nn.Linear(self.hidden[-1], 1)

    def _items(self, items, keep):
        tower = self.feature_tower(self.masked_features(items, keep))
        gmf = (self.item_gmf.weight if items is None else self.item_gmf(items)) + tower[:, : self.dim]
        mlp_ = (self.item_mlp.weight if items is None else self.item_mlp(items)) + tower[:, self.dim :]
        return gmf, self.item_in(mlp_)

    def _mlp_out(self, hidden: torch.Tensor) -> torch.Tensor:
        out = self.mlp_rest(torch.relu(hidden))
        return torch.relu(out) if len(self.hidden) > 1 else out

    def pair_scores(self, users, items, keep=None):
        gmf, item_h = self._items(items, keep)
        score_g = self.w_gmf(self.user_gmf(users) * gmf).squeeze(-1)
        hidden = self.user_in(self.user_mlp(users)) + item_h
        return score_g + self.w_mlp(self._mlp_out(hidden)).squeeze(-1)

    def score(self, users, items=None, keep=None):
        gmf, item_h = self._items(items, keep)
        # w_g·(p ⊙ q) = (p ⊙ w_g)·q: the GMF branch of all pairs is one matrix product.
        score_g = (self.user_gmf(users) * self.w_gmf.weight[0]) @ gmf.T
        hu = self.user_in(self.user_mlp(users))
        out = []
        for start in range(0, len(hu), self.chunk):
            hidden = hu[start : start + self.chunk, None, :] + item_h[None, :, :]
            out.append(self.w_mlp(self._mlp_out(hidden)).squeeze(-1))
        return score_g + torch.cat(out)
