"""Shared test helpers: compose the real Hydra config with overrides, outputs under tmp_path."""

from __future__ import annotations

import pytest

from qrec.config import CONF, compose_config
from qrec.console import warning_filter_lines

__all__ = ["CONF", "compose_config"]


def pytest_configure(config):
    """The known-harmless warnings of qrec/console.py, the same list train.py silences."""
    for line in warning_filter_lines():
        config.addinivalue_line("filterwarnings", line)


@pytest.fixture
def make_cfg(tmp_path):
    """``make_cfg("model=als", ...)`` -> composed config writing into a fresh tmp dir."""
    return lambda *overrides: compose_config(list(overrides), tmp_path)
