"""Shared test helpers: compose the real Hydra config with overrides, outputs under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config `python train.py <overrides>` would run, writing into ``output_dir``."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def make_cfg(tmp_path):
    """``make_cfg("model=als", ...)`` -> composed config writing into a fresh tmp dir."""
    return lambda *overrides: compose_config(list(overrides), tmp_path)
