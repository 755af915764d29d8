"""Benchmark: DissipationProbe overhead, and the qi vs linear projection head on implicit MovieLens-100k.

    python bench/diagnostics.py                      # overhead + experiment (3 seeds, full and 10% data)
    python bench/diagnostics.py --skip-experiment    # overhead only
    python bench/diagnostics.py --epochs 20 --seeds 0 1 2 --fractions 1.0 0.1

1. Overhead: the same two-tower run (``experiment=two_tower`` / ``two_tower_qi``) with
   ``callbacks=default`` and with ``callbacks=diagnostics`` at the probe's default interval;
   overhead = extra fit time / fit time without the probe (wall clock, so noisy on a shared machine;
   the probe's own timer / fit time without the probe is reported too).
2. Experiment: test nDCG@10 (model selected on val nDCG@10 by the default checkpoint callback), mean and
   std over seeds, for ``head=linear`` and ``head=qi``, on the full training split and on a random
   ``train_fraction`` of it. Prints a table and writes ``bench/results/diagnostics.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # small ops on a busy 2-core box (DESIGN.md)
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


def overhead(epochs: int, head: str) -> dict:
    common = [f"trainer.max_epochs={epochs}", "callbacks.early_stopping=null"]
    start = time.perf_counter()
    base, _ = train(head, ["callbacks=default", *common])
    base_wall = time.perf_counter() - start
    start = time.perf_counter()
    probed, diag = train(head, ["callbacks=diagnostics", *common])
    probed_wall = time.perf_counter() - start
    records = diag["records"]
    return {
        "head": head,
        "epochs": epochs,
        "steps": diag["total_steps"],
        "probe_interval": 100,
        "probes": len(records),
        "fit_s_without": base["fit_s"],
        "fit_s_with": probed["fit_s"],
        "probe_s": diag["probe_seconds"],
        "overhead_wall": probed["fit_s"] / base["fit_s"] - 1,
        "overhead_probe_timer": diag["probe_seconds"] / base["fit_s"],
        "wall_without": base_wall,
        "wall_with": probed_wall,
        "statement": diag["statement"],
        "last_record": {k: v for k, v in records[-1].items() if not isinstance(v, (list, dict))},
    }


def experiment(epochs: int, seeds: list[int], fractions: list[float]) -> list[dict]:
    rows = []
    for fraction in fractions:
        for head in ("linear", "qi"):
            runs = []
            for seed in seeds:
                metrics, _ = train(
                    head,
                    [
                        f"seed={seed}",
                        f"data.train_fraction={fraction}",
                        f"trainer.max_epochs={epochs}",
                        "callbacks=default",
                    ],
                )
                runs.append(metrics)
                ndcg = metrics["test/ndcg_10"]
                print(f"  {head:6s} fraction={fraction} seed={seed} test/ndcg_10={ndcg:.4f}", flush=True)
            ndcg = [m["test/ndcg_10"] for m in runs]
            rows.append(
                {
                    "train_fraction": fraction,
                    "head": head,
                    "seeds": seeds,
                    "test_ndcg_10": ndcg,
                    "mean": statistics.mean(ndcg),
                    "std": statistics.stdev(ndcg) if len(ndcg) > 1 else 0.0,
                    "head_params": runs[0]["head_params"],
                    "linear_head_params_same_out": runs[0]["linear_head_params_same_out"],
                    "fit_s_mean": statistics.mean(m["fit_s"] for m in runs),
                    "epochs_run": [m["epochs"] for m in runs],
                }
            )
    return rows


def popularity(seeds: list[int], fractions: list[float]) -> list[dict]:
    """Reference: rank items by their training-interaction count (same split, subset and exclusions)."""
    import numpy as np

    from qrec.data import load_movielens100k
    from qrec.data.implicit import ImplicitDataModule
    from qrec.metrics_ranking import ranking_metrics

    rows = []
    for fraction in fractions:
        ndcg = []
        for seed in seeds:
            dm = ImplicitDataModule(load_movielens100k, features=None, seed=seed, train_fraction=fraction)
            dm.setup("fit")
            counts = np.bincount(dm.train_pairs[1], minlength=dm.n_items).astype(float)
            scores = np.broadcast_to(counts, (dm.n_users, dm.n_items))
            ndcg.append(ranking_metrics(scores, dm.relevant("test"), dm.exclude("test"))["ndcg"])
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--overhead-epochs", type=int, default=20)  # two_tower's default budget
    parser.add_argument("--overhead-heads", nargs="+", default=["linear", "qi"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-experiment", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "diagnostics.json"))
    args = parser.parse_args()

    out = Path(args.out)
    result = json.loads(out.read_text()) if out.is_file() else {}
    if not args.skip_overhead:
        result["overhead"] = [overhead(args.overhead_epochs, head) for head in args.overhead_heads]
        print("\nDissipationProbe overhead (default interval 100 steps; target <= 10%)")
        print(
            f"{'head':6s} {'steps':>5s} {'probes':>6s} {'fit_s w/o':>9s} {'fit_s with':>10s} "
            f"{'probe_s':>7s} {'overhead(wall)':>14s} {'overhead(timer)':>15s}"
        )
        for r in result["overhead"]:
            print(
                f"{r['head']:6s} {r['steps']:5d} {r['probes']:6d} {r['fit_s_without']:9.1f} "
                f"{r['fit_s_with']:10.1f} {r['probe_s']:7.1f} {r['overhead_wall']:14.1%} "
                f"{r['overhead_probe_timer']:15.1%}"
            )
            print(f"       {r['statement']}")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str))
    result["popularity"] = popularity(args.seeds, args.fractions)
    print("\npopularity reference, test nDCG@10:")
    for r in result["popularity"]:
        print(f"  fraction {r['train_fraction']:.2f}: {r['mean']:.4f} ± {r['std']:.4f}")
    if not args.skip_experiment:
        result["experiment"] = experiment(args.epochs, args.seeds, args.fractions)
        result["experiment_config"] = {
            "epochs": args.epochs,
            "seeds": args.seeds,
            "fractions": args.fractions,
        }
        print(
            f"\nqi vs linear head, test nDCG@10, mean ± std over seeds {args.seeds} "
            f"({args.epochs} epochs max)"
        )
        print(f"{'train_fraction':>14s} {'head':6s} {'params':>6s} {'nDCG@10':>16s} {'fit_s':>6s}")
        for r in result["experiment"]:
            print(
                f"{r['train_fraction']:14.2f} {r['head']:6s} {int(r['head_params']):6d} "
                f"{r['mean']:.4f} ± {r['std']:.4f} {r['fit_s_mean']:6.0f}"
            )
        by = {(r["train_fraction"], r["head"]): r["mean"] for r in result["experiment"]}
        for fraction in args.fractions:
            rel = by[(fraction, "qi")] / by[(fraction, "linear")] - 1
            print(f"fraction {fraction}: qi vs linear {rel:+.1%} (target for 1.0: within -5%)")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
