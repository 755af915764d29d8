"""Shared test helpers: compose the real Hydra config with overrides, outputs under tmp_path."""

from __future__ import annotations

import os

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


@pytest.fixture(autouse=True)
def _fresh_stage1_cache(tmp_path, monkeypatch):
    """Stage-1 and ensemble-member caches (qrec.models.cache) live in this test's tmp_path: no test writes to
    the user's cache, and a re-run can never be served a model fitted by an earlier run (or by older code)."""
    from qrec.models import cache

    real = cache.default_root  # a test that sets QREC_DATA_DIR itself (to a tmp dir) keeps it
    fresh = tmp_path / "model-cache"
    monkeypatch.setattr(cache, "default_root", lambda: real() if os.environ.get("QREC_DATA_DIR") else fresh)
