"""Item-KNN content-based filtering (the CAQUBO / QuantumCLEF base model) as a LightningModule.

Nothing is learned: ``W`` (cosine with shrink, ``k`` neighbours per item, see
:mod:`qrec.selection.itemknn`) follows from the item features, and ``score(u, j) = Σ_{i ∈ train(u)} W_ij``.
One "training" step computes ``W`` (``limit_train_batches=1``, ``max_epochs=1`` in its config).
``W`` is a cache, not state: a checkpoint holds the feature mask, and ``W`` is rebuilt on demand.
"""

from __future__ import annotations

import numpy as np
import torch

from qrec.data.implicit import ImplicitDataModule
from qrec.models.ranking import FeatureRankingModule
from qrec.selection.itemknn import itemknn_weights


class ItemKNNCBFModule(FeatureRankingModule):
    """Item-KNN CBF.

    Args:
        k: neighbours kept per item (100 in the paper). shrink: cosine shrink term (5).
    """

    def __init__(self, k: int = 100, shrink: float = 5.0):
        super().__init__()
        if k < 1 or shrink < 0:
            raise ValueError(f"k={k} must be ≥ 1 and shrink={shrink} ≥ 0.")
        self.k, self.shrink = k, shrink
        self.automatic_optimization = False
        self._cache: dict[bytes, torch.Tensor] = {}
        self.save_hyperparameters()

    def build(self, dm: ImplicitDataModule) -> None:
        self.train_csr = dm.train

    def weights(self, keep: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        """(items, items) W for a feature mask (cached for the mask in use)."""
        keep_np = (self.feature_keep if keep is None else torch.as_tensor(keep)).cpu().numpy().astype(bool)
        key = keep_np.tobytes()
        if key not in self._cache:
            features = self.features.cpu().double().numpy() * keep_np[None, :]
            self._cache = {key: torch.from_numpy(itemknn_weights(features, self.k, self.shrink))}
        return self._cache[key]

    def training_step(self, batch, batch_idx: int) -> None:
        self.weights()  # the whole fit
        # Count the fit as an optimizer step: at global_step 0 ModelCheckpoint never saves (Lightning #17167),
        # and `train.py` would test without a best checkpoint (as ClosedFormModule does for rating models).
        self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.increment_completed()

    def configure_optimizers(self) -> None:
        return None

    def score(self, users, items=None, keep=None):
        W = self.weights(keep)
        if items is not None:
            W = W[:, items.cpu()]
        rows = self.train_csr[users.cpu().numpy()]
        scores = torch.from_numpy(np.asarray(rows.astype(np.float64) @ W.numpy()))
        return scores.to(self.device)

    def one_feature_scores(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """QUBO-Boosting's weak models, exactly: this Item-KNN (same k and shrink) refitted on each single
        feature, scored on the (user, item) samples."""
        F = self.dm.features.matrix.toarray().astype(np.float64)
        out = np.empty((len(users), F.shape[1]))
        for i in range(F.shape[1]):
            scores = self.train_csr @ itemknn_weights(F[:, i : i + 1], self.k, self.shrink)  # (users, items)
            out[:, i] = np.asarray(scores)[users, items]
        return out

    def counterfactual(self, split: str = "val", top_l: int = 40):
        """The exact incremental Item-KNN evaluator (:class:`qrec.selection.ItemKNNCounterfactual`)."""
        from qrec.selection import ItemKNNCounterfactual

        dm = self.dm
        features = dm.features.matrix.toarray()
        return ItemKNNCounterfactual(
            features,
            dm.exclude(split),
            dm.relevant(split),
            self.k,
            self.shrink,
            cutoff=self.cutoff,
            top_l=top_l,
        )
