"""EASE (Steck 2019) on bias-centred residuals: a closed-form item-item model for ratings."""

from __future__ import annotations

import torch

from qrec.data.datamodule import RatingsDataModule
from qrec.models.base import ClosedFormModule


def ease_weights(matrix: torch.Tensor, reg: float) -> torch.Tensor:
    """B = argmin ‖X − XB‖² + reg‖B‖² subject to diag(B) = 0, in closed form.

    Args:
        matrix: (n_users, n_items) dense X.

    Returns:
        (n_items, n_items) B = I − P·diag(1/diag(P)) with P = (XᵀX + reg·I)⁻¹, diagonal zeroed.
    """
    gram = matrix.T @ matrix + reg * torch.eye(matrix.shape[1], dtype=matrix.dtype, device=matrix.device)
    inverse = torch.linalg.inv(gram)
    weights = -inverse / torch.diagonal(inverse)
    weights.fill_diagonal_(0.0)
    return weights


class EASEModule(ClosedFormModule):
    """r̂ = μ + b_u + b_i + Σ_j x_uj B_ji, where x holds the user's training residuals (0 if unrated).

    Args:
        reg: L2 penalty λ of EASE (> 0); larger values shrink towards the biases.
    """

    def __init__(self, reg: float = 200.0):
        super().__init__()
        if reg <= 0:
            raise ValueError(f"model.reg={reg} must be > 0 (EASE inverts XᵀX + reg·I).")
        self.save_hyperparameters()

    def build(self, dm: RatingsDataModule) -> None:
        # The full score matrix is small for MovieLens-100k (943 × 1,682) and makes inference a gather.
        self.register_buffer("scores", torch.zeros(dm.n_users, dm.n_items))

    def fit_step(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> None:
        residual = ratings - self.baseline(users, items)
        x = torch.zeros_like(self.scores, dtype=torch.float64).index_put_((users, items), residual.double())
        self.scores = (x @ ease_weights(x, self.hparams.reg)).float()

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.baseline(users, items) + self.scores[users, items]
