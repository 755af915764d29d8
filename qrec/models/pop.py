"""Reference rankers every ranking table needs: popularity and a random ranking.

- :class:`PopularityModule` (``model=pop``): an item's score is its number of training interactions
  (the BPR training pairs, so ``data.train_fraction`` applies to it as to the learned models); every
  user gets the same ranking, minus the items they are excluded from.
- :class:`RandomRankModule` (``model=random_rank``): every score ties, so the tie-aware metrics of
  :mod:`qrec.metrics.ranking` give the *exact expected value of a uniformly random ranking*
  (e.g. E[Recall@k] = k / (number of candidate items)), with no sampling noise and no seed.

Nothing is learned: one "training" step (``limit_train_batches=1``, ``max_epochs=1`` in their configs)
counts the interactions. Evaluation is full ranking with :func:`qrec.metrics.ranking_metrics` on any
:class:`qrec.data.implicit.ImplicitDataModule` (with or without item features).
"""

from __future__ import annotations

import numpy as np
import torch

from qrec.data.implicit import ImplicitDataModule, implicit_datamodule
from qrec.metrics import ranking_metrics
from qrec.models.contract import RankingModule


class ReferenceRanker(RankingModule):
    """Shared machinery: ``score_all(users)`` -> (users, items) scores, full-ranking val/test metrics.

    Args:
        k: ranking cut-off of the reported metrics (``val/ndcg_{k}``, ``recall``, ``hr``).
    """

    def __init__(self, k: int = 10) -> None:
        super().__init__()
        if int(k) != k or k < 1:
            raise ValueError(f"model.k={k} must be a positive integer.")
        self.k = int(k)
        self.automatic_optimization = False
        self._users: list[np.ndarray] = []
        self._built = False

    def setup(self, stage: str) -> None:
        self.attach(implicit_datamodule(self.trainer, type(self).__name__, "ml100k_implicit or ml100k_kg150"))

    def attach(self, dm: ImplicitDataModule) -> None:
        """Build the scores' buffers from ``dm``'s training split (once; also usable without a Trainer)."""
        if self._built:
            return
        dm.setup()
        self.n_users, self.n_items = dm.n_users, dm.n_items
        counts = np.bincount(dm.train_pairs[1], minlength=dm.n_items).astype(np.float32)
        self.register_buffer("item_counts", torch.from_numpy(counts))
        self._built = True

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """(len(users), n_items) scores, higher ranks first."""
        raise NotImplementedError

    # --- "training": the buffers are the whole fit --------------------------------------------
    def training_step(self, batch, batch_idx: int) -> None:
        # Count the step as an optimizer step: at global_step 0 ModelCheckpoint never saves (Lightning #17167),
        # and `train.py` would test without a best checkpoint (as ClosedFormModule does for rating models).
        self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.increment_completed()

    def configure_optimizers(self) -> None:
        return None

    # --- evaluation ---------------------------------------------------------------------------
    def evaluate(self, dm: ImplicitDataModule, split: str, users: np.ndarray | None = None) -> dict[str, float]:
        """``{split}/ndcg_k``, ``recall_k``, ``hr_k`` over ``users`` (default: every user with a positive)."""
        _, values = self._per_user(dm, split, users)
        return _means(split, values)

    def _per_user(
        self, dm: ImplicitDataModule, split: str, users: np.ndarray | None, batch_users: int = 1024
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(users with a positive in ``split``, each once; their per-user metrics), scored ``batch_users`` at a
        time so memory stays O(batch · items) whatever the number of users."""
        relevant, exclude = dm.relevant(split), dm.exclude(split)
        positive = np.diff(relevant.indptr) > 0
        users = np.flatnonzero(positive) if users is None else np.unique(users)
        users = users[positive[users]]
        if len(users) == 0:
            raise ValueError(f"No user has a relevant item in the {split} split: the evaluation split is empty.")
        parts = []
        for start in range(0, len(users), batch_users):
            batch = users[start : start + batch_users]
            scores = self.score_all(torch.as_tensor(batch)).double().cpu().numpy()
            parts.append(ranking_metrics(scores, relevant[batch], exclude[batch], k=self.k, per_user=True)["per_user"])
        return users, {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def _end(self, split: str) -> None:
        users = np.concatenate(self._users) if self._users else np.zeros(0, dtype=np.int64)
        self._users = []
        if len(users):
            users, values = self._per_user(self.trainer.datamodule, split, users)
            self.log_dict(_means(split, values), prog_bar=split == "val")
            if split == "test":
                self.test_per_user = {"users": users, **values}

    def validation_step(self, users: torch.Tensor, batch_idx: int) -> None:
        self._users.append(users.cpu().numpy())

    def on_validation_epoch_end(self) -> None:
        self._end("val")

    def test_step(self, users: torch.Tensor, batch_idx: int) -> None:
        self._users.append(users.cpu().numpy())

    def on_test_epoch_end(self) -> None:
        self._end("test")


class PopularityModule(ReferenceRanker):
    """Popularity: score = number of training interactions of the item (see the module docstring)."""

    def __init__(self, k: int = 10) -> None:
        super().__init__(k)
        self.save_hyperparameters()

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return self.item_counts.expand(len(users), -1)


class RandomRankModule(ReferenceRanker):
    """Every score ties: the metrics are the exact expectation of a uniformly random ranking."""

    def __init__(self, k: int = 10) -> None:
        super().__init__(k)
        self.save_hyperparameters()

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(users), self.n_items, device=self.item_counts.device)


def _means(split: str, per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """``{split}/{metric}``: the mean over users of each per-user metric."""
    return {f"{split}/{name}": float(v.mean()) for name, v in per_user.items()}
