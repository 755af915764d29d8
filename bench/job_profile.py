"""Where the main job's time goes: start-up imports by package, and a stage-2 step by part.

Used by ``python bench/main_job.py --profile``. Two measurements, each in a fresh process:

- imports: ``python -X importtime -c "import qrec.pipeline"`` (what ``train.py`` imports before composing
  the config), each module's own time summed per top-level package; ``torch._dynamo`` is its own row
  (Lightning's ``fabric.wrappers`` imports it), and so is the bare interpreter's start;
- stage 2: one warm run of the job with Lightning's ``SimpleProfiler`` (``trainer.profiler``), whose report
  times every hook and loop action; its rows are grouped into the parts of a training step, per step.
  The profiler itself adds a few microseconds per hook (the run's steps/s are reported beside it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path


def checkout_env(checkout: Path, **extra: str) -> dict:
    """This process's environment with ``checkout`` first on PYTHONPATH (and ``extra`` variables set)."""
    path = os.pathsep.join(p for p in (str(checkout), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, **extra, "PYTHONPATH": path}


def import_seconds(checkout: Path, module: str = "qrec.pipeline") -> dict[str, float]:
    """Seconds per top-level package to import ``module`` (own time of each module, summed)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=checkout_env(checkout))
    out = {"interpreter start": time.perf_counter() - start}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=checkout,
                          env=checkout_env(checkout), capture_output=True, text=True, check=True)  # fmt: skip
    packages: dict[str, float] = defaultdict(float)
    for line in proc.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[0].strip().isdigit():
            continue  # the header, or a warning
        name = fields[2].strip()
        group = "torch._dynamo" if name.startswith("torch._dynamo") else name.split(".")[0]
        packages[group] += int(fields[0]) / 1e6
    out.update(sorted(packages.items(), key=lambda kv: -kv[1]))
    return out


def profiler_overrides(dirpath: Path) -> list[str]:
    """train.py overrides that make the trainer write its SimpleProfiler report under ``dirpath``."""
    return ["+trainer.profiler._target_=lightning.pytorch.profilers.SimpleProfiler",
            f"+trainer.profiler.dirpath={dirpath}", "+trainer.profiler.filename=profile"]  # fmt: skip


def read_report(path: Path) -> dict[str, tuple[int, float]]:
    """SimpleProfiler's text report -> {action: (calls, total seconds)}."""
    rows = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("Action", "Total"):
            try:
                rows[cells[0]] = (int(cells[2]), float(cells[3]))
            except ValueError:
                continue
    return rows


def step_parts(report: dict[str, tuple[int, float]], steps: int) -> dict[str, float]:
    """Seconds of the training epochs by part of a step (the parts add up to the epochs' total).

    Validation counts as part of the epochs (Lightning runs it at each epoch's end), which holds when no
    sanity-check validation runs before training (qrec's trainers set ``num_sanity_val_steps: 0``).
    """

    def total(match) -> float:
        return sum(seconds for action, (_, seconds) in report.items() if match(action))

    def one(suffix: str, prefix: str = "") -> float:
        return total(lambda a: a.startswith(prefix) and a.endswith(suffix))

    forward, backward = one(".training_step", "[Strategy]"), one(".backward", "[Strategy]")
    optimizer = one(".optimizer_step", "[LightningModule]") - forward - backward  # the closure runs inside it
    batch_hooks = total(lambda a: a.startswith("[Callback]") and (".on_train_batch_" in a))
    validation = total(lambda a: a.startswith("[Strategy]") and a.endswith(".validation_step")) + total(
        lambda a: a.startswith("[_EvaluationLoop]") or "validation_epoch_end" in a)  # fmt: skip
    parts = {
        "forward + loss": forward, "backward": backward, "optimizer step (Adam, hooks around backward)": optimizer,
        "zero_grad": one(".optimizer_zero_grad"), "fetch a batch": one("train_dataloader_next"),
        "move it to the device": one(".batch_to_device", "[Strategy]"),
        "callbacks' per-batch hooks (progress bar, checkpoint, timer)": batch_hooks,
        "validation after each epoch": validation,
        "checkpoint saving": one("save_checkpoint"),
    }  # fmt: skip
    parts["Lightning's loop, the rest"] = one("run_training_epoch") - sum(parts.values())
    parts["steps"] = steps
    return parts


def print_tables(imports: dict[str, float], parts: dict[str, float], steps_per_s: float | None) -> None:
    """Markdown tables: import seconds by package; stage-2 seconds and ms per step by part."""
    print("\n| start-up: import of | s |\n|---|---|")
    for name, seconds in imports.items():
        if seconds >= 0.05:
            print(f"| {name} | {seconds:.2f} |")
    print(f"| (all imports) | {sum(v for k, v in imports.items() if k != 'interpreter start'):.2f} |")
    steps = parts["steps"]
    epochs = sum(v for k, v in parts.items() if k != "steps")
    print(f"\n| stage 2 ({steps:.0f} steps, {epochs:.1f} s in training epochs"
          f"{f', {steps_per_s:.0f} steps/s' if steps_per_s else ''}) | s | ms / step | share |")  # fmt: skip
    print("|---|---|---|---|")
    for name, seconds in parts.items():
        if name != "steps":
            print(f"| {name} | {seconds:.2f} | {1e3 * seconds / steps:.2f} | {seconds / epochs:.0%} |")
