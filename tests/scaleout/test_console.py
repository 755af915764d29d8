"""A quiet console: each log line once, none of the known-harmless warnings (train.py as a user runs it)."""

from __future__ import annotations

import re
from collections import Counter

from qrec.console import HARMLESS_LOG_LINES, HARMLESS_WARNINGS

HYDRA_PREFIX = re.compile(r"^\[[^\]]*\]\[[^\]]*\]\[[A-Z]+\] - ")


def test_a_run_prints_each_log_line_once_and_no_harmless_warning(tmp_path, train):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints" / "old.ckpt").write_bytes(b"")  # as in a rerun: a silenced warning
    output = train("model=bias", "data=synthetic", "trainer.max_epochs=2", f"hydra.run.dir={tmp_path / 'run'}")
    # Before: Lightning's own handler ("INFO: ...") and Hydra's ("[time][logger][INFO] - ...") both printed.
    lightning_own = [line for line in output.splitlines() if line.startswith("INFO: ")]
    assert not lightning_own, lightning_own
    log_lines = Counter(HYDRA_PREFIX.sub("", line) for line in output.splitlines() if HYDRA_PREFIX.match(line))
    assert log_lines["GPU available: False, used: False"] == 1
    # Validation and test each restore the best checkpoint: those two lines are two events, not duplicates.
    repeated = [line for line, n in log_lines.items() if n > 1 and "checkpoint" not in line]
    assert not repeated, repeated
    for pattern, _ in HARMLESS_WARNINGS:
        assert not re.search(pattern, output), pattern
    for pattern in HARMLESS_LOG_LINES:
        assert not re.search(pattern, output), pattern
