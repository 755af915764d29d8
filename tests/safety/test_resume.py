"""A run killed (SIGKILL, a real process) mid-training and resumed from last.ckpt ends with the same
metrics as an uninterrupted run of the same seed, for a closed-form and a neural model."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = {
    "als": ["model=als", "model.rank=4", "trainer.max_epochs=4"],
    "varnet": ["model=varnet", "model.k=2", "model.n_layers=1", "trainer.max_epochs=3", "data.batch_size=256"],
}
METRICS = ("val/rmse", "test/rmse", "test/mae", "test/pred_std", "epochs")


def _train(run_dir: Path, overrides: list[str], env: dict) -> subprocess.Popen:
    cmd = [sys.executable, str(ROOT / "train.py"), "data=synthetic", "logger=none",
           "+trainer.enable_progress_bar=false", f"hydra.run.dir={run_dir}", *overrides]  # fmt: skip
    return subprocess.Popen(cmd, cwd=run_dir.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def _finish(proc: subprocess.Popen) -> None:
    out = proc.communicate(timeout=400)[0]
    assert proc.returncode == 0, out[-3000:]


@pytest.mark.parametrize("model", list(MODELS))
def test_killed_run_resumed_from_last_ckpt_matches_uninterrupted(tmp_path, model):
    env = {**os.environ, "QREC_DATA_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "safety"), os.environ.get("PYTHONPATH", "")])}
    full, killed, marker = tmp_path / "full", tmp_path / "killed", tmp_path / "hanging"
    reference = _train(full, MODELS[model], env)
    victim = _train(killed, [*MODELS[model], "+callbacks.hang._target_=resume_helpers.HangAtEpoch",
                             "+callbacks.hang.epoch=1", f"+callbacks.hang.marker={marker}"], env)  # fmt: skip
    deadline = time.monotonic() + 400
    while not marker.exists():  # epoch 0 is checkpointed, epoch 1 has trained: kill it now
        assert victim.poll() is None, victim.communicate()[0][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL and not (killed / "metrics.json").exists()
    last = killed / "checkpoints" / "last.ckpt"
    assert last.is_file()
    # Resume in the same run directory, as the README says (the best checkpoint so far is kept there).
    _finish(_train(killed, [*MODELS[model], f"ckpt_path={last}"], env))
    _finish(reference)
    resumed = json.loads((killed / "metrics.json").read_text())
    uninterrupted = json.loads((full / "metrics.json").read_text())
    for key in METRICS:
        assert resumed[key] == pytest.approx(uninterrupted[key], rel=1e-6, abs=1e-9), key
