"""Adam on torch's fastest path for the parameters' device."""

from __future__ import annotations

from collections.abc import Iterable

import torch

# torch ships a fused Adam kernel (all parameters in one pass, no per-tensor Python loop) for these devices.
FUSED_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[torch.Tensor] | Iterable[dict], **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam(params, **kwargs)`` with ``fused=True`` where torch has a fused kernel for the
    parameters' device, else the multi-tensor (``foreach``) path; torch's default on CPU is the slower
    single-tensor loop (a stage-2 step of the hybrid spent more time in it than in the LSTM).

    Args:
        params: parameters or parameter groups (dicts with ``params``), all on one device.
        kwargs: Adam's arguments (lr, weight_decay, ...).
    """
    params = list(params)
    first = next((p for group in params for p in (group["params"] if isinstance(group, dict) else [group])), None)
    if first is not None and first.device.type in FUSED_DEVICES:
        return torch.optim.Adam(params, fused=True, **kwargs)
    return torch.optim.Adam(params, foreach=True, **kwargs)


__all__ = ["adam"]
