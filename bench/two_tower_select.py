"""Each two-tower head at its validation-chosen training budget, from ``bench/diagnostics.py`` results.

The cosine schedule ties the learning rate to ``trainer.max_epochs``, so the budget is a hyperparameter like
the temperature: this picks, for each head, the configuration (budget, patience and the run's overrides: qi
brick layers, ``--set`` values such as the lr) with the best mean validation nDCG@10 over seeds among the
result files given, and reports its test nDCG@10. Full training data only.

    python bench/diagnostics.py --skip-overhead                                   # 20 epochs (default)
    python bench/diagnostics.py --skip-overhead --epochs 60 --patience 10 --fractions 1.0 \\
        --qi-layers 1 2 --out bench/results/diagnostics_60epochs.json             # and other budgets
    python bench/two_tower_select.py bench/results/diagnostics*.json

Prints every configuration and the chosen ones; writes ``bench/results/two_tower_select.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def configurations(paths: list[Path]) -> list[dict]:
    """Full-data rows of every result file, with their budget; a configuration in several files (the linear
    head is rerun beside each qi variant, with the same seeds, so the same numbers) is taken once."""
    rows, seen = [], set()
    for path in paths:
        result = json.loads(path.read_text())
        config = result.get("experiment_config")
        if config is None:
            continue
        for row in result["experiment"]:
            if row["train_fraction"] != 1.0:
                continue
            if "val_mean" not in row:
                raise SystemExit(f"{path}: no validation scores (written before they were recorded); rerun it.")
            key = (row["head"], config["epochs"], config["patience"], *row["overrides"])
            if key in seen:
                continue
            seen.add(key)
            family = "linear" if row["head"] == "linear" else "qi"
            rows.append({**row, "family": family, "epochs": config["epochs"], "patience": config["patience"],
                         "file": str(path)})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="bench/diagnostics.py result files")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "two_tower_select.json")
    args = parser.parse_args()

    rows = configurations(args.results)
    families = sorted({r["family"] for r in rows})
    if families != ["linear", "qi"]:
        raise SystemExit(f"need results for both heads, found {families or 'none'} in {args.results}.")
    print(
        f"{'head':12s} {'params':>6s} {'epochs':>6s} {'patience':>8s} {'val nDCG@10':>11s} {'test nDCG@10':>16s}  "
        "overrides"
    )
    for r in sorted(rows, key=lambda r: (r["family"], r["head"], r["epochs"])):
        print(
            f"{r['head']:12s} {int(r['head_params']):6d} {r['epochs']:6d} {r['patience']:8d} "
            f"{r['val_mean']:11.4f} {r['mean']:.4f} ± {r['std']:.4f}  {' '.join(r['overrides'])}"
        )
    chosen = {f: max((r for r in rows if r["family"] == f), key=lambda r: r["val_mean"]) for f in families}
    gap = chosen["qi"]["mean"] / chosen["linear"]["mean"] - 1
    ratio = chosen["linear"]["head_params"] / chosen["qi"]["head_params"]
    print("\nchosen on validation:")
    for f, r in chosen.items():
        extra = "".join(f", {o}" for o in r["overrides"] if not o.startswith("model.layers="))
        print(f"  {f:6s} {r['head']} at {r['epochs']} epochs{extra}: test {r['mean']:.4f} ± {r['std']:.4f}")
    print(f"qi vs linear: {gap:+.1%} at {ratio:.1f}x fewer head parameters (target: within -5% at >= 16x)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"configurations": rows, "chosen": chosen, "qi_vs_linear": gap,
                                    "param_ratio": ratio}, indent=2))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
