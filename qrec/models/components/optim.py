"""Adam on torch's fused path, and with lazy (touched-rows-only) updates of sparse embedding gradients."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def adam(params: Iterable[torch.Tensor] | Iterable[dict], **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam(params, fused=True, **kwargs)``: one fused kernel per step instead of torch's
    default on CPU, a Python loop over parameters (a stage-2 step of the hybrid spent more time in that loop
    than in its LSTM), or the multi-tensor path (~10 small kernels per step).

    Checked on the main job (seed 0): the loop, the multi-tensor path and the fused kernel give the same
    stage-1 and stage-2 validation curves, epochs and test RMSE (docs/speed.md). An earlier trial of the
    fused kernel, while the head still ran torch's oneDNN LSTM kernel, had diverged (val RMSE 0.948 instead
    of 0.924); with the written-out single-step head it matches.

    Args:
        params: parameters or parameter groups (dicts with ``params``).
        kwargs: Adam's arguments (lr, weight_decay, ...).
    """
    return torch.optim.Adam(params, fused=True, **kwargs)



class AdamLazyRows(torch.optim.Optimizer):
    """Adam on dense gradients (:func:`adam`) and lazy Adam on sparse embedding gradients, as one optimizer.

    Dense Adam moves every row of an embedding table at every step (its moments decay everywhere), so a
    step costs O(users + items) however small the batch, and an epoch grows faster than the ratings. With
    ``nn.Embedding(sparse=True)`` the gradient names the rows a batch touched, and torch's ``SparseAdam``
    updates only those rows (their moments included): a step costs O(batch). SparseAdam has no weight
    decay, so embeddings are not decayed. One object because Lightning's automatic optimization takes a
    single optimizer; the two inner optimizers share this one's parameter groups and state, so
    ``state_dict``/``load_state_dict`` (checkpoints, resume) cover both.

    Args:
        dense: parameter groups (dicts with ``params``, ``lr``, ``weight_decay``) with dense gradients.
        sparse: parameters whose gradients are sparse (``nn.Embedding(sparse=True)`` weights).
        lr: SparseAdam's learning rate.
    """

    def __init__(self, dense: list[dict], sparse: list[torch.Tensor], lr: float):
        self.dense, self.sparse = adam(dense), torch.optim.SparseAdam(sparse, lr=lr)
        super().__init__([*self.dense.param_groups, *self.sparse.param_groups], {})
        self._share()

    def _share(self) -> None:
        n = len(self.dense.param_groups)
        self.dense.param_groups, self.sparse.param_groups = self.param_groups[:n], self.param_groups[n:]
        self.dense.state = self.sparse.state = self.state

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)  # replaces the groups and the state: point the inner ones at them
        self._share()

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch.optim.Optimizer's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.dense.step()
        self.sparse.step()
        return loss


__all__ = ["AdamLazyRows", "adam"]
