"""Shared machinery of the feature-aware ranking models (CAQUBO).

- :class:`FeatureRankingModule`: contract for every feature-aware ranker — ``score(users, items, keep)``
  returns (users, items) scores with the features ``~keep`` masked (zeroed for every item) *at
  inference, without retraining*; full-ranking evaluation (nDCG@10, Recall@10, HR@10 through
  :func:`qrec.metrics.ranking_metrics`, tie-aware) and the hook :meth:`counterfactual` used by the CAQUBO callback.
- :class:`BPRModule`: BPR training with one uniform negative per positive (1:1), Adam.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from qrec.data.implicit import ImplicitDataModule, implicit_datamodule
from qrec.distributed import gather_rows
from qrec.metrics import ranking_metrics
from qrec.models.contract import RankingModule

METRICS = ("ndcg", "recall", "hr")


class FeatureRankingModule(RankingModule):
    """Base LightningModule for rankers that read item features (see the module docstring).

    Subclasses implement ``build(dm)`` (data-shaped parameters) and ``score(users, items, keep)``.
    ``self.features``: (items, n) float buffer; ``self.feature_keep``: (n,) bool buffer, the mask used
    when ``keep`` is None (set it with :meth:`set_feature_mask`); ``self.initial_keep``: (n,) bool mask
    applied when the module is attached (None: every feature), so "retrain with the selected features"
    trains with the mask from the first step. The hooks shared with every model (``extra_metrics``,
    ...) are declared on :class:`qrec.models.contract.RecommenderModule`.
    """

    cutoff = 10

    def __init__(self) -> None:
        super().__init__()
        self._built = False
        self.initial_keep: np.ndarray | None = None
        self._sums: dict[str, dict[str, list[torch.Tensor]]] = {}

    # --- contract ---------------------------------------------------------------------------
    def build(self, dm: ImplicitDataModule) -> None:
        """Create data-shaped parameters (called once in ``setup``, before checkpoints load)."""

    def score(
        self, users: torch.Tensor, items: torch.Tensor | None = None, keep: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(len(users), len(items) or n_items) scores with features ``~keep`` masked."""
        raise NotImplementedError

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """(len(users), n_items) scores with the current feature mask (the ranking contract)."""
        return self.score(users)

    # --- shared machinery -------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self._built:
            return
        self.attach(implicit_datamodule(self.trainer, type(self).__name__, "ml100k_kg150 or another feature set"))

    def attach(self, dm: ImplicitDataModule) -> None:
        """Register the feature buffers and build (also usable without a Trainer, e.g. in tests)."""
        if dm.features is None:
            raise ValueError(
                f"{type(self).__name__} needs item features, but the data module has none (data.features=null). "
                "Use data=ml100k_kg150, ml100k_kg500 or ml100k_genres."
            )
        features = torch.from_numpy(dm.features.matrix.toarray()).float()
        self.register_buffer("features", features)
        self.register_buffer("feature_keep", torch.ones(features.shape[1], dtype=torch.bool))
        if self.initial_keep is not None:  # "retrain with selected features": mask from the start
            self.set_feature_mask(self.initial_keep)
        self.n_users, self.n_items = dm.n_users, dm.n_items
        self.dm = dm
        self.build(dm)
        self._built = True

    def masked_features(
        self, items: torch.Tensor | None, keep: torch.Tensor | np.ndarray | None
    ) -> torch.Tensor:
        """(items, n) features of ``items`` (all if None) with masked columns zeroed."""
        keep = self.feature_keep if keep is None else torch.as_tensor(keep, device=self.features.device)
        feats = self.features if items is None else self.features[items]
        return feats * keep.to(feats.dtype)

    def set_feature_mask(self, keep: np.ndarray | torch.Tensor) -> None:
        """Use only the features where ``keep`` is True from now on (inference; no retraining)."""
        keep = torch.as_tensor(np.asarray(keep, dtype=bool), device=self.feature_keep.device)
        if keep.shape != self.feature_keep.shape:
            raise ValueError(
                f"keep has shape {tuple(keep.shape)}, expected {tuple(self.feature_keep.shape)}."
            )
        self.feature_keep.copy_(keep)

    @torch.no_grad()
    def evaluate(self, split: str = "test", keep: np.ndarray | None = None, batch_users: int = 256) -> dict:
        """Full-ranking nDCG/Recall/HR@10 on ``split`` with an optional feature mask (no Trainer loop)."""
        dm = self.dm
        relevant, exclude = dm.relevant(split), dm.exclude(split)
        users = np.flatnonzero(np.diff(relevant.indptr) > 0)
        sums = dict.fromkeys(METRICS, 0.0)
        keep_t = None if keep is None else torch.as_tensor(np.asarray(keep, dtype=bool))
        for start in range(0, len(users), batch_users):
            batch = users[start : start + batch_users]
            scores = self.score(torch.as_tensor(batch, device=self.device), None, keep_t)
            res = ranking_metrics(
                scores.double().cpu().numpy(), relevant[batch], exclude[batch], self.cutoff, per_user=True
            )
            for m in METRICS:
                sums[m] += float(res["per_user"][f"{m}_{self.cutoff}"].sum())
        return {f"{split}/{m}_{self.cutoff}": sums[m] / len(users) for m in METRICS}

    def _eval_step(self, users: torch.Tensor, split: str) -> None:
        dm = self.trainer.datamodule
        batch = users.cpu().numpy()
        scores = self.score(users.to(self.device)).double().cpu().numpy()
        res = ranking_metrics(
            scores, dm.relevant(split)[batch], dm.exclude(split)[batch], self.cutoff, per_user=True
        )
        parts = self._sums.setdefault(split, {"users": [], **{m: [] for m in METRICS}})
        parts["users"].append(users.cpu())
        for m in METRICS:
            parts[m].append(torch.as_tensor(res["per_user"][f"{m}_{self.cutoff}"], dtype=torch.float64))

    def _eval_end(self, split: str) -> None:
        parts = self._sums.pop(split, None)
        if not parts or not parts["users"]:
            return
        # Per-user values from every rank, each user once (DDP pads shards with repeated batches).
        users, *values = gather_rows(torch.cat(parts["users"]), *(torch.cat(parts[m]) for m in METRICS))
        for m, per_user in zip(METRICS, values):
            self.log(f"{split}/{m}_{self.cutoff}", float(per_user.mean()), prog_bar=m == "ndcg", sync_dist=True)
        if split == "test":
            per_user = {f"{m}_{self.cutoff}": v.cpu().numpy() for m, v in zip(METRICS, values)}
            self.test_per_user = {"users": users.cpu().numpy(), **per_user}

    @torch.no_grad()
    def validation_step(self, users: torch.Tensor, batch_idx: int) -> None:
        self._eval_step(users, "val")

    def on_validation_epoch_end(self) -> None:
        self._eval_end("val")

    @torch.no_grad()
    def test_step(self, users: torch.Tensor, batch_idx: int) -> None:
        self._eval_step(users, "test")

    def on_test_epoch_end(self) -> None:
        self._eval_end("test")

    # --- CAQUBO hooks -------------------------------------------------------------------------
    def one_feature_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(samples, n) scores of QUBO-Boosting's weak models, one per feature, on (user, item) samples.

        Default (neural models, where refitting once per feature is too costly): ``f_ji ·`` the number of
        the user's training items with feature i, i.e. one-feature Item-KNN without top-k pruning.
        """
        F = self.dm.features.matrix.toarray()
        counts = np.asarray(self.dm.train @ F)  # (users, n)
        return F[items] * counts[users]

    def counterfactual(self, split: str = "val", top_l: int = 40):
        """An evaluator of nDCG@10 under feature masks (``evaluate(masked)``, ``brute_force(keep)``).

        Default: every model here is *item-local* (an item's features only change that item's
        scores), so :class:`qrec.selection.ItemLocalCounterfactual` re-scores only the items a mask
        touches. Call it with the module in float64 (the callback does) so ties are reproducible.
        """
        from qrec.selection import ItemLocalCounterfactual

        dm = self.dm
        relevant = dm.relevant(split)
        users = torch.as_tensor(np.flatnonzero(np.diff(relevant.indptr) > 0), device=self.device)

        @torch.no_grad()
        def score_items(items: np.ndarray, keep: np.ndarray) -> np.ndarray:
            items_t = torch.as_tensor(items, device=self.device)
            keep_t = torch.as_tensor(keep, device=self.device)
            return self.score(users, items_t, keep_t).double().cpu().numpy()

        return ItemLocalCounterfactual(
            score_items, dm.features.matrix, dm.exclude(split), relevant, cutoff=self.cutoff, top_l=top_l
        )


class BPRModule(FeatureRankingModule):
    """BPR training (``−log σ(s(u, i⁺) − s(u, i⁻))``, one uniform negative per positive) with Adam.

    Subclasses implement ``pair_scores(users, items, keep)`` -> (batch,) for aligned pairs as well
    as ``score`` for all pairs.
    """

    def __init__(self, lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        if lr <= 0 or weight_decay < 0:
            raise ValueError(f"lr={lr} must be > 0 and weight_decay={weight_decay} ≥ 0.")
        self.lr, self.weight_decay = lr, weight_decay

    def pair_scores(
        self, users: torch.Tensor, items: torch.Tensor, keep: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        users, pos, neg = batch
        diff = self.pair_scores(users, pos) - self.pair_scores(users, neg)
        loss = -nn.functional.logsigmoid(diff).mean()
        self.log("train/bpr", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


def mlp(sizes: list[int], dropout: float = 0.0) -> nn.Sequential:
    """Linear-ReLU stack; no activation after the last layer."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
