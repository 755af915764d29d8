"""Markdown tables of a group of runs: what each model scored, and how it differs from the reference."""

from __future__ import annotations

import math
import statistics

from qrec.report.compare import Comparison
from qrec.report.plots import family
from qrec.report.runs import describe_unit, units_text

SHORT = {"test/rmse": "RMSE", "test/mae": "MAE"}


def _mean_std(values: list[float], digits: int = 4) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.fmean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _mean(values: list[float], digits: int) -> str:
    return f"{statistics.fmean(values):.{digits}f}" if values else "—"


def ranked_labels(runs_by_label: dict[str, list[dict]], key: str) -> list[str]:
    """Model labels, best mean ``key`` first (lowest error, or highest nDCG/recall)."""
    sign = 1.0 if key in SHORT else -1.0

    def score(label: str) -> float:
        values = [r[key] for r in runs_by_label[label] if key in r]
        return sign * statistics.fmean(values) if values else math.inf

    return sorted(runs_by_label, key=score)


def summary_table(runs_by_label: dict[str, list[dict]], key: str) -> str:
    """Mean ± std over runs of every model, best ``key`` first (lowest error, or highest nDCG/recall)."""
    test_keys = sorted({k for runs in runs_by_label.values() for run in runs for k in run if k.startswith("test/")})
    shown = [k for k in ("test/rmse", "test/mae") if k in test_keys] or [
        k for k in test_keys if k.split("/")[1].startswith(("ndcg_", "recall_", "hr_"))
    ]
    header = ["model", "family", "runs", *[f"test {SHORT.get(k, k.removeprefix('test/'))}" for k in shown]]
    rating = "test/rmse" in shown
    if rating:
        header += ["infer s / 20k", "prediction range", "fit s"]
    else:
        header += ["fit s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    for label in ranked_labels(runs_by_label, key):
        runs = runs_by_label[label]
        col = lambda k, runs=runs: [r[k] for r in runs if k in r]  # noqa: E731
        cells = [label, family(runs[0]), f"{len(runs)} ({units_text(runs)})", *[_mean_std(col(k)) for k in shown]]
        if rating:
            low, high = col("test/pred_min"), col("test/pred_max")
            span = f"[{statistics.fmean(low):.2f}, {statistics.fmean(high):.2f}]" if low and high else "—"
            cells += [_mean(col("test/infer_s_per_20k"), 4), span, _mean(col("fit_s"), 1)]
        else:
            cells += [_mean(col("fit_s"), 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _signed(x: float) -> str:
    return f"{x:+.4f}"


def _paired_cell(interval) -> str:
    if interval is None:
        return "—"
    if interval.n < 2:
        return f"{_signed(interval.mean)} (1 unit: no interval)"
    return f"{_signed(interval.mean)} [{_signed(interval.low)}, {_signed(interval.high)}]"


def comparison_table(comparisons: dict[str, Comparison], reference: str, order: list[str]) -> str:
    """Differences from ``reference``: over independent test sets, and over users within each test set."""
    if not comparisons:
        return f"No model shares a test set with the reference `{reference}`."
    any_cmp = next(iter(comparisons.values()))
    keys = [k for k in ("test/rmse", "test/mae") if any(k in c.paired for c in comparisons.values())] or sorted(
        {k for c in comparisons.values() for k in c.paired}
    )
    first_key = keys[0]
    metric = SHORT.get(first_key, first_key.removeprefix("test/"))
    header = ["model", f"units ({any_cmp.unit})"]
    for key in keys:
        name = SHORT.get(key, key.removeprefix("test/"))
        header.append(f"Δ{name} mean [95% t-interval over units]")
    header += [f"p (paired t, Δ{metric})", f"Δ{any_cmp.user_metric} user bootstrap 95% CI, first unit",
               "units whose user CI excludes 0"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label in order:
        if label not in comparisons:
            continue
        c = comparisons[label]
        first = c.paired.get(first_key)
        n = first.n if first else 0
        p = "—" if first is None or math.isnan(first.p) else f"{first.p:.2g}"
        if c.user_level:
            unit, boot = c.user_level[0]
            user = (f"{_signed(boot.delta)} [{_signed(boot.low)}, {_signed(boot.high)}] "
                    f"({describe_unit(unit)}, {boot.n_units} users)")  # fmt: skip
            excl = f"{sum(b.excludes_zero() for _, b in c.user_level)}/{len(c.user_level)}"
        else:
            user, excl = "— (no per-user arrays saved)", "—"
        cells = [label, str(n), *[_paired_cell(c.paired.get(k)) for k in keys], p, user, excl]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def unpaired_notes(comparisons: dict[str, Comparison], reference: str) -> list[str]:
    """One line per test set that lacks a partner (left out of the pairing, said out loud)."""
    notes = []
    for label, c in comparisons.items():
        for unit in c.only_model:
            notes.append(f"- {label} on {describe_unit(unit)}: no `{reference}` run on that test set; not paired.")
        for unit in c.only_reference:
            notes.append(f"- `{reference}` on {describe_unit(unit)}: no {label} run on that test set; not paired.")
    return notes


def user_level_table(comparisons: dict[str, Comparison], order: list[str]) -> str:
    """Every test set's user-bootstrap interval (the comparison table shows the first one)."""
    rows = [
        f"| {label} | {describe_unit(unit)} | {_signed(b.delta)} | [{_signed(b.low)}, {_signed(b.high)}] | "
        f"{b.n_units} | {'yes' if b.excludes_zero() else 'no'} |"
        for label in order if label in comparisons for unit, b in comparisons[label].user_level
    ]  # fmt: skip
    if not rows:
        return ""
    metric = next(iter(comparisons.values())).user_metric
    head = f"| model | test set | Δ{metric} | 95% CI (users resampled) | users | excludes 0 |\n" + "|---" * 6 + "|"
    return "\n".join([head, *rows])
