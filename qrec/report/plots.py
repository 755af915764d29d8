"""The report's figures, every seed drawn and labelled (matplotlib object API: no pyplot global state).

Each function takes ``label -> runs`` (one group of comparable runs, see :mod:`qrec.report.runs`) and
returns a :class:`matplotlib.figure.Figure`, or None when no run has what the figure needs; the caller
saves it in the format it wants (png, pdf, svg).
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import numpy as np

from qrec.report.runs import unit_key

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Which models run a circuit. By `model=` label first, because one class can be either: a
# QuantumErrorLSTMModule is a hybrid on a VarNet (varnet_lstm) and classical on ALS or on nothing
# (als_lstm, lstm_only, the hybrids' ablations), and an ensemble is a hybrid only if a member is.
# - quantum: a circuit makes the prediction;
# - hybrid: a circuit's output feeds, or is stacked with, a classical model;
# - classical: no circuit anywhere (the quantum-inspired two-tower head is classical arithmetic).
FAMILY_BY_LABEL = {
    **dict.fromkeys(("swap_test", "varnet", "varnet_seed", "varnet_solo"), "quantum"),
    **dict.fromkeys(("varnet_lstm", "varnet_lstm_e2e", "ensemble"), "hybrid"),
    **dict.fromkeys(
        ("bias", "svd", "nmf", "als", "ease", "lstm_only", "als_lstm", "ensemble_lstm_only", "itemknn_cbf",
         "mlp_con", "mlp_dp", "ncf", "two_tower", "pop", "random_rank"),
        "classical",
    ),  # fmt: skip
}
# Classes whose family does not depend on their configuration (the fallback for custom labels).
FAMILY_BY_CLASS = {
    **dict.fromkeys(("SwapTestModule", "VarNetModule"), "quantum"),
    **dict.fromkeys(
        ("BiasModule", "SVDModule", "NMFModule", "ALSModule", "EASEModule", "ItemKNNCBFModule", "MLPCONModule",
         "MLPDPModule", "NCFModule", "TwoTowerModule"),
        "classical",
    ),  # fmt: skip
}
STYLE = {  # family -> (marker, colour)
    "classical": ("o", "tab:blue"),
    "hybrid": ("s", "tab:orange"),
    "quantum": ("^", "tab:purple"),
    "unknown": ("x", "tab:gray"),
}


def family(run: dict) -> str:
    """``quantum``, ``hybrid``, ``classical`` or ``unknown`` (a label and class neither table knows)."""
    return FAMILY_BY_LABEL.get(run["label"]) or FAMILY_BY_CLASS.get(run.get("model", ""), "unknown")


def _short(label: str) -> str:
    return label.replace("Module", "")


def _unit_labels(runs: list[dict]) -> list[str]:
    """How to tell the runs of one model apart in a legend: whatever varies (usually ``seed 0``)."""
    units = [unit_key(run) for run in runs]
    names = ("split", "fold", "seed")
    varying = [i for i in range(3) if len({u[i] for u in units}) > 1] or [2]
    return [" ".join(f"{names[i]} {u[i]}" for i in varying) for u in units]


def rmse_vs_time(runs_by_label: dict[str, list[dict]]) -> Figure | None:
    """Test RMSE against inference time per model: mean over seeds, error bars = std over seeds."""
    from matplotlib.figure import Figure

    key_x, key_y = "test/infer_s_per_20k", "test/rmse"
    fig = Figure(figsize=(7.5, 5), layout="constrained")
    ax = fig.subplots()
    seen_families = set()
    for label, runs in sorted(runs_by_label.items()):
        runs = [r for r in runs if key_x in r and key_y in r]
        if not runs:
            continue
        xs, ys = [r[key_x] for r in runs], [r[key_y] for r in runs]
        spread = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)  # noqa: E731
        kind = family(runs[0])
        marker, colour = STYLE[kind]
        ax.errorbar(
            statistics.fmean(xs), statistics.fmean(ys), xerr=spread(xs), yerr=spread(ys), fmt=marker, color=colour,
            ms=7, capsize=3, label=kind if kind not in seen_families else "_nolegend_",
        )  # fmt: skip
        seen_families.add(kind)
        ax.annotate(f"{_short(label)} (n={len(runs)})", (statistics.fmean(xs), statistics.fmean(ys)),
                    textcoords="offset points", xytext=(6, 3), fontsize=7)  # fmt: skip
    if not seen_families:
        return None
    ax.set_xscale("log")
    ax.set_xlabel("inference time per 20,000 predictions (s, log)")
    ax.set_ylabel("test RMSE")
    ax.set_title("Accuracy vs inference time (mean over seeds; bars: std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(title="family", fontsize=8)
    return fig


def prediction_histograms(runs_by_label: dict[str, list[dict]]) -> Figure | None:
    """One panel per model, one step histogram per seed (legend), range over all seeds in the title."""
    from matplotlib.figure import Figure

    panels = []
    for label, runs in sorted(runs_by_label.items()):
        drawn = [(name, np.load(r["_dir"] / "test_predictions.npy")) for name, r in zip(_unit_labels(runs), runs)
                 if (r["_dir"] / "test_predictions.npy").is_file()]  # fmt: skip
        if drawn:
            panels.append((label, drawn))
    if not panels:
        return None
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(3.4 * cols, 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    bins = np.linspace(1, 5, 41)
    for ax, (label, drawn) in zip(axes.flat, panels):
        for i, (name, preds) in enumerate(drawn):
            ax.hist(preds, bins=bins, histtype="step", color=f"C{i % 10}", label=name)
        low = min(float(p.min()) for _, p in drawn)
        high = max(float(p.max()) for _, p in drawn)
        ax.set_title(f"{_short(label)}\n[{low:.2f}, {high:.2f}]", fontsize=8)
        ax.legend(fontsize=6)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    fig.supxlabel("predicted stars (test)")
    return fig


def _curve(run: dict, metric: str):
    import pandas as pd

    logs = sorted(run["_dir"].glob("csv/version_*/metrics.csv"))
    if not logs:
        return None
    frame = pd.read_csv(logs[-1])
    if metric not in frame or "epoch" not in frame:
        return None
    curve = frame.dropna(subset=[metric]).groupby("epoch")[metric].last()
    return curve if len(curve) > 1 else None


def learning_curves(runs_by_label: dict[str, list[dict]]) -> Figure | None:
    """Validation metric per epoch: one line per run, one colour per model, seeds named in the legend."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    colours = colormaps["tab20"].colors
    metrics = set()
    for index, (label, runs) in enumerate(sorted(runs_by_label.items())):
        metric = runs[0].get("optimized_metric") or "val/rmse"
        curves = [(name, _curve(run, metric)) for name, run in zip(_unit_labels(runs), runs)]
        curves = [(name, curve) for name, curve in curves if curve is not None]
        if not curves:
            continue
        metrics.add(metric)
        styles = ("-", "--", ":", "-.")
        for i, (_, curve) in enumerate(curves):
            legend = f"{_short(label)} ({', '.join(name for name, _ in curves)})" if i == 0 else "_nolegend_"
            ax.plot(curve.index, curve.values, styles[i % 4], marker=".", ms=3, lw=1,
                    color=colours[index % len(colours)], label=legend)  # fmt: skip
    if not metrics:
        return None
    ax.set_xlabel("epoch")
    ax.set_ylabel(" / ".join(sorted(metrics)) + " (validation)")
    ax.set_title("Learning curves: every run (line style: seed order)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=2)
    return fig
