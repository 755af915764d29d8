"""Turn a (multi)run directory into results.md and PNG plots: `python -m qrec.report <dir> [--out DIR]`.

Reads every ``metrics.json`` below the directory (one per run), groups runs by model name, and writes:

- ``results.md``: mean ± std over seeds of test RMSE, MAE, inference seconds per 20k predictions,
  prediction range and fit time; and a paired test against ALS (Wilcoxon signed-rank on the per-rating
  squared errors of runs with the same split and seed, pooled over seeds);
- ``rmse_vs_time.png`` (the seed report's Figure 2), ``prediction_histograms.png`` (the narrow-range
  effect), ``learning_curves.png`` (validation RMSE per epoch from the CSV logs).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np


def load_runs(root: Path) -> list[dict]:
    """Every run below ``root``: its metrics plus the directory it came from."""
    runs = []
    for path in sorted(root.rglob("metrics.json")):
        metrics = json.loads(path.read_text())
        metrics["_dir"] = path.parent
        metrics["label"] = metrics.get("label") or metrics.get("model", path.parent.name)
        runs.append(metrics)
    if not runs:
        raise SystemExit(f"No metrics.json below {root}: is it a `python train.py -m ...` output directory?")
    return runs


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def paired_test(runs: list[dict], references: tuple[str, ...] = ("als", "ALSModule")) -> dict:
    """Per model label: (mean squared-error difference vs ALS, Wilcoxon p-value, n ratings)."""
    from scipy.stats import wilcoxon

    errors: dict[str, dict] = defaultdict(dict)
    for run in runs:
        preds, truth = run["_dir"] / "test_predictions.npy", run["_dir"] / "test_ratings.npy"
        if preds.is_file() and truth.is_file():
            errors[run["label"]][(run.get("split"), run.get("seed"))] = (np.load(preds) - np.load(truth)) ** 2
    reference = next((label for label in references if label in errors), None)
    out = {}
    for label, by_key in errors.items():
        keys = [k for k in by_key if k in errors.get(reference, {})]
        if label == reference or not keys:
            continue
        diff = np.concatenate([by_key[k] - errors[reference][k] for k in keys])
        p = float(wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
        out[label] = (float(diff.mean()), p, len(diff))
    return out


def results_table(runs: list[dict]) -> str:
    groups: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        groups[run["label"]].append(run)
    tests = paired_test(runs)
    lines = ["| model | runs | test RMSE | test MAE | infer s / 20k | prediction range | fit s | Δ MSE vs ALS (p) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, group in sorted(groups.items(), key=lambda kv: statistics.fmean(r["test/rmse"] for r in kv[1])):
        col = lambda key, group=group: [r[key] for r in group if key in r]
        low, high = statistics.fmean(col("test/pred_min")), statistics.fmean(col("test/pred_max"))
        test = tests.get(label)
        versus = f"{test[0]:+.4f} (p={test[1]:.2g})" if test else "—"
        lines.append(f"| {label} | {len(group)} | {_mean_std(col('test/rmse'))} | {_mean_std(col('test/mae'))} | "
                     f"{statistics.fmean(col('test/infer_s_per_20k')):.4f} | [{low:.2f}, {high:.2f}] | "
                     f"{statistics.fmean(col('fit_s')):.1f} | {versus} |")  # fmt: skip
    return "\n".join(lines)


def plot_rmse_vs_time(runs: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    groups: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        groups[run["label"]].append(run)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, group in groups.items():
        x = statistics.fmean(r["test/infer_s_per_20k"] for r in group)
        y = statistics.fmean(r["test/rmse"] for r in group)
        ax.scatter(x, y, s=40)
        ax.annotate(label.replace("Module", ""), (x, y), textcoords="offset points", xytext=(5, 3), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("inference time per 20,000 predictions (s, log)")
    ax.set_ylabel("test RMSE")
    ax.set_title("Accuracy vs inference time")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_histograms(runs: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    first = {}
    for run in runs:
        preds = run["_dir"] / "test_predictions.npy"
        if run["label"] not in first and preds.is_file():
            first[run["label"]] = np.load(preds)
    if not first:
        return
    cols = min(4, len(first))
    rows = -(-len(first) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False, sharex=True)
    for ax, (label, preds) in zip(axes.flat, sorted(first.items())):
        ax.hist(preds, bins=np.linspace(1, 5, 41), color="tab:blue")
        ax.set_title(f"{label.replace('Module', '')}\n[{preds.min():.2f}, {preds.max():.2f}]", fontsize=8)
    for ax in axes.flat[len(first):]:
        ax.axis("off")
    fig.supxlabel("predicted stars (test)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_learning_curves(runs: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = set()
    for run in runs:
        logs = sorted(run["_dir"].glob("csv/version_*/metrics.csv"))
        if not logs or run["label"] in drawn:
            continue
        frame = pd.read_csv(logs[-1])
        if "val/rmse" not in frame or "epoch" not in frame:
            continue
        curve = frame.dropna(subset=["val/rmse"]).groupby("epoch")["val/rmse"].last()
        if len(curve) > 1:
            ax.plot(curve.index, curve.values, marker=".", label=run["label"].replace("Module", ""))
            drawn.add(run["label"])
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation RMSE")
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(root: Path, out: Path | None = None) -> Path:
    """Write results.md and the PNGs into ``out`` (default: ``root``); return the results.md path."""
    out = out or root
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs(root)
    splits = sorted({str(r.get("split")) for r in runs})
    seeds = sorted({r.get("seed") for r in runs}, key=str)
    text = [f"# Results: {root.name}", "", f"splits: {', '.join(splits)}; seeds: {', '.join(map(str, seeds))}; "
            "mean ± std over seeds; Δ MSE vs ALS < 0 means lower error than ALS (Wilcoxon signed-rank on "
            "per-rating squared errors, paired by split and seed).", "", results_table(runs), "",
            "![RMSE vs inference time](rmse_vs_time.png)", "", "![Prediction histograms](prediction_histograms.png)",
            "", "![Learning curves](learning_curves.png)", ""]  # fmt: skip
    plot_rmse_vs_time(runs, out / "rmse_vs_time.png")
    plot_histograms(runs, out / "prediction_histograms.png")
    plot_learning_curves(runs, out / "learning_curves.png")
    path = out / "results.md"
    path.write_text("\n".join(text))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a run or multirun output directory")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the root)")
    args = parser.parse_args()
    if not args.root.is_dir():
        raise SystemExit(f"{args.root} is not a directory.")
    print(f"wrote {write_report(args.root, args.out)}")


if __name__ == "__main__":
    main()
