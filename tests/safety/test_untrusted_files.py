"""Checkpoints are loaded with weights_only=True: a crafted checkpoint never runs its code."""

import pytest
import torch

from qrec.checkpoints import load_user_checkpoint
from qrec.pipeline import run


class _Payload:
    """Unpickling this calls open(marker, "w"): the file appears iff the pickle's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted(path, marker):
    torch.save({"state_dict": {"user_factors": torch.zeros(2, 2), "evil": _Payload(marker)}}, path)
    return path


def test_the_crafted_file_really_runs_code_when_trusted(tmp_path):
    marker = tmp_path / "ran"
    torch.load(crafted(tmp_path / "evil.ckpt", marker), weights_only=False)
    assert marker.exists()  # so the test below would catch an unsafe load


def test_crafted_teacher_checkpoint_is_refused_unopened(make_cfg, tmp_path):
    marker = tmp_path / "ran"
    path = crafted(tmp_path / "teacher.ckpt", marker)
    cfg = make_cfg("experiment=two_tower", "data=synthetic_implicit", "logger=none", "callbacks=none",
                   "++trainer.fast_dev_run=true", "model.mode=distill", "model.dim=2",
                   f"model.teacher_ckpt={path}")  # fmt: skip
    with pytest.raises(ValueError, match=r"model\.teacher_ckpt=.*teacher\.ckpt is not a plain checkpoint"):
        run(cfg)
    assert not marker.exists()


def test_resume_checkpoint_is_loaded_weights_only(make_cfg, tmp_path):
    marker = tmp_path / "ran"
    path = crafted(tmp_path / "last.ckpt", marker)
    cfg = make_cfg("model=bias", "data=synthetic", "logger=none", f"ckpt_path={path}")
    with pytest.raises(ValueError, match=r"ckpt_path=.*last\.ckpt is not a plain checkpoint"):
        run(cfg)
    assert not marker.exists()


def test_missing_and_plain_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.teacher_ckpt=.*nope.ckpt: no such file"):
        load_user_checkpoint(tmp_path / "nope.ckpt", "model.teacher_ckpt")
    torch.save({"state_dict": {"user_factors": torch.ones(2, 2)}}, tmp_path / "ok.ckpt")
    assert load_user_checkpoint(tmp_path / "ok.ckpt", "model.teacher_ckpt")["state_dict"]["user_factors"].sum() == 4


def test_best_checkpoint_path_named_by_a_resumed_file_is_loaded_weights_only(tmp_path):
    # After a resume, Lightning's ModelCheckpoint takes best_model_path from the resumed file, so the "best
    # checkpoint" a refit reads its epoch count from may be any file that checkpoint names.
    from qrec.pipeline import _best_epochs

    marker = tmp_path / "ran"
    with pytest.raises(ValueError, match=r"best_model_path=.*best\.ckpt is not a plain checkpoint"):
        _best_epochs(None, str(crafted(tmp_path / "best.ckpt", marker)))
    assert not marker.exists()
