"""`python -m qrec.report` on a tiny multirun directory: the table, the paired test and the PNGs."""

import subprocess
import sys

from qrec.pipeline import run
from tests.conftest import compose_config


def test_report_on_fake_multirun(tmp_path):
    for model in ("als", "bias"):
        for seed in (0, 1):
            cfg = compose_config([f"model={model}", "data=synthetic", f"seed={seed}", "trainer.max_epochs=3"],
                                 tmp_path / "multirun" / f"{model}_{seed}")  # fmt: skip
            run(cfg)
    result = subprocess.run([sys.executable, "-m", "qrec.report", str(tmp_path / "multirun")],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "multirun" / "results.md").read_text()
    assert "| ALSModule | 2 |" in text and "| BiasModule | 2 |" in text
    bias_row = next(line for line in text.splitlines() if line.startswith("| BiasModule"))
    assert "(p=" in bias_row  # paired against ALS on the same seeds
    for png in ("rmse_vs_time.png", "prediction_histograms.png", "learning_curves.png"):
        assert (tmp_path / "multirun" / png).stat().st_size > 1000


def test_report_on_empty_dir_says_so(tmp_path):
    result = subprocess.run([sys.executable, "-m", "qrec.report", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0 and "No metrics.json" in result.stderr
