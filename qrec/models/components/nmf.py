"""Non-negative matrix factorisation that fits observed cells only (weighted Lee-Seung updates)."""

from __future__ import annotations

import torch

EPS = 1e-9


def masked_nmf_step(
    ratings: torch.Tensor, mask: torch.Tensor, w: torch.Tensor, h: torch.Tensor, reg: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One multiplicative update of W then H for min Σ_observed (R − WH)² + reg(‖W‖² + ‖H‖²).

    scikit-learn's NMF has no mask and treats missing cells as zero ratings, so this is written
    by hand. Unobserved cells are replaced by 0 with ``torch.where`` before anything else, so their
    stored value (even NaN) cannot influence the fit.

    Args:
        ratings: (n_users, n_items) dense; only cells where ``mask`` is True are read.
        mask: (n_users, n_items) bool; w: (n_users, k) ≥ 0; h: (k, n_items) ≥ 0.
    """
    observed = torch.where(mask, ratings, ratings.new_zeros(()))
    weight = mask.to(ratings.dtype)
    w = w * (observed @ h.T) / ((weight * (w @ h)) @ h.T + reg * w + EPS)
    h = h * (w.T @ observed) / (w.T @ (weight * (w @ h)) + reg * h + EPS)
    return w, h
