"""Each query's previous N training ratings by the same user, strictly earlier in time (no leakage)."""

from __future__ import annotations

import torch


class UserHistory:
    """Looks up windows of a user's past training ratings.

    Only the training split is indexed, and only ratings with a timestamp strictly before the query's
    are returned, so a window can never contain a validation/test rating, the target itself, or
    anything from the future.

    Args:
        users, items, ratings, timestamps: (m,) the training split.
        n_users: number of user codes.
    """

    def __init__(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor, timestamps: torch.Tensor,
                 n_users: int):  # fmt: skip
        # One sortable key per rating: user-major, then time; searchsorted then finds "before t" in O(log m).
        self.span = int(timestamps.max()) + 2 if len(timestamps) else 2
        keys = users * self.span + timestamps
        order = torch.argsort(keys, stable=True)
        self.keys, self.items, self.ratings = keys[order], items[order], ratings[order]
        counts = torch.bincount(users, minlength=n_users)
        self.user_start = torch.cumsum(counts, 0) - counts

    def window(self, users: torch.Tensor, timestamps: torch.Tensor, length: int) -> tuple[torch.Tensor, ...]:
        """The ``length`` most recent earlier ratings of each query, oldest first, left-padded.

        Args:
            users, timestamps: (b,) queries.

        Returns:
            items (b, length) int64 (0 where padded), ratings (b, length) float, valid (b, length) bool.
        """
        end = torch.searchsorted(self.keys, users * self.span + timestamps.clamp(max=self.span - 1), right=False)
        position = end.unsqueeze(1) - length + torch.arange(length, device=users.device)  # (b, length)
        valid = position >= self.user_start[users].unsqueeze(1)
        position = torch.where(valid, position, 0)
        items = torch.where(valid, self.items[position], 0)
        ratings = torch.where(valid, self.ratings[position], 0.0)
        return items, ratings, valid
