"""The recurrent corrector head of QuantumErrorLSTM: a sequence of [value, user, item] steps -> error."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

CELLS = ("lstm", "gru", "transformer")


class SequenceHead(nn.Module):
    """Reads steps [value, user embedding, item embedding] and predicts the base model's error.

    With one step (the seed architecture) the value is the quantum prediction r_q; with history the
    earlier steps carry the user's previous training ratings, oldest first.

    Args:
        n_users, n_items: embedding table sizes; emb_dim: 32 in the seed; hidden: 64 in the seed.
        cell: ``lstm`` (seed), ``gru`` or ``transformer`` (one encoder layer, 4 heads).
        single_step: every sequence is one step (the seed head, no history): the LSTM's recurrent weights
            then never act and are frozen, and the step is computed by :meth:`_lstm_step`.
    """

    def __init__(self, n_users: int, n_items: int, emb_dim: int = 32, hidden: int = 64, dropout: float = 0.1,
                 cell: str = "lstm", single_step: bool = False):  # fmt: skip
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
        self.lstm_step = single_step and cell == "lstm"
        if self.lstm_step:  # h0 = 0: W_hh multiplies zeros (frozen, so DDP sees no unused trainable weight)
            self.cell.weight_hh_l0.requires_grad_(False)
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
        if self.lstm_step:
            if steps != 1 or valid is not None:
                raise ValueError(f"this head was built for single steps (single_step=True) but got {steps} steps.")
            h = self._lstm_step(x[:, 0])
        elif self.kind == "transformer":
            h = self.cell(self.proj(x), src_key_padding_mask=None if valid is None else ~valid)[:, -1]
        else:
            h = self.cell(x)[0][:, -1]
        return self.out(self.dropout(h)).squeeze(1)

    def _lstm_step(self, x: torch.Tensor) -> torch.Tensor:
        """``nn.LSTM`` over one step from the zero state, written out with the LSTM's own parameters.

        With h0 = c0 = 0 the recurrent product and the forget gate drop out: gates = W_ih x + b_ih + b_hh,
        c = σ(i)·tanh(g), h = σ(o)·tanh(c) (torch's gate order i, f, g, o). Written by hand because torch's
        fused CPU kernel (oneDNN) costs ~1.7× these few ops for a single step, forward and backward (about
        a tenth of a stage-2 step); equal to ``nn.LSTM`` up to float rounding (tested).
        """
        cell = self.cell
        i, _, g, o = F.linear(x, cell.weight_ih_l0, cell.bias_ih_l0 + cell.bias_hh_l0).chunk(4, 1)
        return torch.sigmoid(o) * torch.tanh(torch.sigmoid(i) * torch.tanh(g))
