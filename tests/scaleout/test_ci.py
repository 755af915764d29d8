"""`.ci/run`'s torch step: the local wheel where the machine has one, else PyTorch's CPU index, decided
by an offline dry run that fails at once (never a wait on an unreachable index)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from qrec.config import CONF

CI = CONF.parent / ".ci" / "run"


def _torch_command(env: dict) -> str:
    done = subprocess.run(["bash", str(CI), "--torch-command"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory) -> dict:
    """A fresh venv with no torch and no pip configuration: like a GitHub runner."""
    venv = tmp_path_factory.mktemp("ci") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", PIP_CONFIG_FILE=os.devnull)
    return env


def test_a_machine_with_the_wheel_on_disk_installs_it_without_an_index(bare_env, tmp_path):
    # These machines keep the CPU wheel in a directory pip searches (find-links): a stand-in wheel there.
    with zipfile.ZipFile(tmp_path / "torch-2.13.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("torch-2.13.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: torch\nVersion: 2.13.0\n")
        wheel.writestr("torch-2.13.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("torch-2.13.0.dist-info/RECORD", "")
    assert _torch_command({**bare_env, "PIP_FIND_LINKS": str(tmp_path)}) == "pip install torch==2.13.0"


def test_a_fresh_machine_gets_the_cpu_index(bare_env):
    command = _torch_command(bare_env)  # no torch wheel anywhere pip looks offline
    assert command == "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
