"""Test helper imported by a `train.py` subprocess (PYTHONPATH=tests/safety): hang at a chosen epoch."""

import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class HangAtEpoch(Callback):
    """At the end of training epoch ``epoch`` (before that epoch is checkpointed: Lightning runs
    ModelCheckpoint after the other callbacks) write ``marker`` and sleep until the test kills us."""

    def __init__(self, epoch: int, marker: str):
        self.epoch, self.marker = epoch, marker

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            Path(self.marker).write_text(str(self.epoch))
            time.sleep(600)
