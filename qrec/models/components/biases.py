"""Regularised user/item biases in closed form (the baseline every rating model falls back on)."""

from __future__ import annotations

import torch


def bias_sweep(
    users: torch.Tensor, items: torch.Tensor, residual: torch.Tensor, n: int, reg: float, by_user: bool
) -> torch.Tensor:
    """One closed-form half-step: b_x = Σ residual / (reg + n_x) over each user's (or item's) ratings.

    Args:
        users, items: (m,) codes; residual: (m,) rating minus everything but the bias being solved.
        n: number of users (``by_user``) or items.

    Returns:
        (n,) biases; rows without ratings get 0 (the cold-start fallback).
    """
    index = users if by_user else items
    total = residual.new_zeros(n).index_add_(0, index, residual)  # on the data's device
    count = residual.new_zeros(n).index_add_(0, index, torch.ones_like(residual))
    return total / (reg + count)


def fit_biases(
    users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor, n_users: int, n_items: int,
    reg_user: float = 5.0, reg_item: float = 5.0, n_iter: int = 10,
) -> tuple[float, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Global mean plus biases by alternating closed-form sweeps (a ridge regression on one-hots).

    Returns:
        (mu, b_user (n_users,), b_item (n_items,)).
    """
    mu = float(ratings.mean())
    b_user = ratings.new_zeros(n_users)
    b_item = ratings.new_zeros(n_items)
    for _ in range(n_iter):
        b_item = bias_sweep(users, items, ratings - mu - b_user[users], n_items, reg_item, by_user=False)
        b_user = bias_sweep(users, items, ratings - mu - b_item[items], n_users, reg_user, by_user=True)
    return mu, b_user, b_item
