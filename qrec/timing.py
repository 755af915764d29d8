"""The one timing helper: median wall-clock seconds of a callable, and named stage spans of a run.

``span(name)`` adds the seconds its block took to a per-process record that ``train.py`` writes into
``metrics.json`` (``timing/*``), so a run's breakdown (data, stage 1, stage 2, evaluation) is measured
where the work happens rather than guessed from outside (``bench/main_job.py`` reads it).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

_RECORD: dict[str, float] = {}


def median_seconds(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs."""
    times = []
    for i in range(warmup + repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


@contextmanager
def span(name: str) -> Iterator[None]:
    """Add the wall-clock seconds of the block to ``name`` (spans of the same name accumulate)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - start)


def add(name: str, value: float) -> None:
    """Add ``value`` (seconds or a count) to ``name`` in this process's record."""
    _RECORD[name] = _RECORD.get(name, 0.0) + value


def take() -> dict[str, float]:
    """The record so far (``timing/<name>`` keys), emptied for the next run."""
    record = {f"timing/{name}": value for name, value in _RECORD.items()}
    _RECORD.clear()
    return record
