"""The recurrent corrector head of QuantumErrorLSTM: a sequence of [value, user, item] steps -> error."""

from __future__ import annotations

import torch
from torch import nn

CELLS = ("lstm", "gru", "transformer")


class SequenceHead(nn.Module):
    """Reads steps [value, user embedding, item embedding] and predicts the base model's error.

    With one step (the seed architecture) the value is the quantum prediction r_q; with history the
    earlier steps carry the user's previous training ratings, oldest first.

    Args:
        n_users, n_items: embedding table sizes; emb_dim: 32 in the seed; hidden: 64 in the seed.
        cell: ``lstm`` (seed), ``gru`` or ``transformer`` (one encoder layer, 4 heads).
    """

    def __init__(self, n_users: int, n_items: int, emb_dim: int = 32, hidden: int = 64, dropout: float = 0.1,
                 cell: str = "lstm"):  # fmt: skip
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"model.cell={cell!r} is unknown; choose one of {', '.join(CELLS)}.")
        self.user_emb, self.item_emb = nn.Embedding(n_users, emb_dim), nn.Embedding(n_items, emb_dim)
        width = 1 + 2 * emb_dim  # 65 in the seed
        self.kind = cell
        if cell == "transformer":
            self.proj = nn.Linear(width, hidden)
            layer = nn.TransformerEncoderLayer(hidden, nhead=4, dim_feedforward=2 * hidden, dropout=dropout,
                                               batch_first=True)  # fmt: skip
            self.cell = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        else:
            self.cell = (nn.LSTM if cell == "lstm" else nn.GRU)(width, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(
        self, values: torch.Tensor, users: torch.Tensor, items: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Args: values (b, L) scaled to [0, 1]; users (b,); items (b, L); valid (b, L) bool, or None when
        every step is valid (the single-step seed head: no mask to apply).

        Returns:
            (b,) predicted error in stars.
        """
        steps = values.shape[1]
        x = torch.cat([values.unsqueeze(2), self.user_emb(users).unsqueeze(1).expand(-1, steps, -1),
                       self.item_emb(items)], dim=2)  # fmt: skip
        if valid is not None:
            x = x * valid.unsqueeze(2)
        if self.kind == "transformer":
            h = self.cell(self.proj(x), src_key_padding_mask=None if valid is None else ~valid)[:, -1]
        else:
            h = self.cell(x)[0][:, -1]
        return self.out(self.dropout(h)).squeeze(1)
