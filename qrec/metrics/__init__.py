"""Metrics: tie-aware ranking metrics (numpy only) and rating metrics (torchmetrics).

``import qrec.metrics`` and ``qrec.metrics.ranking`` import no torch: :class:`RatingMetrics` (in
:mod:`qrec.metrics.rating`) is loaded on first access, so numpy-only code such as :mod:`qrec.selection`
can use the ranking metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qrec.metrics.ranking import ranking_metrics

if TYPE_CHECKING:
    from qrec.metrics.rating import RatingMetrics

__all__ = ["RatingMetrics", "ranking_metrics"]


def __getattr__(name: str):
    if name == "RatingMetrics":  # lazy: torch is heavy and not needed for ranking metrics
        from qrec.metrics.rating import RatingMetrics

        return RatingMetrics
    raise AttributeError(f"module 'qrec.metrics' has no attribute {name!r}")
