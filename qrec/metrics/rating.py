"""The one place rating metrics are computed (RMSE and MAE from torchmetrics), exact under DDP."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.functional import mean_absolute_error, mean_squared_error

from qrec.distributed import gather_rows


class RatingMetrics(nn.Module):
    """Accumulates clipped predictions against true stars for one split.

    Each prediction carries its row index in the split, so that under DDP (each rank evaluates a share
    of the batches, the last share padded with repeats) ``compute()`` gathers every row exactly once,
    in the split's order, and the metrics equal a single-process run's (see :mod:`qrec.distributed`).

    ``compute()`` returns ``{prefix}/rmse``, ``/mae``, ``/pred_min``, ``/pred_max``, ``/pred_std``.
    """

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix
        self.reset()

    def update(self, preds: torch.Tensor, target: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Args: preds, target: (batch,) on the 1-5 scale; rows: (batch,) int64 row indices in the split
        (default: consecutive, for callers outside a Trainer)."""
        if not torch.isfinite(preds).all():
            bad = int((~torch.isfinite(preds)).sum())
            raise FloatingPointError(
                f"{bad} of {len(preds)} {self.prefix} predictions are NaN/inf: the model diverged. "
                "Lower the learning rate or raise the regularisation."
            )
        if rows is None:
            rows = torch.arange(self._seen, self._seen + len(preds), device=preds.device)
        self._seen += len(preds)
        self._rows.append(rows.to(preds.device, torch.int64))
        self._preds.append(preds.detach().float())
        self._target.append(target.float().to(preds.device))

    def compute(self) -> dict[str, torch.Tensor]:
        """The metrics over every evaluated row once (a collective call under DDP: every rank calls it)."""
        if not self._preds:
            raise RuntimeError(f"no {self.prefix} predictions were accumulated.")
        _, preds, target = gather_rows(torch.cat(self._rows), torch.cat(self._preds), torch.cat(self._target))
        self._gathered = preds
        p = self.prefix
        return {f"{p}/rmse": mean_squared_error(preds, target, squared=False),
                f"{p}/mae": mean_absolute_error(preds, target),
                f"{p}/pred_min": preds.min(), f"{p}/pred_max": preds.max(), f"{p}/pred_std": preds.std()}  # fmt: skip

    def predictions(self) -> torch.Tensor:
        """(n,) every row's prediction in the split's order (call after ``compute``), for histograms."""
        if self._gathered is None:
            self.compute()
        return self._gathered

    def reset(self) -> None:
        self._rows: list[torch.Tensor] = []
        self._preds: list[torch.Tensor] = []
        self._target: list[torch.Tensor] = []
        self._gathered: torch.Tensor | None = None
        self._seen = 0
