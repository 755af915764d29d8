"""``LoopTimer``: seconds spent in a trainer's training batches, and its optimizer steps (steps per second).

Validation run inside ``fit`` is excluded (it is timed by the enclosing span), so ``<prefix>_steps /
<prefix>_train_s`` is the training loop's own rate, comparable to the progress bar's it/s.
"""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import Callback

from qrec import timing


class LoopTimer(Callback):
    """Records ``<prefix>_train_s`` and ``<prefix>_steps`` into :mod:`qrec.timing`'s record.

    Args:
        prefix: name of the loop in the record (``stage1``, ``stage2``, ...).
    """

    def __init__(self, prefix: str):
        self.prefix, self._start, self._steps = prefix, None, 0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._steps = trainer.global_step

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def _stop(self) -> None:
        if self._start is not None:
            timing.add(f"{self.prefix}_train_s", time.perf_counter() - self._start)
            self._start = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop()
        timing.add(f"{self.prefix}_steps", trainer.global_step - self._steps)
