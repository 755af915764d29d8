"""bench/stage2_step.py: a stage-2 step of the hybrid's head split into its parts."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import stage2_step  # noqa: E402
from common import config  # noqa: E402


def test_parts_of_a_step_are_timed_for_the_configured_head():
    cfg = config("model=varnet_lstm", "data.batch_size=8")
    row = stage2_step.profile(30, 20, cfg, steps=3, warmup=1)
    parts = [row[f"{part}_ms"] for part in stage2_step.PARTS]
    assert all(ms > 0 for ms in parts)
    assert row["step_ms"] == pytest.approx(sum(parts))
    assert (row["embedding_rows"], row["batch"]) == (50, 8)


def test_a_run_writes_one_row_per_table_shape(tmp_path, monkeypatch):
    monkeypatch.setattr(stage2_step, "SHAPES", {100: (30, 20), 400: (60, 40)})
    monkeypatch.setattr(sys, "argv", ["stage2_step.py", "--steps", "1", "--out", str(tmp_path / "out.json")])
    stage2_step.main()
    rows = json.loads((tmp_path / "out.json").read_text())["rows"]
    assert [(r["ratings"], r["embedding_rows"]) for r in rows] == [(100, 50), (400, 100)]
