"""CAQUBO benchmarks: counterfactual analysis timing and K-constrained SA on n = 500.

    python bench/caqubo.py                 # kg150 full analysis, kg500 on a sample of pairs, SA n=500
    python bench/caqubo.py --full500       # also the full kg500 analysis (125,250 pairs; long)
    python bench/caqubo.py --quick         # small samples only (smoke run)
    python bench/caqubo.py --collect DIR [DIR ...] [--grid] [--out F]  # Table 1, solver × K chosen on validation
    python bench/caqubo.py --stability RUN_DIR/caqubo_q.npy [--quick] [--out F.json]  # SA energy spread
    python bench/caqubo.py --plot bench/results/caqubo_stability.json  # redraw that figure from its JSON

Prints a table and writes bench/results/caqubo.json. Numbers depend on machine load: the script
records the load average next to each timing. Targets (2-core CPU): kg150 ≤ 60 s, kg500 ≤ 15 min,
SA n=500 K-constrained 100 reads ≤ 10 s with 100% feasible after repair.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "caqubo.json"


def load() -> float:
    return os.getloadavg()[0]


def analysis(n_features: int, backend: str, n_jobs: int, sample: int | None, seed: int = 0) -> dict:
    """Time the Item-KNN counterfactual on MovieLens-100k KG features (val split, seed 0)."""
    from qrec.data import load_movielens100k
    from qrec.data.implicit import ImplicitDataModule
    from qrec.selection import ItemKNNCounterfactual, run_counterfactual

    dm = ImplicitDataModule(load_movielens100k, "kg", n_features, seed=seed)
    dm.setup()
    start = time.perf_counter()
    cf = ItemKNNCounterfactual(
        dm.features.matrix.toarray(), dm.exclude("val"), dm.relevant("val"), backend=backend
    )
    cf.evaluate([0, 1])  # compiles the numba kernel (cached on disk afterwards)
    setup_s = time.perf_counter() - start
    n_pairs = n_features * (n_features - 1) // 2
    row = {
        "features": n_features,
        "backend": cf.backend,
        "n_jobs": n_jobs,
        "setup_s": setup_s,
        "val_ndcg_10": cf.base,
        "load_before": load(),
    }
    if sample is None:
        result = run_counterfactual(cf, pairs=True, progress=True, n_jobs=n_jobs)
        row.update(
            evaluations=result.evaluations,
            seconds=result.seconds,
            extrapolated=False,
            delta_single_positive=int((result.single > 0).sum()),
            delta_single_negative=int((result.single < 0).sum()),
        )
    else:
        rng = np.random.default_rng(seed)
        pairs = {tuple(sorted(rng.choice(n_features, 2, replace=False))) for _ in range(sample)}
        start = time.perf_counter()
        for pair in pairs:
            cf.evaluate(list(pair))
        per_mask = (time.perf_counter() - start) / len(pairs)
        row.update(
            evaluations=len(pairs),
            sampled_ms_per_mask=1e3 * per_mask,
            extrapolated=True,
            seconds=per_mask * (n_features + n_pairs) / max(n_jobs, 1),
        )
    row["load_after"] = load()
    return row


def brute_force_ms(n_features: int, masks: int = 5) -> float:
    """Milliseconds per mask of full re-fitting and re-scoring (the reference path)."""
    from qrec.data import load_movielens100k
    from qrec.data.implicit import ImplicitDataModule
    from qrec.selection import ItemKNNCounterfactual

    dm = ImplicitDataModule(load_movielens100k, "kg", n_features, seed=0)
    dm.setup()
    cf = ItemKNNCounterfactual(
        dm.features.matrix.toarray(), dm.exclude("val"), dm.relevant("val"), backend="numpy"
    )
    keep = np.ones(n_features, dtype=bool)
    start = time.perf_counter()
    for i in range(masks):
        keep[[i, i + 1]] = False
        cf.brute_force(keep)
        keep[:] = True
    return 1e3 * (time.perf_counter() - start) / masks


def sa_benchmark(n: int = 500, k: int = 450, reads: int = 100, seed: int = 0) -> dict:
    """SA on a CAQUBO-shaped Q (δ_ij ≈ δ_i + δ_j + noise, as measured deltas look), Σx = k."""
    from qrec.selection import caqubo, solve

    rng = np.random.default_rng(seed)
    single = rng.normal(2e-4, 5e-4, n)
    pair = single[:, None] + single[None, :] + rng.normal(0, 2e-4, (n, n))
    pair = (pair + pair.T) / 2
    Q = caqubo(single, pair)
    start = time.perf_counter()
    result = solve(Q, "sa", k=k, num_reads=reads, seed=seed)
    wall = time.perf_counter() - start
    return {
        "n": n,
        "k": k,
        "num_reads": reads,
        "solve_s": result.solve_s,
        "wall_s": wall,
        "raw_feasible_fraction": result.feasible_fraction,
        "selected": int(result.x.sum()),
        "feasible_after_repair": float(result.x.sum() == k),
        "penalty": result.penalty,
        "energy": result.energy,
        "load": load(),
    }


def stability(
    q_path: Path, reads=(10, 100, 1000), sizes=(50, 100, 150), seed: int = 0, out: Path | None = None
) -> Path:
    """The paper's stability study: SA energy distribution vs number of reads and problem size.

    Sub-problems are the leading ``n`` features of a saved Q, solved twice: unconstrained (raw SA samples)
    and with Σx = K = 0.9·n (samples repaired to K). Every sample's energy is kept in the JSON, so the
    figure can be redrawn with ``--plot``. Writes ``out`` (default bench/results/caqubo_stability_new.json)
    and the png beside it.
    """
    from qrec.selection import solve

    Q = np.load(q_path)
    rows = []
    for n in sizes:
        if n > len(Q):
            continue
        sub = Q[:n, :n]
        for k in (None, int(round(0.9 * n))):
            for r in reads:
                res = solve(sub, "sa", k=k, num_reads=r, seed=seed)
                e = res.energies
                rows.append({"n": n, "k": k, "reads": r, "best": float(e.min()), "mean": float(e.mean()),
                             "std": float(e.std()), "raw_feasible": res.feasible_fraction, "solve_s": res.solve_s,
                             "energies": e.tolist()})  # fmt: skip
                print(
                    f"n={n:>4} K={k!s:>4} reads={r:>5}: best {e.min():.5f} mean {e.mean():.5f} ± {e.std():.5f} "
                    f"({res.solve_s:.1f} s)"
                )
    out = out or RESULTS.with_name("caqubo_stability_new.json")
    out.write_text(json.dumps({"q": str(q_path), "seed": seed, "solver": "sa", "runs": rows}, indent=2))
    plot_stability(out)
    return out


def plot_stability(json_path: Path) -> Path:
    """One panel per problem size (rows: unconstrained, Σx = K): relative energy (E − E_best)/|E_best| of
    every sample per number of reads, E_best the lowest energy seen for that size and constraint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = json.loads(json_path.read_text())["runs"]
    if not runs or "energies" not in runs[0]:
        raise SystemExit(f"{json_path} holds no per-sample energies; re-run `--stability Q.npy` to record them.")
    sizes = sorted({r["n"] for r in runs})
    modes = sorted({r["k"] is not None for r in runs})
    fig, axes = plt.subplots(len(modes), len(sizes), figsize=(3.2 * len(sizes), 3.0 * len(modes)), squeeze=False)
    rng = np.random.default_rng(0)
    for row, constrained in enumerate(modes):
        for col, n in enumerate(sizes):
            ax = axes[row, col]
            cell = [r for r in runs if r["n"] == n and (r["k"] is not None) == constrained]
            best = min(r["best"] for r in cell)
            rel = [(np.asarray(r["energies"]) - best) / (abs(best) or 1.0) for r in cell]
            ax.boxplot(rel, showfliers=False)
            for i, values in enumerate(rel, start=1):  # every sample, so a zero spread is visible as such
                ax.plot(i + rng.uniform(-0.15, 0.15, len(values)), values, ".", ms=2, alpha=0.4, color="C0")
            at_best = [f"{100 * np.mean(v <= 1e-9):.0f}%" for v in rel]  # share of samples that reached E_best
            ax.set_xticks(range(1, len(cell) + 1), [f"{r['reads']}\n{b}" for r, b in zip(cell, at_best)], fontsize=8)
            k = cell[0]["k"]
            ax.set_title(f"n = {n}, " + (f"Σx = K = {k} (repaired)" if constrained else "unconstrained"), fontsize=9)
            ax.set_xlabel("SA reads (share of samples at E_best)", fontsize=8)
            if col == 0:
                ax.set_ylabel("(E − E_best) / |E_best|")
    fig.suptitle(f"SA energy spread per sample ({Path(json.loads(json_path.read_text())['q']).parent.name})")
    fig.tight_layout()
    png = json_path.with_suffix(".png")
    fig.savefig(png, dpi=120)
    plt.close(fig)
    print(f"-> {png}")
    return png


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full500", action="store_true", help="run the full 500-feature analysis")
    parser.add_argument("--quick", action="store_true", help="samples only (smoke run)")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--skip-full150", action="store_true", help="estimate kg150 from a sample too")
    parser.add_argument("--collect", type=Path, nargs="+", help="multirun folders: Table 1 chosen on validation")
    parser.add_argument("--out", type=Path, help="--collect: also write the table here (and its .json beside it); "
                        "--stability: the JSON to write (png beside it)")
    parser.add_argument("--grid", action="store_true", help="--collect: also print the full test grid (reference)")
    parser.add_argument("--stability", type=Path, help="caqubo_q.npy of a run: energy spread study")
    parser.add_argument("--plot", type=Path, help="redraw the stability figure from its JSON (beside it)")
    args = parser.parse_args()
    if args.collect:
        from caqubo_collect import collect  # bench/ is on sys.path when this script runs

        collect(args.collect, args.out, args.grid)
        return
    if args.plot:
        plot_stability(args.plot)
        return
    if args.stability:
        reads = (10, 100) if args.quick else (10, 100, 1000)
        stability(args.stability, reads=reads, out=args.out)
        return

    rows = []
    rows.append(analysis(150, "numpy", 1, sample=40))
    rows.append(analysis(150, "auto", 1, sample=300))
    if not (args.quick or args.skip_full150):
        rows.append(analysis(150, "auto", args.n_jobs, sample=None))
    rows.append(analysis(500, "auto", 1, sample=300))
    if args.full500:
        rows.append(analysis(500, "auto", args.n_jobs, sample=None))
    brute = {n: brute_force_ms(n) for n in (150, 500)}
    sa = sa_benchmark()
    out = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "counterfactual": rows,
        "brute_force_ms_per_mask": brute,
        "sa_n500": sa,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))

    print(
        f"\n{'features':>8} {'backend':>7} {'jobs':>4} {'masks':>7} {'seconds':>9} "
        f"{'how':>13} {'load':>5}  target"
    )
    for r in rows:
        target = 60 if r["features"] == 150 else 900
        how = "extrapolated" if r["extrapolated"] else "measured"
        print(
            f"{r['features']:>8} {r['backend']:>7} {r['n_jobs']:>4} {r['evaluations']:>7} "
            f"{r['seconds']:>9.1f} "
            f"{how:>13} {r['load_after']:>5.1f}  ≤ {target} s"
        )
    print(f"brute force (full re-scoring) ms/mask: 150 -> {brute[150]:.0f}, 500 -> {brute[500]:.0f}")
    print(
        f"SA n=500 K=450 100 reads: {sa['solve_s']:.1f} s (target ≤ 10 s), raw feasible "
        f"{100 * sa['raw_feasible_fraction']:.0f}%, after repair {100 * sa['feasible_after_repair']:.0f}%"
    )
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
