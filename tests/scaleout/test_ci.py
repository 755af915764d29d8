"""`.ci/run`'s torch step: the local wheel where the machine has one, else PyTorch's CPU index, decided
by an offline dry run that fails at once (never a wait on an unreachable index)."""

from __future__ import annotations

import os
import subprocess
import sys

from qrec.config import CONF

CI = CONF.parent / ".ci" / "run"


def _torch_command(env: dict) -> str:
    done = subprocess.run(["bash", str(CI), "--torch-command"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_this_machine_installs_torch_without_an_index():
    assert _torch_command(dict(os.environ)) == "pip install --no-index torch==2.13.0"


def test_a_fresh_machine_gets_the_cpu_index(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PATH=f"{tmp_path / 'venv' / 'bin'}{os.pathsep}{env['PATH']}", PIP_CONFIG_FILE=os.devnull)
    command = _torch_command(env)  # no torch, no wheel directory, no pip config: like a GitHub runner
    assert command == "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
