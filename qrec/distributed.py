"""Multi-process (DDP) helpers: exact evaluation over sharded batches, and safe DDP launches from Hydra.

Evaluation is *sharded*: under DDP, Lightning gives each rank a share of the validation/test batches
(its DistributedSampler pads the last share by repeating batches so every rank runs the same number of
steps). Each model keeps a key per evaluated row (the row's index in the split, or the user id for
rankers), and :func:`gather_rows` gathers every rank's rows, drops the padded repeats and restores the
original order. Metrics are then computed on every rank from the same complete, ordered arrays, so they
equal a single-process run's and are logged identically on all ranks (``sync_dist=True`` averages equal
values, which is exact). Running evaluation on rank 0 alone was rejected: the other ranks would sit idle
and Lightning's checkpoint/early-stopping callbacks need the monitored value on every rank.

Nothing here imports Lightning: it works on ``torch.distributed`` and torchmetrics' gather.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torchmetrics.utilities.distributed import gather_all_tensors

# Environment variables Lightning's subprocess launcher sets in the launching process.
_LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "PL_GLOBAL_SEED")


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_rows(rows: torch.Tensor, *values: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every rank's evaluated rows, once each, in row order.

    Args:
        rows: (n,) int64 keys of this rank's evaluated rows (may repeat: DistributedSampler padding).
        values: tensors with leading dimension n, aligned with ``rows``.

    Returns:
        (rows (m,), *values (m, ...)): the union over ranks, sorted by key, each key once. On one process
        this only sorts and de-duplicates.
    """
    if world_size() > 1:
        rows = torch.cat(gather_all_tensors(rows))
        values = tuple(torch.cat(gather_all_tensors(v)) for v in values)
    order = torch.argsort(rows, stable=True)
    rows = rows[order]
    first = torch.ones_like(rows, dtype=torch.bool)
    first[1:] = rows[1:] != rows[:-1]
    return (rows[first], *(v[order][first] for v in values))


def refuse_closed_form(model: torch.nn.Module, devices: int, closed_form: type | tuple[type, ...]) -> None:
    """Raise before training if a closed-form model is asked to run on several processes.

    Closed-form models solve on the whole training split at once; DDP would only repeat that solve on
    every rank (and torch's DistributedDataParallel refuses modules without trainable parameters).
    """
    if devices > 1 and isinstance(model, closed_form):
        raise ValueError(
            f"{type(model).__name__} is fitted in closed form on the whole training split and cannot be "
            f"split over {devices} processes. Run it in one process (trainer.devices=1, the default "
            "trainer=default/cpu/gpu); use trainer=ddp for gradient-trained models only."
        )


@contextmanager
def ddp_job_scope(output_dir: str) -> Iterator[None]:
    """Make one Hydra job safe to launch DDP children from, and leave no DDP state for the next job.

    Lightning's subprocess launcher re-runs ``sys.argv`` with ``hydra.run.dir=<run dir>`` for ranks > 0.
    Inside a multirun that would re-run the whole sweep in a second sweep directory, so here the
    children get this job's overrides only and this job's output directory. After the job, the
    launcher's environment variables (``LOCAL_RANK`` & co.) are removed and the process group is
    destroyed, so the next job of the sweep launches its own ranks instead of waiting for stale ones.
    """
    saved_env = {key: os.environ.get(key) for key in _LAUNCH_ENV}
    saved_argv = list(sys.argv)
    launching = "LOCAL_RANK" not in os.environ  # ranks > 0 (and SLURM tasks) are launched from outside
    if launching:
        _point_children_at_job(output_dir)
    try:
        yield
    finally:
        sys.argv[:] = saved_argv
        if launching:
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


def _point_children_at_job(output_dir: str) -> None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sys.argv[:] = [sys.argv[0], *hydra_cfg.overrides.task]  # this job's overrides, no `-m`
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = str(output_dir)  # Lightning passes it on as hydra.run.dir: the job's own directory
