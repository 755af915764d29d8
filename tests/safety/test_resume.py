"""A run killed (SIGKILL, a real `train.py` process) mid-training and resumed from last.ckpt ends with the
same metrics as an uninterrupted run of the same seed, for a closed-form and a neural model. The reference
and the resumed run go through the same `qrec.pipeline.run` in-process (saving two process starts)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qrec.config import compose_config
from qrec.pipeline import run

ROOT = Path(__file__).resolve().parents[2]
MODELS = {
    "als": ["model=als", "model.rank=4", "trainer.max_epochs=4"],
    "varnet": ["model=varnet", "model.k=2", "model.n_layers=1", "trainer.max_epochs=3", "data.batch_size=256"],
}
COMMON = ["data=synthetic", "logger=none", "+trainer.enable_progress_bar=false"]
METRICS = ("val/rmse", "test/rmse", "test/mae", "test/pred_std", "epochs")


def _train(run_dir: Path, overrides: list[str], env: dict) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "train.py"), *COMMON, f"hydra.run.dir={run_dir}", *overrides]
    return subprocess.Popen(cmd, cwd=run_dir.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


@pytest.fixture
def one_thread():
    """The killed run is a 1-thread subprocess; run the in-process ones with the same summation order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("model", list(MODELS))
def test_killed_run_resumed_from_last_ckpt_matches_uninterrupted(tmp_path, monkeypatch, one_thread, model):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path / "cache"))
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "safety"), os.environ.get("PYTHONPATH", "")])}
    full, killed, marker = tmp_path / "full", tmp_path / "killed", tmp_path / "hanging"
    killed.mkdir()
    victim = _train(killed, [*MODELS[model], "+callbacks.hang._target_=resume_helpers.HangAtEpoch",
                             "+callbacks.hang.epoch=1", f"+callbacks.hang.marker={marker}"], env)  # fmt: skip
    try:
        # Meanwhile, in this process (one subprocess start saved per run): the uninterrupted reference.
        uninterrupted = run(compose_config([*COMMON, *MODELS[model]], full))
        deadline = time.monotonic() + 400
        while not marker.exists():  # epoch 0 is checkpointed, epoch 1 has trained: kill it now
            assert victim.poll() is None, victim.communicate()[0][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert victim.returncode == -signal.SIGKILL and not (killed / "metrics.json").exists()
    last = killed / "checkpoints" / "last.ckpt"
    assert last.is_file()
    # Resume in the same run directory, as the README says (the best checkpoint so far is kept there).
    resumed = run(compose_config([*COMMON, *MODELS[model], f"ckpt_path={last}"], killed))
    assert json.loads((killed / "metrics.json").read_text())["epochs"] == resumed["epochs"]
    for key in METRICS:
        assert resumed[key] == pytest.approx(uninterrupted[key], rel=1e-6, abs=1e-9), key
