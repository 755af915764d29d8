"""Benchmark: DissipationProbe overhead, and the qi vs linear projection head on implicit MovieLens-100k.

    python bench/diagnostics.py                      # overhead + experiment (3 seeds, full and 10% data)
    python bench/diagnostics.py --skip-experiment    # overhead only
    python bench/diagnostics.py --epochs 20 --seeds 0 1 2 --fractions 1.0 0.1
    python bench/diagnostics.py --ablation           # how both heads' settings were chosen (seed 0, validation)

1. Overhead: the same two-tower run (``experiment=two_tower`` / ``two_tower_qi``) with
   ``callbacks=default`` and with ``callbacks=diagnostics`` at the probe's default interval,
   ``--overhead-repeats`` interleaved runs each: the probe's own time (probes + end-of-fit report) over
   the median fit time without it, and the wall-clock ratios (fastest and median runs) as a cross-check.
2. Experiment: test nDCG@10 (model selected on val nDCG@10 by the default checkpoint callback), mean and
   std over seeds, for ``head=linear`` and ``head=qi``, on the full training split and on a random
   ``train_fraction`` of it. Prints a table and writes ``bench/results/diagnostics.json``.
3. ``--ablation`` (only): the choices behind ``experiment=two_tower_qi`` and ``two_tower``, seed 0, full data, best
   validation nDCG@10 (what the choice was made on; test shown alongside): each head's default, then the
   encoding, the fidelity's link to the BPR logit, the learning-rate schedule, temperature and lr changed
   one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # OpenMP spin-waits make small ops ~10x slower on a busy 2-core box
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qrec.config import compose_config  # noqa: E402
from qrec.pipeline import run  # noqa: E402

EXPERIMENT = {"linear": "experiment=two_tower", "qi": "experiment=two_tower_qi"}


def train(head: str, overrides: list[str]) -> tuple[dict, dict | None]:
    """One ``train.py`` run in a temporary directory. Returns (metrics, diagnostics.json or None)."""
    with tempfile.TemporaryDirectory() as out:
        metrics = run(compose_config([EXPERIMENT[head], "logger=none", *overrides], out))
        diag = Path(out) / "diagnostics.json"
        return metrics, (json.loads(diag.read_text()) if diag.is_file() else None)


def overhead(epochs: int, head: str, repeats: int) -> dict:
    """Fit time with and without the probe, runs interleaved (so slow drifts hit both).

    Three measures: the probe's own timers (its probes plus the end-of-fit report) over the median fit
    without it, the target's measure since it counts only what the probe does; and the wall-clock ratio
    of the fastest and of the median runs, a cross-check whose noise is reported as the spread of the
    runs without the probe."""
    common = [f"trainer.max_epochs={epochs}", "callbacks.early_stopping=null"]
    without, with_probe, probe_s, report_s = [], [], [], []
    for _ in range(repeats):
        without.append(train(head, ["callbacks=default", *common])[0]["fit_s"])
        probed, diag = train(head, ["callbacks=diagnostics", *common])
        with_probe.append(probed["fit_s"])
        probe_s.append(diag["probe_seconds"])
        report_s.append(diag["report_seconds"])
    records = diag["records"]
    median = statistics.median
    return {
        "head": head,
        "epochs": epochs,
        "steps": diag["total_steps"],
        "probe_interval": diag["every_n_steps"],
        "probes": len(records),
        "repeats": repeats,
        "fit_s_without_runs": without,
        "fit_s_with_runs": with_probe,
        "probe_s_runs": probe_s,
        "report_s_runs": report_s,
        "fit_s_without": median(without),
        "probe_s": median(probe_s),
        "report_s": median(report_s),
        "overhead_timer": (median(probe_s) + median(report_s)) / median(without),
        "overhead_wall_min": min(with_probe) / min(without) - 1,
        "overhead_wall_median": median(with_probe) / median(without) - 1,
        "noise_without": max(without) / min(without) - 1,
        "statement": diag["statement"],
        "last_record": {k: v for k, v in records[-1].items() if not isinstance(v, (list, dict))},
    }


def experiment(
    epochs: int, seeds: list[int], fractions: list[float], patience: int, qi_layers: list[int], extra: list[str]
) -> list[dict]:
    heads = [("linear", "linear", [*extra])] + [
        ("qi" if layers == 1 else f"qi_{layers}layers", "qi", [f"model.layers={layers}", *extra])
        for layers in qi_layers
    ]
    rows = []
    for fraction in fractions:
        for label, head, head_overrides in heads:
            runs = []
            for seed in seeds:
                metrics, _ = train(
                    head,
                    [
                        f"seed={seed}",
                        f"data.train_fraction={fraction}",
                        f"trainer.max_epochs={epochs}",
                        "callbacks=default",
                        f"callbacks.early_stopping.patience={patience}",
                        *head_overrides,
                    ],
                )
                runs.append(metrics)
                ndcg = metrics["test/ndcg_10"]
                print(f"  {label:6s} fraction={fraction} seed={seed} test/ndcg_10={ndcg:.4f}", flush=True)
            ndcg = [m["test/ndcg_10"] for m in runs]
            val = [m["val/ndcg_10"] for m in runs]  # of the checkpoint chosen on it: what budgets are picked on
            rows.append(
                {
                    "train_fraction": fraction,
                    "head": label,
                    "overrides": head_overrides,
                    "seeds": seeds,
                    "test_ndcg_10": ndcg,
                    "mean": statistics.mean(ndcg),
                    "std": statistics.stdev(ndcg) if len(ndcg) > 1 else 0.0,
                    "val_ndcg_10": val,
                    "val_mean": statistics.mean(val),
                    "head_params": runs[0]["head_params"],
                    "linear_head_params_same_out": runs[0]["linear_head_params_same_out"],
                    "fit_s_mean": statistics.mean(m["fit_s"] for m in runs),
                    "epochs_run": [m["epochs"] for m in runs],
                }
            )
    return rows


# (label, head, overrides): each head's default (experiment=two_tower_qi / two_tower), then one setting
# changed at a time; the first row is the qi head as first shipped, for reference.
ABLATION = [
    (
        "qi: as first shipped (angle, log F, init 0.5, constant lr)",
        "qi",
        [
            "model.encoding=angle",
            "model.fidelity_link=log",
            "model.temperature=1.0",
            "model.init_std=0.5",
            "model.lr_schedule=constant",
        ],
    ),
    ("qi: default (sigmoid, F^(1/m) / 0.2, lr 0.02 cosine)", "qi", []),
    ("qi: angle encoding", "qi", ["model.encoding=angle"]),
    ("qi: log F (temperature 1)", "qi", ["model.fidelity_link=log", "model.temperature=1.0"]),
    ("qi: constant lr", "qi", ["model.lr_schedule=constant"]),
    *[(f"qi: temperature {t}", "qi", [f"model.temperature={t}"]) for t in (0.1, 0.3, 0.5)],
    *[(f"qi: lr {lr}", "qi", [f"model.lr={lr}"]) for lr in (0.01, 0.04)],
    ("linear: default (cosine / 0.3, lr 0.01 cosine)", "linear", []),
    ("linear: constant lr", "linear", ["model.lr_schedule=constant"]),
    *[(f"linear: temperature {t}", "linear", [f"model.temperature={t}"]) for t in (0.1, 0.2, 0.5, 1.0)],
    *[(f"linear: lr {lr}", "linear", [f"model.lr={lr}"]) for lr in (0.005, 0.02)],
]


def ablation(epochs: int) -> list[dict]:
    rows = []
    for label, head, overrides in ABLATION:
        metrics, _ = train(head, ["seed=0", f"trainer.max_epochs={epochs}", "callbacks=default", *overrides])
        row = {
            "setting": label,
            "head": head,
            "overrides": overrides,
            "val_ndcg_10": metrics["val/ndcg_10"],
            "test_ndcg_10": metrics["test/ndcg_10"],
            "epochs_run": metrics["epochs"],
        }
        print(f"  {label:58s} val {row['val_ndcg_10']:.4f}  test {row['test_ndcg_10']:.4f}", flush=True)
        rows.append(row)
    return rows


def popularity(seeds: list[int], fractions: list[float]) -> list[dict]:
    """Reference: rank items by their training-interaction count (same split, subset and exclusions)."""

    from qrec.data import load_movielens100k
    from qrec.data.implicit import ImplicitDataModule
    from qrec.models.pop import PopularityModule

    rows = []
    for fraction in fractions:
        ndcg = []
        for seed in seeds:
            dm = ImplicitDataModule(load_movielens100k, features=None, seed=seed, train_fraction=fraction)
            dm.setup("fit")
            model = PopularityModule()  # model=pop: scores are the training (BPR) interaction counts
            model.attach(dm)
            ndcg.append(model.evaluate(dm, "test")["test/ndcg_10"])
        rows.append(
            {
                "train_fraction": fraction,
                "head": "popularity",
                "test_ndcg_10": ndcg,
                "mean": statistics.mean(ndcg),
                "std": statistics.stdev(ndcg) if len(ndcg) > 1 else 0.0,
            }
        )
    return rows


def save(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--overhead-epochs", type=int, default=20)  # two_tower's default budget
    parser.add_argument("--overhead-heads", nargs="+", default=["linear", "qi"])
    parser.add_argument("--overhead-repeats", type=int, default=3, help="interleaved runs with and without the probe")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--patience", type=int, default=3, help="early stopping patience (callbacks=default: 3)")
    parser.add_argument(
        "--qi-layers", type=int, nargs="*", default=[1], help="qi heads to compare (brick layers); none: linear only"
    )
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for both heads, e.g. model.lr=0.01")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-experiment", action="store_true")
    parser.add_argument("--ablation", action="store_true", help="only the settings ablation of both heads (seed 0)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "diagnostics.json"))
    args = parser.parse_args()

    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    if args.ablation:
        print(f"settings ablation of both heads, seed 0, best validation nDCG@10 ({args.epochs} epochs max)")
        result["ablation"] = ablation(args.epochs)
        save(out, result)
        return
    if not args.skip_overhead:
        result["overhead"] = [
            overhead(args.overhead_epochs, head, args.overhead_repeats) for head in args.overhead_heads
        ]
        print(
            f"\nDissipationProbe overhead at its default interval ({result['overhead'][0]['probe_interval']} steps; "
            f"target <= 10%; {args.overhead_repeats} interleaved runs each; timer = (probes + report) / median fit)"
        )
        print(
            f"{'head':6s} {'steps':>5s} {'probes':>6s} {'fit_s w/o':>9s} {'probe_s':>7s} {'report_s':>8s} "
            f"{'timer':>6s} {'wall(min)':>9s} {'wall(median)':>12s} {'noise w/o':>9s}"
        )
        for r in result["overhead"]:
            print(
                f"{r['head']:6s} {r['steps']:5d} {r['probes']:6d} {r['fit_s_without']:9.1f} {r['probe_s']:7.2f} "
                f"{r['report_s']:8.2f} {r['overhead_timer']:6.1%} {r['overhead_wall_min']:9.1%} "
                f"{r['overhead_wall_median']:12.1%} {r['noise_without']:9.1%}"
            )
            print(f"       {r['statement']}")
        save(out, result)  # before the long experiment, so an interrupted run keeps it
    result["popularity"] = popularity(args.seeds, args.fractions)
    print("\npopularity reference, test nDCG@10:")
    for r in result["popularity"]:
        print(f"  fraction {r['train_fraction']:.2f}: {r['mean']:.4f} ± {r['std']:.4f}")
    if not args.skip_experiment:
        result["experiment"] = experiment(
            args.epochs, args.seeds, args.fractions, args.patience, args.qi_layers, args.set
        )
        result["experiment_config"] = {
            "epochs": args.epochs,
            "seeds": args.seeds,
            "fractions": args.fractions,
            "patience": args.patience,
            "qi_layers": args.qi_layers,
            "overrides": args.set,
        }
        print(
            f"\nqi vs linear head, test nDCG@10, mean ± std over seeds {args.seeds} "
            f"({args.epochs} epochs max, early stopping patience {args.patience})"
        )
        print(
            f"{'train_fraction':>14s} {'head':12s} {'params':>6s} {'val nDCG@10':>11s} {'test nDCG@10':>16s} "
            f"{'vs linear':>9s} {'fit_s':>6s}"
        )
        linear = {r["train_fraction"]: r["mean"] for r in result["experiment"] if r["head"] == "linear"}
        for r in result["experiment"]:
            rel = r["mean"] / linear[r["train_fraction"]] - 1
            print(
                f"{r['train_fraction']:14.2f} {r['head']:12s} {int(r['head_params']):6d} {r['val_mean']:11.4f} "
                f"{r['mean']:.4f} ± {r['std']:.4f} {rel:+9.1%} {r['fit_s_mean']:6.0f}"
            )
        print("target (full data): qi within -5% of linear at >= 16x fewer head parameters")
    save(out, result)


if __name__ == "__main__":
    main()
