"""One console set-up for `train.py` and the tests: one logging path, one list of silenced warnings.

Only messages known to be harmless *for qrec* are silenced; each entry says why. The same warning list
feeds pytest (``tests/conftest.py`` adds it to ``filterwarnings``) and ``train.py`` (:func:`setup_console`).
"""

from __future__ import annotations

import logging
import re
import warnings

# (message regex, why it is harmless here). Matched at the start of the warning's message.
HARMLESS_WARNINGS: list[tuple[str, str]] = [
    (r".*does not have many workers",
     "batches are single tensor gathers from in-memory tensors (qrec.data): worker processes only add start-up"),
    (r"Found \d+ module\(s\) in eval mode",
     "a staged hybrid keeps its frozen stage-1 base in eval mode on purpose (dropout/batch-norm off)"),
    (r"Checkpoint directory .* exists and is not empty",
     "a resumed or re-run job reuses its own output directory; ModelCheckpoint keeps only the best file"),
    (r"Using `DistributedSampler` with the dataloaders",
     "qrec's evaluation gathers each row once under DDP (qrec.distributed), so padded repeats never count"),
    (r"The number of training batches \(\d+\) is smaller than the logging interval",
     "closed-form models train on one batch per epoch and small data has few batches; epoch metrics still log"),
    (r".*LeafSpec",
     "a deprecation inside Lightning's own pytree helper (no user code involved)"),
    (r".*returned `None`, this fit will run with no optimizer",
     "closed-form models (ALS, SVD, EASE, NMF, biases, Item-KNN) have no optimizer by design"),
]
# Whole categories: deprecations come from libraries (torch, Lightning, PennyLane), not from qrec's calls.
HARMLESS_CATEGORIES: list[tuple[type[Warning], str]] = [
    (DeprecationWarning, "library-internal deprecations; pinned versions are tested in CI"),
]
# Lightning INFO log lines that advertise products; they carry no information about the run.
HARMLESS_LOG_LINES = (r"💡 Tip: ",)


def warning_filter_lines() -> list[str]:
    """The lists above as pytest ``filterwarnings`` lines."""
    lines = [f"ignore::{cat.__module__ + '.' if cat.__module__ != 'builtins' else ''}{cat.__name__}"
             for cat, _ in HARMLESS_CATEGORIES]  # fmt: skip
    return lines + [f"ignore:{pattern}" for pattern, _ in HARMLESS_WARNINGS]


def silence_warnings() -> None:
    """Apply the lists above to this process (``train.py``; pytest uses :func:`warning_filter_lines`)."""
    for category, _ in HARMLESS_CATEGORIES:
        warnings.filterwarnings("ignore", category=category)
    for pattern, _ in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)


class _DropLines(logging.Filter):
    def __init__(self, patterns: tuple[str, ...]):
        super().__init__()
        self.pattern = re.compile("|".join(patterns))

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.match(record.getMessage())


def setup_console() -> None:
    """Silence the known-harmless warnings and route Lightning's log lines through one handler.

    The ``lightning`` package attaches its own console handler *and* propagates to the root logger, which
    Hydra has already given a console handler, so every Lightning INFO line was printed twice. When the
    root logger has handlers (inside a Hydra job), Lightning's own handler is removed; Hydra's console
    and ``<job>.log`` handlers print each line once.
    """
    silence_warnings()
    root = logging.getLogger()
    drop = _DropLines(HARMLESS_LOG_LINES)
    handlers = list(root.handlers)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        if root.hasHandlers():
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
        handlers += logger.handlers
    # A logger's filters skip records logged by its children, so the handlers filter instead.
    for handler in handlers:
        if not any(isinstance(f, _DropLines) for f in handler.filters):
            handler.addFilter(drop)
