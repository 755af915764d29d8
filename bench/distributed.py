"""Scaling out on CPU: 1 vs 2 DDP processes (gloo) and a joblib sweep with n_jobs 1 vs 2.

    python bench/distributed.py            # 1 M synthetic ratings (about 15-25 min on 2 idle cores)
    python bench/distributed.py --quick    # 100 k ratings, 1 epoch (a few minutes)

Every measurement is a `python train.py ...` run, as a user would start it:

- the LSTM hybrid's stage 2 (``model=varnet_lstm``; stage 1 is trained once by the first run and then read
  from the stage-1 cache by every run) and the two-tower model, each with ``trainer=cpu`` (1 process) and
  ``trainer=ddp`` (2 processes). Time per epoch = (fit time with E epochs - fit time with no training
  batch) / E, so start-up, data and cache loading are not counted. With no training batch both runs
  evaluate the same initial weights: their metrics must be equal (the DDP evaluation gathers each rating
  once). Trained metrics are close, not equal: DDP averages the gradients of two batches per step.
- a Hydra sweep of 8 ``model=bias`` jobs (seeds 0-7) through ``hydra/launcher=joblib`` with n_jobs 1 and 2:
  wall time, and every job's metrics equal between the two.

On 2 cores no speed-up is expected (the processes share the cores); the point is correctness and a method a
GPU/cluster user reruns (``--trainer-extra trainer.accelerator=gpu`` for GPUs). Writes
``bench/results/distributed-<time>.json`` (or ``--out``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, ROOT, machine, table

TRAIN = ROOT / "train.py"
EXACT_KEYS = {"varnet_lstm": ("val/rmse", "test/rmse", "test/mae"), "two_tower": ("val/ndcg_10", "test/ndcg_10")}


def sizes(quick: bool) -> tuple[list[str], list[str], int]:
    """(rating data overrides, implicit data overrides, epochs)."""
    users, items, density = (2_000, 500, 0.1) if quick else (10_000, 2_000, 0.05)  # 100 k or 1 M ratings
    shape = [f"data.n_users={users}", f"data.n_items={items}", f"data.density={density}"]
    return [*shape, "data=synthetic", "data.batch_size=1024", "data.eval_batch_size=20000"], [
        *shape, "data=synthetic_implicit", "data.batch_size=4096", "data.eval_batch_size=512"], 1 if quick else 2


def train(overrides: list[str], workdir: Path, cache: Path) -> tuple[float, Path]:
    """Run train.py; (wall seconds, output dir)."""
    out = workdir / f"run{len(list(workdir.iterdir()))}"
    sweep = "-m" in overrides
    args = [*overrides, f"hydra.{'sweep' if sweep else 'run'}.dir={out}", "logger=none", "callbacks=none"]
    env = {**os.environ, "QREC_DATA_DIR": str(cache), "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(TRAIN), *args], cwd=workdir, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"train.py {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return time.perf_counter() - start, out


def metrics(path: Path) -> dict:
    return json.loads((path / "metrics.json").read_text())


def ddp_rows(name: str, data: list[str], epochs: int, extra: list[str], workdir: Path, cache: Path) -> list[dict]:
    base = [f"model={name}", *data, *extra]
    if name == "varnet_lstm":
        base += ["model.base_epochs=1"]  # stage 1 is not what is measured; one epoch, cached after the first run
    rows = []
    for label, trainer in (("1 process", "trainer=cpu"), ("2 processes (ddp, gloo)", "trainer=ddp")):
        _, zero = train([*base, trainer, "trainer.max_epochs=1", "+trainer.limit_train_batches=0"], workdir, cache)
        _, full = train([*base, trainer, f"trainer.max_epochs={epochs}"], workdir, cache)
        m0, m = metrics(zero), metrics(full)
        per_epoch = (m["fit_s"] - m0["fit_s"]) / epochs
        rows.append({"model": name, "processes": label, "s_per_epoch": per_epoch, "init": m0, "trained": m})
        print(f"{name}, {label}: {per_epoch:.2f} s/epoch", flush=True)
    keys = EXACT_KEYS[name]
    gap = max(abs(rows[0]["init"][k] - rows[1]["init"][k]) for k in keys)
    for row in rows:
        row.update(init_metric_max_abs_diff=gap, metric=keys[1], trained_metric=row["trained"][keys[1]],
                   epochs=epochs)  # fmt: skip
    return rows


def joblib_rows(data: list[str], workdir: Path, cache: Path) -> list[dict]:
    rows, per_seed = [], []
    for n_jobs in (1, 2):
        sweep = ["-m", "model=bias", *data, "seed=0,1,2,3,4,5,6,7", "hydra/launcher=joblib",
                 f"hydra.launcher.n_jobs={n_jobs}"]  # fmt: skip
        wall, out = train(sweep, workdir, cache)
        per_seed.append({metrics(job)["seed"]: metrics(job)["test/rmse"] for job in out.iterdir() if job.is_dir()})
        rows.append({"model": "bias x 8 jobs (joblib)", "processes": f"n_jobs={n_jobs}", "sweep_wall_s": wall})
    gap = max(abs(per_seed[0][s] - per_seed[1][s]) for s in per_seed[0])
    for row in rows:
        row.update(init_metric_max_abs_diff=gap, metric="test/rmse per job", jobs=len(per_seed[0]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 k ratings and 1 epoch (a few minutes)")
    parser.add_argument("--out", type=Path, help="JSON path (default: bench/results/distributed-<time>.json)")
    parser.add_argument("--trainer-extra", nargs="*", default=[], help="extra overrides, e.g. trainer.accelerator=gpu")
    args = parser.parse_args()
    rating, implicit, epochs = sizes(args.quick)
    with tempfile.TemporaryDirectory(prefix="qrec-bench-distributed-") as tmp:
        workdir, cache = Path(tmp) / "runs", Path(tmp) / "cache"
        workdir.mkdir()
        rows = ddp_rows("varnet_lstm", rating, epochs, args.trainer_extra, workdir, cache)
        rows += ddp_rows("two_tower", implicit, epochs, args.trainer_extra, workdir, cache)
        rows += joblib_rows([o for o in rating if not o.startswith("data.batch_size")], workdir, cache)
    table(rows, ["model", "processes", "s_per_epoch", "sweep_wall_s", "metric", "trained_metric",
                 "init_metric_max_abs_diff"])  # fmt: skip
    print("init_metric_max_abs_diff: same weights evaluated by 1 and 2 processes (DDP) / the same jobs through "
          "joblib n_jobs 1 and 2; must be <= 1e-6.")
    out = args.out or RESULTS / f"distributed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine(), "quick": args.quick, "epochs": epochs, "command": " ".join(sys.argv),
               "rows": [{k: v for k, v in r.items() if k not in ("init", "trained")} for r in rows]}  # fmt: skip
    out.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
