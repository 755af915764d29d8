"""Write results.md and the figures of a (multi)run directory."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from qrec.report import plots
from qrec.report.compare import compare, find_reference, metric_keys
from qrec.report.runs import by_group, load_runs, unit_key
from qrec.report.tables import comparison_table, ranked_labels, summary_table, unpaired_notes, user_level_table

FORMATS = ("png", "pdf", "svg")
FIGURES = {
    "rmse_vs_time": ("RMSE vs inference time", plots.rmse_vs_time),
    "prediction_histograms": ("Prediction histograms", plots.prediction_histograms),
    "learning_curves": ("Learning curves", plots.learning_curves),
}


def _atomic_write(path: Path, write) -> None:
    # A unique temporary name in the same folder, then os.replace: a reader never sees half a file.
    # (uuid rather than mkstemp, so the file gets the usual umask permissions, not 0600.)
    temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex}{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _method_text(unit: str, ref_label: str, n_resamples: int, seed: int) -> str:
    return (
        f"Paired over test sets (unit: **{unit}**, treated as independent replicates of split + training; "
        f"a model's row uses the test sets both it and {ref_label} ran on): mean difference, 95% Student-t "
        "interval and two-sided paired t-test p over those units. Within each test set: 95% BCa bootstrap "
        f"interval over **users** ({n_resamples} resamples of users with replacement, seed {seed}; both models "
        "scored on the same resampled ratings). An interval that contains 0 means that unit of evidence cannot "
        "tell the two models apart. See docs/significance.md."
    )


def group_report(
    name: str, runs_by_label: dict[str, list[dict]], reference: str, out: Path, fmt: str | None, n_resamples: int,
    seed: int, single: bool = False,
) -> list[str]:  # fmt: skip
    """The markdown of one group of comparable runs; writes its figures into ``out``."""
    all_runs = [run for runs in runs_by_label.values() for run in runs]
    keys = metric_keys(all_runs)
    if not keys:
        raise SystemExit(f"No test metric (test/rmse, test/ndcg_*) in the runs of group {name or '(default)'}.")
    labels = sorted(runs_by_label)
    text = [f"## {name}", ""] if name else []
    text += [summary_table(runs_by_label, keys[0]), ""]
    order = ranked_labels(runs_by_label, keys[0])
    ref_label = find_reference(labels, runs_by_label, reference)
    if ref_label is None:
        text += [f"No run matches the reference `{reference}` (a label or model class; `--reference` sets it): "
                 f"no paired comparison. Labels here: {', '.join(labels)}.", ""]  # fmt: skip
    else:
        comparisons, refused = {}, []
        for label, runs in runs_by_label.items():
            if label != ref_label:
                try:
                    comparisons[label] = compare(runs, runs_by_label[ref_label], n_resamples, seed)
                except ValueError as error:  # reported in results.md, the rest of the report still runs
                    refused.append(f"- {label}: not compared, {error}.")
        unit = next(iter(comparisons.values())).unit if comparisons else "test set"
        text += [f"### Differences from `{ref_label}` (model − {ref_label}; negative = lower than {ref_label})", "",
                 _method_text(unit, ref_label, n_resamples, seed), "",
                 comparison_table(comparisons, ref_label, order), ""]  # fmt: skip
        notes = unpaired_notes(comparisons, ref_label) + refused
        if notes:
            text += ["Left out of the pairing (reported, never dropped silently):", *notes, ""]
        detail = user_level_table(comparisons, order)
        if detail:
            text += ["### User-level bootstrap on every test set", "", detail, ""]
    suffix = "" if single or not name else "_" + re.sub(r"[^\w.-]+", "_", name)  # one dataset: plain file names
    for stem, (title, draw) in FIGURES.items() if fmt else ():
        figure = draw(runs_by_label)
        if figure is None:
            continue
        path = out / f"{stem}{suffix}.{fmt}"
        _atomic_write(path, lambda p, figure=figure: figure.savefig(p, dpi=120, format=fmt))
        text += [f"![{title}]({path.name})", ""]
    return text


def write_report(
    root: Path, out: Path | None = None, reference: str = "als", fmt: str | None = "png", n_resamples: int = 2000,
    seed: int = 0,
) -> Path:  # fmt: skip
    """Write results.md and the figures into ``out`` (default: ``root``); return the results.md path.

    Args:
        root: a run or multirun directory (every ``metrics.json`` below it is a run).
        out: output folder.
        reference: label (``als``) or model class (``ALSModule``) every model is compared with.
        fmt: figure format, one of ``png``, ``pdf``, ``svg``; None writes no figures.
        n_resamples: bootstrap resamples of users.
        seed: fixes the bootstrap resamples.
    """
    if fmt is not None and fmt not in FORMATS:
        raise SystemExit(f"--format {fmt!r} is not one of {', '.join(FORMATS)}.")
    if n_resamples < 100:
        raise SystemExit(f"--resamples {n_resamples} is too few for a 95% interval; use 1000 or more.")
    out = out or root
    out.mkdir(parents=True, exist_ok=True)
    runs = load_runs(root)
    splits = sorted({str(unit_key(r)[0]) for r in runs})
    seeds = sorted({r.get("seed") for r in runs}, key=str)
    text = [f"# Results: {root.name}", "",
            f"{len(runs)} runs; splits: {', '.join(splits)}; seeds: {', '.join(map(str, seeds))}; "
            "model columns are mean ± std over runs.", ""]  # fmt: skip
    groups = by_group(runs)
    for name, runs_by_label in sorted(groups.items()):
        text += group_report(name, runs_by_label, reference, out, fmt, n_resamples, seed, single=len(groups) == 1)
    path = out / "results.md"
    _atomic_write(path, lambda p: p.write_text("\n".join(text)))
    return path
