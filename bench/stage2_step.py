"""Where a stage-2 step of the LSTM hybrid spends its time, as the embedding tables grow.

    python bench/stage2_step.py             # the four table shapes of bench/scale.py (about a minute)
    python bench/stage2_step.py --steps 20  # a smoke run

``bench/scale.py`` finds the hybrid's stage-2 epoch growing faster than the ratings (slope > 1 from 5 M to
20 M). This script profiles one step of the same head (``SequenceHead``, single step, with the
``model=varnet_lstm`` config's sizes, dropout, loss, learning rate, weight decay, batch size and thread count, on
the fused Adam the model uses) for each user × item table shape of the scale benchmark, on random batches:
forward + loss, backward, optimizer step and zero_grad, in ms per step. A part whose time grows with the table
size, not the batch, is what makes the epoch super-linear. Prints a table; writes JSON
(bench/results/stage2_step-<time>.json unless --out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, config, machine, table  # noqa: E402
from scale import SHAPES  # noqa: E402

PARTS = ("forward", "backward", "adam", "zero_grad")


def profile(n_users: int, n_items: int, cfg, steps: int, warmup: int = 10) -> dict:
    """Mean ms per step of each part for one table shape."""
    from qrec.models.components.optim import adam
    from qrec.models.components.sequence_head import SequenceHead
    from qrec.models.hybrid import LOSSES

    m, batch = cfg.model, cfg.data.batch_size
    torch.manual_seed(0)
    head = SequenceHead(n_users, n_items, m.emb_dim, m.hidden, m.dropout, m.cell, single_step=True)
    optimizer = adam([{"params": head.parameters(), "lr": m.lr, "weight_decay": m.weight_decay}])
    seconds = dict.fromkeys(PARTS, 0.0)
    for step in range(warmup + steps):
        users, items = torch.randint(0, n_users, (batch,)), torch.randint(0, n_items, (batch, 1))
        values, target = torch.rand(batch, 1), torch.rand(batch) * 4 + 1
        marks = [time.perf_counter()]
        loss = LOSSES[m.loss](3 + head(values, users, items), target)  # the model's own loss (rmse)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        optimizer.zero_grad()
        marks.append(time.perf_counter())
        if step >= warmup:
            for part, start, end in zip(PARTS, marks, marks[1:]):
                seconds[part] += end - start
    row = {f"{part}_ms": 1e3 * s / steps for part, s in seconds.items()}
    return {"users": n_users, "items": n_items, "embedding_rows": n_users + n_items, "batch": batch,
            **row, "step_ms": sum(row.values())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="timed steps per shape (after 10 warm-up steps)")
    parser.add_argument("--out", type=Path, help="JSON path (default bench/results/stage2_step-<time>.json)")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error(f"--steps={args.steps} must be at least 1")
    cfg = config("model=varnet_lstm")
    from qrec.pipeline import torch_threads

    with torch_threads(cfg.get("threads")):  # as `python train.py model=varnet_lstm` runs it
        rows = [{"ratings": n, **profile(*shape, cfg, args.steps)} for n, shape in SHAPES.items()]
    print()
    table(rows, ["ratings", "users", "items", "embedding_rows", "batch", *(f"{p}_ms" for p in PARTS), "step_ms"])
    out = args.out or RESULTS / f"stage2_step-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "threads": cfg.get("threads"), "steps": args.steps,
                               "rows": rows}, indent=2))  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
