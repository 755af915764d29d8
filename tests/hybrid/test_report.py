"""`python -m qrec.report` on runs the real pipeline wrote: the arrays it needs are saved, the report pairs them."""

import subprocess
import sys

import numpy as np

from qrec.pipeline import run
from tests.conftest import compose_config


def test_report_on_pipeline_multirun(tmp_path):
    for model in ("als", "bias"):
        for seed in (0, 1):
            cfg = compose_config([f"model={model}", "data=synthetic", f"seed={seed}", "trainer.max_epochs=3"],
                                 tmp_path / "multirun" / f"{model}_{seed}")  # fmt: skip
            run(cfg)
    out = tmp_path / "multirun" / "als_0"
    users, ratings = np.load(out / "test_users.npy"), np.load(out / "test_ratings.npy")
    assert len(users) == len(ratings) == len(np.load(out / "test_predictions.npy")) > 0
    result = subprocess.run([sys.executable, "-m", "qrec.report", str(tmp_path / "multirun"), "--resamples", "500"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "multirun" / "results.md").read_text()
    assert "| ALSModule | classical | 2 (seed 0, 1) |" in text
    bias_row = next(line for line in text.splitlines() if line.startswith("| BiasModule | 2 |"))
    assert "2/2" in bias_row or "1/2" in bias_row or "0/2" in bias_row  # a user-level interval per seed
    assert "unit: **seed**" in text
    for png in ("rmse_vs_time.png", "prediction_histograms.png", "learning_curves.png"):
        assert (tmp_path / "multirun" / png).stat().st_size > 1000


def test_report_on_empty_dir_says_so(tmp_path):
    result = subprocess.run([sys.executable, "-m", "qrec.report", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0 and "No metrics.json" in result.stderr
