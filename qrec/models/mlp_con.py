"""MLP-CON: [user embedding ; item embedding ; item features] concatenated into an MLP (BPR)."""

from __future__ import annotations

import torch
from torch import nn

from qrec.data.implicit import ImplicitDataModule
from qrec.models.contract import require_positive
from qrec.models.ranking import BPRModule, mlp


class MLPCONModule(BPRModule):
    """score(u, i) = MLP([p_u ; q_i ; f_i]).

    The first layer is applied to the three parts separately (``W [p; q; f] = W_p p + W_q q + W_f f``,
    exactly the same function) so all-pairs scoring costs one (users × items × hidden) ReLU instead of
    building every concatenated row.

    Args:
        dim: embedding size. hidden: widths of the hidden layers (first one is the fused layer).
        lr, weight_decay: Adam. chunk: users scored at once in all-pairs mode (memory bound).
    """

    def __init__(
        self,
        dim: int = 64,
        hidden: tuple[int, ...] = (128, 64),
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        chunk: int = 64,
    ):
        super().__init__(lr, weight_decay)
        require_positive(chunk=chunk)
        hidden = tuple(hidden)
        if dim < 1 or not hidden or min(hidden) < 1:
            raise ValueError(f"dim={dim} and hidden={hidden} must be positive.")
        self.dim, self.hidden, self.chunk = dim, hidden, chunk
        self.save_hyperparameters()

    def build(self, dm: ImplicitDataModule) -> None:
        n_feat = self.features.shape[1]
        self.user_emb = nn.Embedding(dm.n_users, self.dim)
        self.item_emb = nn.Embedding(dm.n_items, self.dim)
        nn.init.normal_(self.user_emb.weight, std=0.1)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        h0 = self.hidden[0]
        self.user_in = nn.Linear(self.dim, h0)  # carries the first layer's bias
        self.item_in = nn.Linear(self.dim + n_feat, h0, bias=False)
        self.head = mlp([*self.hidden, 1])

    def _item_part(self, items, keep):
        emb = self.item_emb.weight if items is None else self.item_emb(items)
        return self.item_in(torch.cat([emb, self.masked_features(items, keep)], dim=1))

    def pair_scores(self, users, items, keep=None):
        hidden = torch.relu(self.user_in(self.user_emb(users)) + self._item_part(items, keep))
        return self.head(hidden).squeeze(-1)

    def score(self, users, items=None, keep=None):
        hu = self.user_in(self.user_emb(users))  # (U, h)
        hi = self._item_part(items, keep)  # (I, h)
        out = []
        for start in range(0, len(hu), self.chunk):
            hidden = torch.relu(hu[start : start + self.chunk, None, :] + hi[None, :, :])
            out.append(self.head(hidden).squeeze(-1))
        return torch.cat(out)
