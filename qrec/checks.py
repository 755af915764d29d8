"""Reject configurations that would train nothing, before any data or model work starts.

A learning rate of 0, zero epochs or zero steps make Lightning (or a closed-form model) return the
metrics of an untrained model with exit code 0, which a sweep would rank as a real result; a bad seed
fails deep inside numpy; a resume checkpoint that is missing or not a plain checkpoint would fail
only after the data is loaded. :func:`check_config` turns each of these into a ``ValueError`` naming the
config key, the value and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

SEED_MAX = 2**32 - 1  # numpy's SeedSequence and Lightning's seed_everything accept [0, 2**32 - 1]


def check_config(cfg: DictConfig) -> None:
    """Raise ``ValueError`` for a config that cannot train anything (see the module docstring)."""
    check_seed(cfg.get("seed"))
    model = OmegaConf.to_container(cfg.model, resolve=True) if cfg.get("model") is not None else {}
    for key, value in _walk(model, "model"):
        name = key.rsplit(".", 1)[-1]
        if value is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if (name == "lr" or name.endswith("_lr")) and value <= 0:
            raise ValueError(f"{key}={value}: a learning rate must be > 0 (e.g. {key}=0.01); otherwise nothing trains.")
        if name.endswith("weight_decay") and value < 0:
            raise ValueError(f"{key}={value}: weight decay must be ≥ 0 (0 switches it off).")
        if name == "base_epochs" and value < 1:
            raise ValueError(f"{key}={value}: stage 1 needs at least one epoch ({key}=1 or more).")
    threads = cfg.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads={threads!r}: give a number of torch threads ≥ 1, or null for torch's default.")
    trainer = cfg.get("trainer") or {}
    max_epochs, max_steps = trainer.get("max_epochs"), trainer.get("max_steps")
    if max_epochs is not None and max_epochs != -1 and max_epochs < 1:
        raise ValueError(
            f"trainer.max_epochs={max_epochs}: nothing would be trained and the metrics would be those of an "
            "untrained model. Use trainer.max_epochs=1 or more (-1: no limit, Lightning's convention)."
        )
    if max_steps == 0:
        raise ValueError("trainer.max_steps=0: nothing would be trained. Use -1 (no limit) or a positive number.")
    if cfg.get("ckpt_path"):  # a file the user points at: it must exist and load without running code
        from qrec.checkpoints import load_user_checkpoint

        load_user_checkpoint(cfg.ckpt_path, "ckpt_path")


def check_seed(seed: Any) -> None:
    """``seed`` must be an integer in [0, 2**32 - 1] (it fixes the split, initialisation and sampling)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed={seed!r}: the seed must be an integer in [0, {SEED_MAX}], e.g. seed=0.")


def _walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) for every leaf of a nested config (lists are leaves)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk(value, f"{prefix}.{key}")
    else:
        yield prefix, node
