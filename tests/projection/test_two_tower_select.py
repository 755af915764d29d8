"""bench/two_tower_select.py picks each head's budget on validation, never on test."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "two_tower_select.py"


def result_file(
    path: Path, epochs: int, rows: list[tuple[str, int, float, float]], fraction: float = 1.0, overrides=()
) -> Path:
    """A bench/diagnostics.py-shaped result: rows of (head, head_params, val_mean, test_mean)."""
    experiment = [
        {"train_fraction": fraction, "head": head, "head_params": params, "linear_head_params_same_out": 1040,
         "val_mean": val, "mean": test, "std": 0.0, "overrides": list(overrides)}
        for head, params, val, test in rows
    ]  # fmt: skip
    path.write_text(json.dumps({"experiment": experiment, "experiment_config": {"epochs": epochs, "patience": 10}}))
    return path


def select(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess:
    out = tmp_path / "select.json"
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, files), "--out", str(out)], capture_output=True, text=True
    )


def test_each_head_is_taken_at_its_best_validation_budget(tmp_path):
    short = result_file(tmp_path / "a.json", 20, [("linear", 1040, 0.19, 0.25), ("qi", 30, 0.20, 0.26)])
    long = result_file(
        tmp_path / "b.json", 60, [("linear", 1040, 0.21, 0.27), ("qi", 30, 0.19, 0.30), ("qi_2layers", 60, 0.205, 0.26)]
    )
    proc = select(tmp_path, short, long)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "select.json").read_text())
    chosen = result["chosen"]
    # qi at 60 epochs / 1 layer has the best test score but not the best validation score.
    assert (chosen["linear"]["epochs"], chosen["qi"]["head"], chosen["qi"]["epochs"]) == (60, "qi_2layers", 60)
    assert abs(result["qi_vs_linear"] - (0.26 / 0.27 - 1)) < 1e-9
    assert abs(result["param_ratio"] - 1040 / 60) < 1e-9


def test_a_rerun_counts_once_and_other_overrides_are_other_configurations(tmp_path):
    base = result_file(tmp_path / "a.json", 60, [("linear", 1040, 0.21, 0.27), ("qi", 30, 0.19, 0.25)])
    again = result_file(tmp_path / "b.json", 60, [("linear", 1040, 0.21, 0.27)])
    lower_lr = result_file(tmp_path / "c.json", 60, [("qi", 30, 0.20, 0.26)], overrides=["model.lr=0.01"])
    assert select(tmp_path, base, again, lower_lr).returncode == 0
    result = json.loads((tmp_path / "select.json").read_text())
    assert len(result["configurations"]) == 3
    assert result["chosen"]["qi"]["overrides"] == ["model.lr=0.01"]


def test_small_data_rows_are_ignored_and_missing_validation_is_refused(tmp_path):
    small = result_file(tmp_path / "small.json", 20, [("linear", 1040, 0.3, 0.3), ("qi", 30, 0.3, 0.3)], fraction=0.1)
    proc = select(tmp_path, small)
    assert proc.returncode != 0 and "need results for both heads" in proc.stderr

    old = tmp_path / "old.json"
    old.write_text(json.dumps({
        "experiment": [{"train_fraction": 1.0, "head": "linear", "mean": 0.2}],
        "experiment_config": {"epochs": 20, "patience": 3},
    }))  # fmt: skip
    proc = select(tmp_path, old)
    assert proc.returncode != 0 and "old.json: no validation scores" in proc.stderr
