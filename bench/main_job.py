"""Wall time of the main job, `python train.py model=varnet_lstm`, from an empty and from a warm stage-1 cache.

Each repeat runs the job as a user would (a fresh `python train.py` process, default logger and
callbacks, output in a temporary directory): once with an empty stage-1 cache ("cold": stage 1 trains
VarNet) and once more on the cache that run filled ("warm": stage 1 is loaded). The per-stage breakdown
comes from the spans the run itself records in metrics.json (``timing/*``, see ``qrec/timing.py``):

- startup: process start, imports and config composition, plus exit (wall − the pipeline's own time);
- data: loading and splitting MovieLens-100k;
- stage 1: training VarNet (cold) or loading it (warm); frozen: its predictions for every split pair;
- stage 2: training the LSTM corrector, with its per-epoch validation;
- eval: validating and testing the best checkpoint (with the inference-time measurement).

Steps per second are the training loops' own rates (optimizer steps / seconds in training batches).
The machine's CPU model, core count and load average (before and after each run) are recorded: timings
on a loaded machine are not comparable with an idle one.

    python bench/main_job.py                       # 3 repeats, JSON to bench/results/main_job-<time>.json
    python bench/main_job.py --quick               # smoke test: 1 repeat, 2 + 2 epochs
    python bench/main_job.py --checkout ../other   # the same job on another checkout (before/after)
    python bench/main_job.py --set data.batch_size=1024 --out /tmp/b1024.json
    python bench/main_job.py --profile             # where the time goes: imports by package, a stage-2 step by
                                                   # part (one warm run under Lightning's SimpleProfiler)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import job_profile

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["trainer.max_epochs=2", "model.base_epochs=2"]


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_job(checkout: Path, model: str, cache: Path, overrides: list[str]) -> dict:
    """One `python train.py` process; its wall time, load averages and metrics.json."""
    with tempfile.TemporaryDirectory(prefix="qrec-main-job-") as out:
        cmd = [sys.executable, "train.py", f"model={model}", f"++model.cache_dir={cache}", f"hydra.run.dir={out}",
               *overrides]  # fmt: skip
        env = job_profile.checkout_env(checkout, OMP_WAIT_POLICY="PASSIVE")
        load_before = os.getloadavg()
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=checkout, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"`{' '.join(cmd)}` failed in {checkout}:\n{proc.stderr[-3000:]}")
        metrics = json.loads((Path(out) / "metrics.json").read_text())
    return {"wall_s": wall, "load_before": load_before, "load_after": os.getloadavg(), "metrics": metrics}


def breakdown(run: dict) -> dict:
    """Per-stage seconds and steps/s from a run's ``timing/*`` metrics (None where a checkout lacks them)."""
    m, wall = run["metrics"], run["wall_s"]
    if "timing/run_s" not in m:  # a checkout without stage spans: wall and fit time only
        return {"wall_s": wall, "fit_s": m.get("fit_s"), "test_rmse": m.get("test/rmse")}
    stage1, frozen = m.get("timing/stage1_s", 0.0), m.get("timing/frozen_s", 0.0)

    def rate(prefix: str) -> float | None:
        seconds = m.get(f"timing/{prefix}_train_s")
        return m[f"timing/{prefix}_steps"] / seconds if seconds else None

    return {
        "wall_s": wall, "startup_s": wall - m["timing/run_s"], "data_s": m.get("timing/data_s"),
        "stage1_s": stage1, "frozen_s": frozen, "stage2_s": m["timing/fit_s"] - stage1 - frozen,
        "eval_s": m.get("timing/eval_s"), "stage1_steps_per_s": rate("stage1"), "stage2_steps_per_s": rate("fit"),
        "stage2_steps": m.get("timing/fit_steps"), "epochs": m.get("epochs"), "test_rmse": m.get("test/rmse"),
        "val_rmse": m.get("val/rmse"),
    }  # fmt: skip


def fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) and value < 2 else f"{value:.1f}" if isinstance(value, float) \
        else str(value)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="cold + warm pairs to run (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 repeat, 2 stage-1 and 2 stage-2 epochs")
    parser.add_argument("--model", default="varnet_lstm", help="model= option to run (default varnet_lstm)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra train.py overrides")
    parser.add_argument("--modes", default="cold,warm", help="cold,warm (default) | cold | warm")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="repository to run train.py from")
    parser.add_argument("--cache", type=Path, help="a stage-1 cache to reuse for warm runs (default: a fresh one)")
    parser.add_argument("--out", type=Path, help="JSON path (default: a new bench/results/main_job-<time>.json)")
    parser.add_argument("--profile", action="store_true", help="instead of timing: where one warm run's time goes")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if not set(modes) <= {"cold", "warm"} or not modes:
        parser.error(f"--modes={args.modes!r}: choose cold, warm or cold,warm")
    if args.cache and modes != ["warm"]:
        parser.error("--cache is for warm runs only: add --modes warm")
    repeats = 1 if args.quick else args.repeats
    overrides = (QUICK if args.quick else []) + args.set
    checkout = args.checkout.resolve()
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
               "checkout": str(checkout), "load_at_start": os.getloadavg()}  # fmt: skip
    print(f"{machine['cpu']}, {machine['cores']} cores, load average {machine['load_at_start'][0]:.2f}")
    if args.profile:
        return profile(args, checkout, overrides, machine)

    rows = []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory(prefix="qrec-stage1-") as fresh:
            cache = args.cache or fresh
            for mode in modes:  # warm alone: an untimed run fills the cache first (unless --cache has it)
                if mode == "warm" and "cold" not in modes and not args.cache:
                    run_job(checkout, args.model, Path(cache), overrides)
                run = run_job(checkout, args.model, Path(cache), overrides)
                row = {"repeat": repeat, "mode": mode, **breakdown(run), "load_1min": run["load_before"][0]}
                rows.append({**row, "run": run})
                print(f"  {mode:<4} #{repeat}: " + ", ".join(f"{k} {fmt(v)}" for k, v in row.items()
                                                            if k not in ("repeat", "mode")))  # fmt: skip

    columns = [c for c in ("wall_s", "startup_s", "data_s", "stage1_s", "frozen_s", "stage2_s", "eval_s",
                           "stage1_steps_per_s", "stage2_steps_per_s", "test_rmse", "load_1min") if c in rows[0]]
    summary = {}
    print(f"\n{args.model} {' '.join(overrides)}: median over {repeats} repeat(s)")
    print("| mode | " + " | ".join(columns) + " |\n|" + "---|" * (len(columns) + 1))
    for mode in modes:
        mine = [r for r in rows if r["mode"] == mode]
        summary[mode] = {c: statistics.median(r[c] for r in mine) if all(r.get(c) is not None for r in mine) else None
                         for c in columns}  # fmt: skip
        print(f"| {mode} | " + " | ".join(fmt(summary[mode][c]) for c in columns) + " |")
    write(args.out, "main_job", {"machine": machine, "model": args.model, "overrides": overrides, "repeats": repeats,
                                 "summary": summary, "runs": rows, "load_at_end": os.getloadavg()})  # fmt: skip


def profile(args: argparse.Namespace, checkout: Path, overrides: list[str], machine: dict) -> None:
    """One warm run under Lightning's SimpleProfiler, and the imports' cost; tables + JSON."""
    imports = job_profile.import_seconds(checkout)
    with tempfile.TemporaryDirectory(prefix="qrec-stage1-") as fresh, \
            tempfile.TemporaryDirectory(prefix="qrec-profile-") as report_dir:  # fmt: skip
        cache = args.cache or Path(fresh)
        if not args.cache:
            run_job(checkout, args.model, cache, overrides)  # fills the stage-1 cache
        run = run_job(checkout, args.model, cache, overrides + job_profile.profiler_overrides(Path(report_dir)))
        report = job_profile.read_report(Path(report_dir) / "fit-profile.txt")
    row = breakdown(run)
    parts = job_profile.step_parts(report, int(row["stage2_steps"]))
    print(f"\n{args.model} {' '.join(overrides)}: one warm run, profiled: " + ", ".join(
        f"{k} {fmt(v)}" for k, v in row.items()))  # fmt: skip
    job_profile.print_tables(imports, parts, row["stage2_steps_per_s"])
    write(args.out, "main_job_profile", {"machine": machine, "model": args.model, "overrides": overrides,
                                         "run": {**row, "run": run}, "imports_s": imports, "stage2_parts_s": parts,
                                         "load_at_end": os.getloadavg()})  # fmt: skip


def write(path: Path | None, stem: str, payload: dict) -> None:
    out = path or ROOT / "bench" / "results" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
