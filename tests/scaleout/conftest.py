"""Run `python train.py ...` as a user would (DDP and launchers re-run or pickle the script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qrec.config import CONF

TRAIN = CONF.parent / "train.py"


@pytest.fixture
def train(tmp_path):
    """``train(*overrides)`` runs train.py in ``tmp_path`` (data cache there too); returns its output."""

    def run(*overrides: str, timeout: int = 600) -> str:
        env = {**os.environ, "QREC_DATA_DIR": str(tmp_path / "cache"), "OMP_WAIT_POLICY": "PASSIVE",
               "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
               "HYDRA_FULL_ERROR": "1",
               # jobs that submitit or joblib start import qrec by name: this checkout's, not an installed one
               "PYTHONPATH": os.pathsep.join(filter(None, [str(CONF.parent), os.environ.get("PYTHONPATH")])),
               }  # fmt: skip
        done = subprocess.run([sys.executable, str(TRAIN), *overrides], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout + done.stderr

    return run


@pytest.fixture
def metrics():
    """``metrics(job_dir)``: the job's metrics.json."""
    return lambda job_dir: json.loads((Path(job_dir) / "metrics.json").read_text())
