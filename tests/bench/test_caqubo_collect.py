"""bench/caqubo.py --collect chooses solver × K (and the method) on validation and reports test."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "caqubo.py"


def selection(path: Path, method: str, seed: int, cells: list[tuple[str, int | None, float, float, int]]) -> None:
    """A selection.json with sweep cells (solver, k, val nDCG@10, test nDCG@10, kept)."""
    sweep = [
        {"method": method, "solver": s, "k": k, "n_selected": kept, "val_ndcg_10_selected": val,
         "test_ndcg_10_selected": test, "val_ndcg_10_all": 0.10, "test_ndcg_10_all": 0.10}
        for s, k, val, test, kept in cells
    ]  # fmt: skip
    path.mkdir(parents=True)
    (path / "selection.json").write_text(
        json.dumps({"model": "ItemKNNCBFModule", "data": "genres", "seed": seed, "sweep": sweep})
    )


def collect(tmp_path: Path, *roots: Path) -> tuple[str, dict]:
    out = tmp_path / "table.txt"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--collect", *map(str, roots), "--grid", "--out", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(out.with_suffix(".json").read_text())


def test_choice_follows_validation_not_test(tmp_path):
    """caqubo sa/12 is best on validation but worst on test; tabu/15 is best on test. miqubo wins validation
    overall while caqubo's tabu/15 has the best test score of all; an empty selection has the best validation
    score and must never be chosen. The choices must follow validation."""
    for seed in (0, 1):
        selection(tmp_path / "a" / str(seed), "caqubo", seed, [
            ("sa", 12, 0.20 + seed * 0.01, 0.05, 12), ("tabu", 15, 0.15, 0.30, 15), ("sa", None, 0.9, 0.9, 0),
        ])  # fmt: skip
        selection(tmp_path / "b" / str(seed), "miqubo", seed, [("sa", 12, 0.25, 0.08, 12), ("sa", 15, 0.18, 0.2, 15)])
    text, result = collect(tmp_path, tmp_path / "a", tmp_path / "b")
    rows = {row["method"] + ("*" if row["overall_choice"] else ""): row for row in result["rows"]}
    assert (rows["caqubo"]["solver"], rows["caqubo"]["k"]) == ("sa", 12)
    assert abs(rows["caqubo"]["test_ndcg_10_mean"] - 0.05) < 1e-12
    assert (rows["miqubo"]["solver"], rows["miqubo"]["k"]) == ("sa", 12)
    assert rows["miqubo*"]["method"] == "miqubo" and abs(rows["miqubo*"]["test_ndcg_10_mean"] - 0.08) < 1e-12
    assert rows["caqubo"]["seeds"] == [0, 1]
    assert "test, for reference" in text.lower() or "TEST nDCG@10, for reference" in text
    assert "kept no feature: degenerate" in text


def test_old_files_without_validation_metrics_are_refused(tmp_path):
    path = tmp_path / "run"
    path.mkdir()
    sweep = [{"method": "caqubo", "solver": "sa", "k": 3, "n_selected": 3, "test_ndcg_10_selected": 0.1,
              "test_ndcg_10_all": 0.1}]  # fmt: skip
    (path / "selection.json").write_text(json.dumps({"model": "M", "data": "genres", "sweep": sweep}))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--collect", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode != 0 and "val_ndcg_10_selected" in proc.stderr


def test_stability_figure_is_redrawn_from_per_sample_energies(tmp_path):
    runs = [{"n": n, "k": k, "reads": r, "best": -1.0, "energies": [-1.0] * (r - 1) + [-0.9]}
            for n in (4, 6) for k in (None, 3) for r in (2, 5)]  # fmt: skip
    (tmp_path / "s.json").write_text(json.dumps({"q": "run/caqubo_q.npy", "runs": runs}))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--plot", str(tmp_path / "s.json")], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "s.png").stat().st_size > 0
    for run in runs:
        del run["energies"]
    (tmp_path / "old.json").write_text(json.dumps({"q": "x", "runs": runs}))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--plot", str(tmp_path / "old.json")], capture_output=True,
                          text=True)  # fmt: skip
    assert proc.returncode != 0 and "per-sample energies" in proc.stderr
