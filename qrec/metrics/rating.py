"""The one place rating metrics are computed (RMSE and MAE from torchmetrics)."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import CatMetric, MeanAbsoluteError, MeanSquaredError


class RatingMetrics(nn.Module):
    """Accumulates clipped predictions against true stars for one split.

    ``compute()`` returns ``{prefix}/rmse``, ``/mae``, ``/pred_min``, ``/pred_max``, ``/pred_std``.
    """

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix
        self.rmse = MeanSquaredError(squared=False)
        self.mae = MeanAbsoluteError()
        self.preds = CatMetric()  # kept whole: the spread of predictions is a headline number

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Args: preds, target: (batch,) on the 1-5 scale."""
        if not torch.isfinite(preds).all():
            bad = int((~torch.isfinite(preds)).sum())
            raise FloatingPointError(
                f"{bad} of {len(preds)} {self.prefix} predictions are NaN/inf: the model diverged. "
                "Lower the learning rate or raise the regularisation."
            )
        preds, target = preds.detach().float(), target.float()
        self.rmse.update(preds, target)
        self.mae.update(preds, target)
        self.preds.update(preds)

    def compute(self) -> dict[str, torch.Tensor]:
        preds = self.preds.compute()
        p = self.prefix
        return {f"{p}/rmse": self.rmse.compute(), f"{p}/mae": self.mae.compute(),
                f"{p}/pred_min": preds.min(), f"{p}/pred_max": preds.max(), f"{p}/pred_std": preds.std()}

    def predictions(self) -> torch.Tensor:
        """All accumulated predictions, for histograms."""
        return self.preds.compute()

    def reset(self) -> None:
        for metric in (self.rmse, self.mae, self.preds):
            metric.reset()
