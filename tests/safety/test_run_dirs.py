"""Runs started at the same moment get their own output directories (real processes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from qrec import config

ROOT = Path(__file__).resolve().parents[2]


def test_two_runs_started_together_get_their_own_directories(tmp_path):
    env = {**os.environ, "QREC_DATA_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen([sys.executable, str(ROOT / "train.py"), f"model={model}", "data=synthetic",
                          "trainer.max_epochs=1", "+trainer.enable_progress_bar=false"],
                         cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for model in ("bias", "svd")
    ]  # fmt: skip
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), [out[-2000:] for out in outputs]
    runs = sorted((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 2, runs  # distinct, even within the same second (same second: same prefix)
    seen = set()
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        hydra_cfg = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
        assert metrics["model"] == hydra_cfg["model"]["_target_"].rsplit(".", 1)[-1]
        assert str(run) in "".join(outputs)  # each process reported its own directory
        seen.add(metrics["model"])
    assert seen == {"BiasModule", "SVDModule"}


def test_output_directories_end_in_the_per_process_id():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config.CONF), version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True)
    assert cfg.hydra.run.dir.endswith("_" + config.RUN_ID)
    assert cfg.hydra.sweep.dir.endswith("_" + config.RUN_ID)
    ids = {subprocess.run([sys.executable, "-c", "from qrec.config import RUN_ID; print(RUN_ID)"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout for _ in range(2)}  # fmt: skip
    assert len(ids) == 2  # every launch draws its own
