"""How every model's cost grows with data size, on generated MovieLens-shaped ratings.

    python bench/scale.py                 # 0.1 M and 1 M ratings (a few minutes on 2 cores)
    python bench/scale.py --full          # + 5 M and 20 M (MovieLens-20M's 138k users x 27k items)
    python bench/scale.py --quick         # a smoke run on tiny tables

Each cell runs in a fresh process, so its peak RSS is its own: generate the table (users and items grow
with the ratings as in the MovieLens family; Zipf item popularity 0.5 and user activity 0.5), split it
60/20/20, then one task: ALS fit (rank 64, 10 sweeps; ``als`` exact, ``als_cg3`` with model.cg_steps=3),
one VarNet epoch (k=4 and k=8, torch backend), one stage-2 epoch of the LSTM hybrid (stage 1 trained for
one epoch first, not timed), 20k-prediction latency and a full test-split evaluation (both with ALS fitted
by one untimed sweep first: the number of sweeps does not change what they time). Prints
a table, fits the slope of log time vs log ratings per task, writes JSON (bench/results/scale-<time>.json
unless --out) and a log-log PNG.
Targets (2-core CPU): ALS at 20 M ≤ 120 s and ≤ 8 GB; a hybrid epoch at 20 M ≤ 5 min; slopes ≤ 1.1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, table  # noqa: E402

# (users, items) per size: ML-100k, ML-1M, between ML-1M and ML-10M, ML-20M.
SHAPES = {100_000: (943, 1_682), 1_000_000: (6_040, 3_706), 5_000_000: (35_000, 10_000),
          20_000_000: (138_000, 27_000)}  # fmt: skip
QUICK_SHAPES = {5_000: (200, 150), 20_000: (600, 400)}
TASKS = ("generate", "als", "als_cg3", "varnet_k4", "varnet_k8", "hybrid_stage2", "latency_20k", "evaluate")
SECONDS_COLUMN = {"generate": "generate_s", "als": "fit_s", "als_cg3": "fit_s", "varnet_k4": "epoch_s",
                  "varnet_k8": "epoch_s", "hybrid_stage2": "epoch_s", "latency_20k": "latency_s",
                  "evaluate": "test_s"}  # fmt: skip


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux reports KiB


def _trainer(epochs: int):
    import lightning as L

    return L.Trainer(max_epochs=epochs, limit_val_batches=0, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                     accelerator="cpu", devices=1)  # fmt: skip


def _model(*overrides: str):
    from common import config
    from hydra.utils import instantiate

    cfg = config(*overrides)
    return instantiate(cfg.model), cfg


def run_cell(task: str, n_ratings: int, n_users: int, n_items: int) -> dict:
    """One measurement in this process (called through ``--cell`` in a fresh interpreter)."""
    from qrec.data.synthetic import make_synthetic_ratings
    from qrec.pipeline import torch_threads

    start = time.perf_counter()
    ratings = make_synthetic_ratings(n_users, n_items, n_ratings=n_ratings, rank=10, item_skew=0.5,
                                     user_skew=0.5, features=False, seed=0)  # fmt: skip
    out = {"generate_s": time.perf_counter() - start}
    if task == "generate":
        return out
    model, cfg = _model(*{
        "als": ("model=als", "model.rank=64"), "als_cg3": ("model=als", "model.rank=64", "model.cg_steps=3"),
        "latency_20k": ("model=als", "model.rank=64"),
        "evaluate": ("model=als", "model.rank=64"), "varnet_k4": ("model=varnet", "model.k=4"),
        "varnet_k8": ("model=varnet", "model.k=8"), "hybrid_stage2": ("model=varnet_lstm", "model.base_epochs=1"),
    }[task])  # fmt: skip
    out["threads"] = cfg.get("threads")
    with torch_threads(out["threads"]):  # as `python train.py` runs it (the hybrid's config asks for one thread)
        return _measure(task, model, cfg, ratings, out)


def _measure(task: str, model, cfg, ratings, out: dict) -> dict:
    from qrec.data.datamodule import RatingsDataModule

    timed_fit = task in ("als", "als_cg3")  # the other ALS cells fit one untimed sweep first
    closed_form = timed_fit or task in ("latency_20k", "evaluate")
    dm = RatingsDataModule(lambda: ratings, split="random", seed=0, batch_size=None if closed_form else
                           cfg.data.batch_size, eval_batch_size=20_000,
                           with_timestamps=bool(cfg.data.get("with_timestamps", False)))  # fmt: skip
    dm.setup()
    start = time.perf_counter()
    model.attach(dm)  # data-shaped buffers; SVD for VarNet; the hybrid's one-epoch stage 1
    out["setup_s"] = time.perf_counter() - start
    trainer = _trainer(10 if timed_fit else 1)
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    out["fit_s" if timed_fit else "prefit_s" if closed_form else "epoch_s"] = seconds
    if not closed_form:
        out["steps_per_s"] = trainer.global_step / out["epoch_s"]
    if task == "latency_20k":
        from qrec.timing import median_seconds

        test = dm.test
        reps = -(-20_000 // len(test))
        users, items = test.users.repeat(reps)[:20_000], test.items.repeat(reps)[:20_000]
        out["latency_s"] = median_seconds(lambda: model.predict_clipped(users, items))
    if task == "evaluate":
        start = time.perf_counter()
        result = trainer.test(model, datamodule=dm, verbose=False)[0]
        out["test_s"] = time.perf_counter() - start
        out["test_rmse"] = float(result["test/rmse"])
    return out


def _spawn(task: str, n: int, shape: tuple[int, int]) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "QREC_DATA_DIR": tempfile.mkdtemp(prefix="qrec-scale-")}
    args = [sys.executable, __file__, "--cell", task, str(n), str(shape[0]), str(shape[1])]
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def slopes(rows: list[dict]) -> dict[str, float]:
    """Least-squares slope of log(seconds) on log(ratings) per task (1 = linear)."""
    out = {}
    for task in TASKS:
        points = [(r["n_ratings"], r[SECONDS_COLUMN[task]]) for r in rows
                  if r["task"] == task and r.get(SECONDS_COLUMN[task], 0) > 0]  # fmt: skip
        if len(points) >= 2:
            x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
            out[task] = float(np.polyfit(x, y, 1)[0])
    return out


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    for task in TASKS:
        points = sorted((r["n_ratings"], r[SECONDS_COLUMN[task]]) for r in rows
                        if r["task"] == task and SECONDS_COLUMN[task] in r)  # fmt: skip
        if points:
            ax.loglog(*zip(*points), marker="o", label=task)
    ax.set_xlabel("ratings")
    ax.set_ylabel("seconds")
    ax.set_title("qrec cost vs data size (synthetic, 2-core CPU)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="also 5 M and 20 M ratings")
    parser.add_argument("--quick", action="store_true", help="tiny tables (smoke test)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--sizes", nargs="+", type=int, choices=sorted(SHAPES), help="only these sizes (ratings)")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/scale-<time>.json)")
    parser.add_argument("--cell", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        task, *sizes = args.cell
        print(json.dumps({**run_cell(task, *map(int, sizes)), "peak_rss_gb": _peak_gb()}))
        return

    shapes = QUICK_SHAPES if args.quick else {n: s for n, s in SHAPES.items() if args.full or n <= 1_000_000}
    if args.sizes:
        shapes = {n: SHAPES[n] for n in args.sizes}
    rows = []
    for n, shape in shapes.items():
        for task in args.tasks:
            row = {"task": task, "n_ratings": n, "users": shape[0], "items": shape[1], **_spawn(task, n, shape)}
            rows.append(row)
            shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
            print(json.dumps(shown), flush=True)
    columns = ["task", "n_ratings", "users", "items", "generate_s", "setup_s", "fit_s", "epoch_s", "steps_per_s",
               "latency_s", "test_s", "peak_rss_gb", "error"]  # fmt: skip
    print()
    table(rows, columns)
    fitted = slopes(rows)
    print("\nslope of log(seconds) vs log(ratings):", {k: round(v, 2) for k, v in fitted.items()})
    out = args.out or RESULTS / f"scale-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    out.write_text(json.dumps({"machine": machine(), "load_avg": load, "rows": rows, "slopes": fitted}, indent=2))
    plot(rows, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')} (load average {load[0]:.1f})")


if __name__ == "__main__":
    main()
