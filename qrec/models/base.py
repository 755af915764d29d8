"""The contract every rating model follows, and the shared evaluation path.

A subclass implements two methods:

- ``build(dm)``: create parameters/buffers whose shapes depend on the data (called once, in
  ``setup``, before a checkpoint is restored, so checkpoints and resume work);
- ``predict(users, items)``: (batch,) predicted stars for known users and items (unclipped).

The base class fits the cold-start baseline (global mean + regularised biases, train split only),
routes unknown users/items to it, clips to the data's rating scale, and computes every reported metric
through :class:`qrec.metrics.RatingMetrics`, plus ``test/infer_s_per_20k``. The optional hooks every model
may override (``extra_metrics``, ``test_predictions``, ``circuit_drawing``, ``diagnostic_loss``) are
declared, with defaults, on :class:`qrec.models.contract.RecommenderModule`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from qrec.data.datamodule import RatingsDataModule
from qrec.metrics import RatingMetrics
from qrec.models.components.biases import fit_biases
from qrec.models.components.frozen import bypassed
from qrec.models.contract import RecommenderModule
from qrec.timing import median_seconds


class RatingModule(RecommenderModule):
    """Base LightningModule for explicit-rating models (see the module docstring)."""

    task = "rating"

    def __init__(self) -> None:
        super().__init__()
        self.val_metrics = RatingMetrics("val")
        self.test_metrics = RatingMetrics("test")
        self._built = False

    # --- contract ---------------------------------------------------------------------------
    def build(self, dm: RatingsDataModule) -> None:
        """Create data-shaped parameters and buffers (train split only)."""

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def refit_overrides(self) -> dict:
        """Constructor arguments for the ``refit_on_val=true`` refit, taken from this validated fit.

        The refit trains on train ∪ validation, so whatever this fit chose on validation besides the
        head's epochs (a stage-1 model's epochs, ensemble weights) must be carried over, never re-chosen.
        """
        return {}

    # --- shared machinery -------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self.attach(self.trainer.datamodule)

    def attach(self, dm: RatingsDataModule) -> None:
        """Fit the baseline and ``build`` on ``dm``'s training split (once; also usable without a Trainer)."""
        if self._built:
            return
        if not isinstance(dm, RatingsDataModule):
            raise TypeError(f"{type(self).__name__} needs a RatingsDataModule, got {type(dm).__name__}.")
        dm.setup()
        train = dm.train
        mu, b_user, b_item = fit_biases(train.users, train.items, train.ratings, dm.n_users, dm.n_items)
        self.register_buffer("mu", torch.tensor(mu))
        self.register_buffer("b_user", b_user)
        self.register_buffer("b_item", b_item)
        self.register_buffer("user_seen", torch.zeros(dm.n_users, dtype=torch.bool).index_fill_(0, train.users, True))
        self.register_buffer("item_seen", torch.zeros(dm.n_items, dtype=torch.bool).index_fill_(0, train.items, True))
        self.rating_scale = dm.rating_scale  # (min, max) of the data: clipping and [0, 1] scaling use it
        self.build(dm)
        self._built = True

    def baseline(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Global mean + biases: the cold-start prediction. ids must be in range."""
        return self.mu + self.b_user[users] + self.b_item[items]

    def predict_clipped(
        self, users: torch.Tensor, items: torch.Tensor, predict: Callable[..., torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Predicted ratings clipped to the data's scale; users/items never seen in training get the biases only.

        Args:
            users, items: (batch,) int64 codes; codes outside the table are allowed (cold start).
            predict: what to call on the (in-range) ids instead of ``self.predict`` — models whose
                prediction needs more than ids (e.g. timestamps) pass a closure and keep this fallback.
        """
        n_users, n_items = len(self.user_seen), len(self.item_seen)
        users, items = users.to(self.user_seen.device), items.to(self.user_seen.device)
        user_ok = (users >= 0) & (users < n_users)
        item_ok = (items >= 0) & (items < n_items)
        users, items = torch.where(user_ok, users, 0), torch.where(item_ok, items, 0)
        user_ok &= self.user_seen[users]
        item_ok &= self.item_seen[items]
        fallback = self.mu + torch.where(user_ok, self.b_user[users], 0) + torch.where(item_ok, self.b_item[items], 0)
        preds = torch.where(user_ok & item_ok, (predict or self.predict)(users, items).to(fallback.dtype), fallback)
        return preds.clamp(*self.rating_scale)

    def log_train_loss(self, loss: torch.Tensor) -> None:
        """Log ``train/loss`` (and show it in the progress bar) on the steps the logger writes only.

        Lightning keeps only the value of the step it writes (every ``trainer.log_every_n_steps``), but
        ``self.log`` costs about as much as a small model's whole training step, so the other steps skip it.
        """
        trainer, every = self.trainer, self.trainer.log_every_n_steps
        if trainer.fast_dev_run or (every > 0 and (self.global_step + 1) % every == 0):
            self.log("train/loss", loss, prog_bar=True)

    def evaluate(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Clipped predictions for an evaluation batch (users, items, ratings, timestamps[, rows])."""
        return self.predict_clipped(batch[0], batch[1])

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.val_metrics.update(self.evaluate(batch), batch[2], batch[4] if len(batch) > 4 else None)

    # Metrics are computed from every rank's gathered rows, so each rank holds the same values;
    # sync_dist averages equal numbers (exact) and keeps Lightning's distributed logging contract.
    def on_validation_epoch_end(self) -> None:
        metrics = self.val_metrics.compute()
        self.log("val/rmse", metrics.pop("val/rmse"), prog_bar=True, sync_dist=True)
        self.log_dict(metrics, sync_dist=True)
        self.val_metrics.reset()

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.test_metrics.update(self.evaluate(batch), batch[2], batch[4] if len(batch) > 4 else None)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute(), sync_dist=True)
        self.test_predictions = self.test_metrics.predictions().cpu()  # every test rating once, in order
        self.test_metrics.reset()
        self.log("test/infer_s_per_20k", self.inference_seconds(), sync_dist=True)

    @torch.no_grad()
    def inference_seconds(self, n: int = 20_000) -> float:
        """Median seconds to predict ``n`` test (user, item) pairs in one call, computing every frozen
        sub-model's predictions as a new query would (no precomputed lookups)."""
        test = self.trainer.datamodule.test
        reps = -(-n // len(test))
        batch = tuple(t.repeat(reps)[:n].to(self.device) for t in test)  # users, items, ratings, timestamps
        with bypassed(self):
            return median_seconds(lambda: self.evaluate(batch))


class ClosedFormModule(RatingModule):
    """A model fitted by closed-form steps: one training batch is the whole training split.

    ``training_step`` calls ``fit_step`` once per epoch (an ALS sweep, a block of multiplicative
    updates, or the whole fit for one-shot models); there is no optimizer and no loss.
    """

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def configure_optimizers(self) -> None:
        return None

    def fit_step(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor) -> None:
        raise NotImplementedError

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        users, items, ratings = batch[:3]
        expected = len(self.trainer.datamodule.train)
        if len(ratings) != expected:
            raise ValueError(
                f"{type(self).__name__} is fitted in closed form and needs the whole training split in "
                f"one batch (got {len(ratings)} of {expected} ratings). Set data.batch_size=null."
            )
        self.fit_step(users, items, ratings)
        # The closed-form step is this model's optimizer step. Count it: Lightning's global_step only
        # advances on optimizer steps, and at 0 ModelCheckpoint never saves (Lightning issue #17167).
        self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress.increment_completed()
