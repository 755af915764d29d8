"""Compose the same config `python train.py <overrides>` would run, outside Hydra's app (tests, benchmarks)."""

from __future__ import annotations

import secrets
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

CONF = Path(__file__).resolve().parents[1] / "conf"
# Decided once per launching process: two runs started in the same second get different output
# directories (`hydra.run.dir` / `hydra.sweep.dir` end in it). Lightning's DDP relaunch passes rank 0's
# resolved `hydra.run.dir` to the other ranks explicitly, so they never draw their own.
RUN_ID = secrets.token_hex(3)


def register_resolvers() -> None:
    """``${qrec.uid:}``: this process's :data:`RUN_ID` (used in conf/train.yaml's output directories)."""
    if not OmegaConf.has_resolver("qrec.uid"):
        OmegaConf.register_new_resolver("qrec.uid", lambda: RUN_ID)


register_resolvers()


def compose_config(overrides: list[str], output_dir: str | Path) -> DictConfig:
    """The composed train config with ``paths.output_dir`` set to ``output_dir``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def compose_model(name: str, seed: int) -> DictConfig:
    """What ``python train.py model=<name> seed=<seed>`` composes (model, data and trainer keys), e.g. for an
    ensemble's members; works inside a running Hydra app too."""
    overrides = [f"model={name}", f"seed={seed}"]
    if GlobalHydra.instance().is_initialized():  # inside train.py: reuse its config search path
        return compose(config_name="train", overrides=overrides)
    return compose_config(overrides, ".")
