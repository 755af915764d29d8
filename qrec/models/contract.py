"""What ``qrec.pipeline.run`` and the callbacks may call on any model: one base class, every hook declared.

There are two tasks, each with its own contract built on this one:

- rating (:class:`qrec.models.base.RatingModule`): ``build(dm)`` + ``predict(users, items)`` on a
  :class:`qrec.data.RatingsDataModule`; judged by ``val/rmse`` (min);
- ranking (:class:`RankingModule`: ``score_all(users)``; :class:`qrec.models.ranking.FeatureRankingModule`
  for feature-aware rankers, :class:`qrec.models.two_tower.TwoTowerModule`): full-ranking ``val/ndcg_10``
  (max) on a :class:`qrec.data.implicit.ImplicitDataModule`.

The optional hooks below have defaults that mean "nothing to add", so callers use them directly
instead of probing with ``getattr``/``hasattr``; a model overrides only what it provides. Constructors
check their arguments with :func:`require_positive` & co., so a bad value fails before any data loads with
a message naming the key (``model.lr=-1 must be > 0.``).
"""

from __future__ import annotations

from typing import ClassVar

import lightning as L
import numpy as np
import torch


class RecommenderModule(L.LightningModule):
    """Base of every model ``python train.py`` runs.

    Attributes:
        task: ``"rating"`` or ``"ranking"`` (set by the task base classes).
        extra_metrics: numbers the model adds to ``metrics.json`` after testing (e.g. a hybrid's
            ``stage1/...``, an ensemble's member weights, CAQUBO's ``caqubo/...``). Default: none.
        test_predictions: (n_test,) float tensor of clipped test predictions in the test split's order,
            set by rating models after testing (``test_predictions.npy`` for ``python -m qrec.report``);
            None for models that do not predict one value per test row (rankers).
        test_per_user: set by ranking models after testing: ``users`` (codes) and one array per metric
            (``ndcg_10``, ``recall_10``, ``hr_10``), each user once (``test_per_user.npz``, the unit of the
            report's user-level bootstrap of ΔnDCG); None for rating models.
    """

    task: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__()
        self.extra_metrics: dict[str, float | bool] = {}
        self.test_predictions: torch.Tensor | None = None
        self.test_per_user: dict[str, np.ndarray] | None = None

    def attach(self, dm: L.LightningDataModule) -> None:
        """Create the data-shaped parameters and buffers from ``dm``'s training split, without a Trainer.

        ``setup`` calls it with the trainer's data module; tests and ``load_state_dict`` users call it
        directly, so a fresh module plus ``attach(dm)`` accepts a fitted module's ``state_dict``.
        """
        raise NotImplementedError

    def circuit_drawing(self) -> str | None:
        """A text drawing of the model's quantum circuit (logged to W&B), or None when it has none."""
        return None

    def diagnostic_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor | None:
        """The training loss of ``batch`` without logging (the DissipationProbe differentiates it twice).

        Default None: the probe falls back to ``training_step``'s scalar loss.
        """
        return None


def require_positive(**values: float | None) -> None:
    """Raise ``ValueError("model.<key>=<value> must be > 0.")`` for the first value ≤ 0 (None is allowed)."""
    for key, value in values.items():
        if value is not None and not value > 0:
            raise ValueError(f"model.{key}={value!r} must be > 0.")


def require_non_negative(**values: float) -> None:
    """Raise ``ValueError("model.<key>=<value> must be ≥ 0.")`` for the first negative value."""
    for key, value in values.items():
        if not value >= 0:
            raise ValueError(f"model.{key}={value!r} must be ≥ 0.")


def require_fraction(**values: float) -> None:
    """Raise ``ValueError`` for the first value outside [0, 1) (dropout rates, noise probabilities)."""
    for key, value in values.items():
        if not 0 <= value < 1:
            raise ValueError(f"model.{key}={value!r} must be in [0, 1).")


class RankingModule(RecommenderModule):
    """Base of every ranking model: it scores every item for a batch of users.

    Subclasses implement :meth:`score_all` and :meth:`attach` and are evaluated by full ranking of the
    items a user has not interacted with (``val/ndcg_10``, ``val/recall_10``, ``val/hr_10``).
    """

    task = "ranking"

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """(len(users), n_items) scores, higher ranks first; finite for every user code in the table,
        including users without training interactions."""
        raise NotImplementedError


__all__ = ["RankingModule", "RecommenderModule", "require_fraction", "require_non_negative", "require_positive"]
