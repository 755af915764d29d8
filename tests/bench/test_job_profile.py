"""bench/job_profile.py: Lightning's SimpleProfiler report read back and split into a step's parts."""

import sys
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import job_profile  # noqa: E402


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.layer(batch[0]).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters())


def test_report_parts_add_up_to_the_training_epochs(tmp_path):
    loader = DataLoader(TensorDataset(torch.randn(40, 4)), batch_size=8)
    profiler = L.pytorch.profilers.SimpleProfiler(dirpath=tmp_path, filename="profile")
    # num_sanity_val_steps=0 as conf/trainer/default.yaml: validation runs only inside the epochs
    trainer = L.Trainer(max_epochs=2, profiler=profiler, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(Tiny(), loader, loader)
    report = job_profile.read_report(tmp_path / "fit-profile.txt")
    assert report["run_training_batch"][0] == 10 and report["run_training_epoch"][0] == 2
    parts = job_profile.step_parts(report, steps=10)
    assert parts["steps"] == 10
    assert parts["forward + loss"] > 0 and parts["backward"] > 0 and parts["fetch a batch"] > 0
    assert parts["validation after each epoch"] > 0
    assert parts["optimizer step (Adam, hooks around backward)"] >= 0
    assert parts["Lightning's loop, the rest"] >= 0  # no part counted twice or outside the epochs
    seconds = sum(v for k, v in parts.items() if k != "steps")
    assert abs(seconds - report["run_training_epoch"][1]) < 1e-9  # the parts partition the epochs' time


def test_import_seconds_groups_modules_by_package(tmp_path):
    seconds = job_profile.import_seconds(tmp_path, module="json.decoder")
    assert seconds["interpreter start"] > 0
    assert seconds["json"] > 0 and all(value >= 0 for value in seconds.values())
