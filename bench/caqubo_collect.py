"""The CAQUBO Table 1 from run directories, every choice made on validation.

    python bench/caqubo.py --collect multirun/2026-11-30/12-00-00 [more dirs ...] [--out table.txt] [--grid]

Per base model and dataset, each method's solver × K is chosen by the mean over seeds of its *validation*
nDCG@10 with the selected features; the row reports the *test* nDCG@10 of that choice (mean ± std over seeds).
The method chosen overall (the best validation score among all methods) is marked. Test scores of the other
cells are never looked at to make a choice; ``--grid`` prints the whole solver × K grid afterwards, headed
"test, for reference".

Cells whose runs kept no feature are "degenerate": a content model then scores every item alike, so the ranking
is a tie and says nothing about the selection. They are flagged in the grid and never chosen.
"vs all" is the mean over a cell's runs of (selected / all features of the same run − 1). When cells of one model and
dataset do not hold the same seeds, the table says so (their means are then over different seeds).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Cell:
    """One (model, data, method, solver, K) cell: per-seed validation and test nDCG@10."""

    seeds: list[int] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    val_all: list[float] = field(default_factory=list)
    test_all: list[float] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)

    @property
    def degenerate(self) -> int:
        """Runs in this cell that kept no feature."""
        return sum(k == 0 for k in self.kept)


def read_cells(roots: list[Path]) -> tuple[dict[tuple, Cell], dict[tuple, list[float]]]:
    """Every sweep entry of every ``selection.json`` under ``roots``, grouped into cells.

    Returns:
        cells keyed by (model, data, method, solver, k) with k = "all" for the unconstrained optimum, and
        the counterfactual analysis time (s) per (model, data).
    """
    cells: dict[tuple, Cell] = defaultdict(Cell)
    timing: dict[tuple, list[float]] = defaultdict(list)
    paths = sorted({p for root in roots for p in Path(root).rglob("selection.json")})
    if not paths:
        raise SystemExit(f"No selection.json under {', '.join(map(str, roots))}.")
    for path in paths:
        result = json.loads(path.read_text())
        key = (result["model"], result["data"])
        seed = int(result.get("seed", 0))
        if result.get("counterfactual_s"):
            timing[key].append(result["counterfactual_s"])
        for run in result["sweep"]:
            if "val_ndcg_10_selected" not in run:
                raise SystemExit(
                    f"{path}: a sweep entry has no val_ndcg_10_selected, so the choice cannot be made on validation. "
                    "Re-run it with the current callbacks=caqubo (it records validation and test metrics)."
                )
            k = "all" if run["k"] is None else run["k"]
            cell = cells[(*key, run["method"], run["solver"], k)]
            if seed in cell.seeds:
                raise SystemExit(
                    f"{path}: seed {seed} of {key + (run['method'], run['solver'], k)} appears twice under "
                    f"{', '.join(map(str, roots))}; collect each multirun once."
                )
            cell.seeds.append(seed)
            cell.val.append(run["val_ndcg_10_selected"])
            cell.test.append(run["test_ndcg_10_selected"])
            cell.val_all.append(run["val_ndcg_10_all"])
            cell.test_all.append(run["test_ndcg_10_all"])
            cell.kept.append(int(run["n_selected"]))
    return cells, timing


def choose(cells: dict[tuple, Cell]) -> dict[tuple, dict]:
    """Per (model, data, method): the solver × K with the best mean validation nDCG@10.

    Returns:
        {(model, data, method): {"solver", "k", "cell"}}; the key (model, data, "*") holds the method chosen
        overall. Degenerate cells (a run kept no feature) are skipped.
    """
    best: dict[tuple, dict] = {}
    for (model, data, method, solver, k), cell in cells.items():
        if cell.degenerate:
            continue
        score = float(np.mean(cell.val))
        for group in ((model, data, method), (model, data, "*")):
            # Equal validation scores (e.g. every solver finds the same optimum): the first cell in file and sweep
            # order is kept, so the choice never depends on test.
            if group not in best or score > best[group]["val"]:
                best[group] = {"method": method, "solver": solver, "k": k, "val": score, "cell": cell}
    return best


def _fmt(values: list[float]) -> str:
    return f"{np.mean(values):.4f}±{np.std(values):.4f}"


def table(cells: dict[tuple, Cell], timing: dict[tuple, list[float]], grid: bool = False) -> str:
    """The printed table (validation-chosen rows, then optionally the full test grid)."""
    chosen = choose(cells)
    lines = [
        "CAQUBO Table 1: per method, solver × K chosen by mean validation nDCG@10 over seeds; test nDCG@10 of "
        "that choice (mean ± std over seeds). '*' = the method chosen on validation.",
        f"{'model':<18} {'data':<7} {'method':<14} {'solver':<9} {'K':>4} {'val nDCG@10':>15} "
        f"{'test nDCG@10':>15} {'test all feats':>15} {'vs all':>7} seeds",
    ]
    for model, data in sorted({key[:2] for key in cells}, key=str):
        overall = chosen.get((model, data, "*"))
        seed_sets = {tuple(sorted(c.seeds)) for key, c in cells.items() if key[:2] == (model, data)}
        if len(seed_sets) > 1:
            lines.append(f"WARNING {model} {data}: cells hold different seeds {sorted(seed_sets)}.")
        any_cell = next(c for key, c in cells.items() if key[:2] == (model, data))
        lines.append(
            f"{model:<18} {data:<7} {'all features':<14} {'-':<9} {'-':>4} {_fmt(any_cell.val_all):>15} "
            f"{_fmt(any_cell.test_all):>15} {_fmt(any_cell.test_all):>15} {'':>7} {len(any_cell.seeds)}"
        )
        for method in sorted({key[2] for key in cells if key[:2] == (model, data)}):
            pick = chosen.get((model, data, method))
            if pick is None:
                lines.append(f"{model:<18} {data:<7} {method:<14} every cell kept no feature in some run: no choice")
                continue
            cell = pick["cell"]
            mark = "*" if overall and overall["method"] == method else " "
            gain = 100 * np.mean(np.asarray(cell.test) / np.asarray(cell.test_all) - 1)
            lines.append(
                f"{model:<18} {data:<7} {method + mark:<14} {pick['solver']:<9} {pick['k']!s:>4} {_fmt(cell.val):>15} "
                f"{_fmt(cell.test):>15} {_fmt(cell.test_all):>15} {gain:>+6.1f}% {len(cell.seeds)}"
            )
    if grid:
        lines += ["", "Full grid: TEST nDCG@10, for reference only (no choice is made on these numbers).",
                  f"{'model':<18} {'data':<7} {'method':<14} {'solver':<9} {'K':>4} {'kept':>5} {'val nDCG@10':>15} "
                  f"{'test nDCG@10':>15} {'vs all':>7} seeds"]  # fmt: skip
        for key in sorted(cells, key=str):
            cell = cells[key]
            note = f"  {cell.degenerate} run(s) kept no feature: degenerate" if cell.degenerate else ""
            gain = 100 * np.mean(np.asarray(cell.test) / np.asarray(cell.test_all) - 1)
            lines.append(
                f"{key[0]:<18} {key[1]:<7} {key[2]:<14} {key[3]:<9} {key[4]!s:>4} {np.mean(cell.kept):>5.0f} "
                f"{_fmt(cell.val):>15} {_fmt(cell.test):>15} {gain:>+6.1f}% {len(cell.seeds)}{note}"
            )
    for key, vals in sorted(timing.items(), key=str):
        lines.append(f"counterfactual: {key[0]} {key[1]} {np.mean(vals):.0f} s mean over {len(vals)} runs")
    return "\n".join(lines)


def as_json(cells: dict[tuple, Cell]) -> dict:
    """The validation-chosen rows in machine-readable form."""
    rows = []
    for (model, data, method), pick in sorted(choose(cells).items(), key=str):
        cell = pick["cell"]
        rows.append({
            "model": model, "data": data, "method": method if method != "*" else pick["method"],
            "overall_choice": method == "*", "solver": pick["solver"], "k": pick["k"], "seeds": cell.seeds,
            "val_ndcg_10_mean": float(np.mean(cell.val)), "test_ndcg_10_mean": float(np.mean(cell.test)),
            "test_ndcg_10_std": float(np.std(cell.test)), "test_ndcg_10_all_mean": float(np.mean(cell.test_all)),
        })  # fmt: skip
    return {"chosen_on": "mean validation nDCG@10 over seeds", "rows": rows}


def collect(roots: list[Path], out: Path | None = None, grid: bool = False) -> str:
    """Print (and with ``out`` write ``out`` and ``out.json``) the validation-chosen table."""
    cells, timing = read_cells(roots)
    text = table(cells, timing, grid)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps(as_json(cells), indent=2))
        print(f"-> {out}")
    return text
