"""A frozen model's predictions, computed once for every (user, item) pair of a data module's splits.

Stage 2 of a hybrid (and a stacked ensemble) asks its frozen base model for the same pairs every step and
every epoch; the answers never change, so they are computed once, in evaluation-sized chunks, and looked up
by pair. Pairs outside the table (any other query) are computed on demand, so every prediction stays
exact. :func:`bypassed` turns the tables off, so timings such as ``test/infer_s_per_20k`` measure the
real work of predicting new pairs rather than a lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DIRECT_MAX = 1 << 24  # keys addressed directly: a slot table of at most 64 MB (int32)


class FrozenPredictions(nn.Module):
    """``predict(users, items)`` for a fixed set of pairs, looked up by the key ``user * n_items + item``.

    Hand-written because no library offers a tensor lookup keyed by integer pairs that stays on the
    model's device. When the key range is small (≤ ``DIRECT_MAX`` keys, e.g. MovieLens-100k's 1.6 M pairs)
    a slot table maps each key to its row in one gather; otherwise a sorted key vector and one
    ``searchsorted`` per batch (O(b log n), memory O(n)) do it.

    Args:
        predict: the frozen model's prediction, (b,) users and items -> (b, ...) values.
        users, items: (n,) int64 pairs to precompute (duplicates allowed; every id in range).
        n_items: item codes are in ``0..n_items-1``.
        chunk: pairs per ``predict`` call (bounds memory like an evaluation batch).
    """

    def __init__(self, predict: Predict, users: torch.Tensor, items: torch.Tensor, n_items: int,
                 chunk: int = 20_000):  # fmt: skip
        super().__init__()
        self.n_items, self.enabled = n_items, True
        keys = torch.unique(users.long() * n_items + items.long())  # sorted
        with torch.no_grad():
            parts = [predict(part // n_items, part % n_items) for part in keys.split(chunk)]
        # Not persistent: rebuilt by ``build`` from the data, so checkpoints stay small and unchanged.
        self.register_buffer("keys", keys, persistent=False)
        self.register_buffer("values", torch.cat(parts) if parts else torch.empty(0), persistent=False)
        n_keys = int(keys[-1]) + 1 if len(keys) else 0
        slots = None
        if 0 < n_keys <= DIRECT_MAX:  # slots[key] = the key's row in values, -1 where absent
            slots = torch.full((n_keys,), -1, dtype=torch.int32, device=keys.device)
            slots[keys] = torch.arange(len(keys), dtype=torch.int32, device=keys.device)
        self.register_buffer("slots", slots, persistent=False)

    def lookup(self, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Stored values for (b,) pairs and a (b,) bool mask of the pairs the table holds."""
        if not self.enabled or len(self.keys) == 0:
            return self.values.new_zeros((len(users), *self.values.shape[1:])), torch.zeros_like(users, dtype=bool)
        query = users * self.n_items + items
        valid = (items >= 0) & (items < self.n_items)
        if self.slots is not None:
            valid &= (query >= 0) & (query < len(self.slots))
            position = self.slots[torch.where(valid, query, 0)].long()
            found = valid & (position >= 0)
            return self.values[position.clamp_(min=0)], found
        position = torch.searchsorted(self.keys, query).clamp_(max=len(self.keys) - 1)
        found = (self.keys[position] == query) & valid
        return self.values[position], found

    def forward(self, users: torch.Tensor, items: torch.Tensor, predict: Predict) -> torch.Tensor:
        """(b, ...) predictions: stored ones where the table holds the pair, ``predict`` for the rest."""
        values, found = self.lookup(users, items)
        if bool(found.all()):
            return values
        missing = ~found
        with torch.no_grad():
            values[missing] = predict(users[missing], items[missing]).to(values.dtype)
        return values


@contextmanager
def bypassed(module: nn.Module) -> Iterator[None]:
    """Within the block, every :class:`FrozenPredictions` inside ``module`` computes instead of looking up."""
    tables = [m for m in module.modules() if isinstance(m, FrozenPredictions)]
    states = [table.enabled for table in tables]
    for table in tables:
        table.enabled = False
    try:
        yield
    finally:
        for table, state in zip(tables, states):
            table.enabled = state


def split_pairs(*parts) -> tuple[torch.Tensor, torch.Tensor]:
    """(users, items) of the given splits (:class:`qrec.data.datamodule.Ratings`) concatenated."""
    return torch.cat([p.users for p in parts]), torch.cat([p.items for p in parts])


__all__ = ["FrozenPredictions", "bypassed", "split_pairs"]
