"""Adam on torch's fused path."""

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


__all__ = ["adam"]
