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
    """Test RMSE against inference time per model, marker and colour by family.

    Vertical bars: ± std of RMSE over seeds. Horizontal bars: min-max of the time over seeds (a std
    would run below zero on the log axis; timings are skewed by machine load).
    """
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
        x, y = statistics.fmean(xs), statistics.fmean(ys)
        kind = family(runs[0])
        marker, colour = STYLE[kind]
        ax.errorbar(
            x, y, xerr=[[x - min(xs)], [max(xs) - x]], yerr=statistics.stdev(ys) if len(ys) > 1 else 0.0,
            fmt=marker, color=colour, ms=7, capsize=3, label=kind if kind not in seen_families else "_nolegend_",
        )  # fmt: skip
        seen_families.add(kind)
        ax.annotate(f"{_short(label)} (n={len(runs)})", (x, y), textcoords="offset points", xytext=(6, 3), fontsize=7)
    if not seen_families:
        return None
    ax.set_xscale("log")
    ax.set_xlabel("inference time per 20,000 predictions (s, log; bars: min-max over seeds)")
    ax.set_ylabel("test RMSE (bars: ± std over seeds)")
    ax.set_title("Accuracy vs inference time (mean over seeds)")
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
    """Validation metric per epoch: one panel per family, one line per run, one colour per model.

    The legend names each model's seeds; the line style tells a model's seeds apart (solid = the first).
    """
    from matplotlib.figure import Figure

    panels: dict[str, list] = {}
    for label, runs in sorted(runs_by_label.items()):
        metric = runs[0].get("optimized_metric") or "val/rmse"
        curves = [(name, _curve(run, metric)) for name, run in zip(_unit_labels(runs), runs)]
        curves = [(name, curve) for name, curve in curves if curve is not None]
        if curves:
            panels.setdefault(family(runs[0]), []).append((label, metric, curves))
    if not panels:
        return None
    order = [kind for kind in STYLE if kind in panels]
    fig = Figure(figsize=(5.5 * len(order), 4.8), layout="constrained")
    axes = fig.subplots(1, len(order), squeeze=False, sharey=True)[0]
    styles = ("-", "--", ":", "-.")
    for ax, kind in zip(axes, order):
        for index, (label, _, curves) in enumerate(panels[kind]):
            for i, (_, curve) in enumerate(curves):
                legend = f"{_short(label)} ({', '.join(name for name, _ in curves)})" if i == 0 else "_nolegend_"
                ax.plot(curve.index, curve.values, styles[i % 4], marker=".", ms=3, lw=1, color=f"C{index % 10}",
                        label=legend)  # fmt: skip
        ax.set_title(f"{kind} models")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    metrics = sorted({metric for entries in panels.values() for _, metric, _ in entries})
    axes[0].set_ylabel(" / ".join(metrics) + " (validation)")
    fig.suptitle("Learning curves: every run (line style: solid, dashed, dotted = the seeds in legend order)")
    return fig
