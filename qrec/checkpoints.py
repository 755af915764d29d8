"""Loading checkpoints without running their code.

``torch.load(weights_only=False)`` unpickles arbitrary objects, so a crafted file runs its own code the moment
it is opened. Every checkpoint qrec opens is loaded with ``weights_only=True`` (tensors, numbers, strings and
plain containers only): the files a user points at (``model.teacher_ckpt``, ``ckpt_path``) and also the best
checkpoints of qrec's own trainers, because after a resume Lightning's ``ModelCheckpoint`` takes
``best_model_path`` from the resumed file, so "this run's best checkpoint" may be any path that file names.
qrec's own checkpoints hold nothing else, so nothing needs full unpickling.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch


def load_user_checkpoint(path: str | Path, key: str) -> dict:
    """The checkpoint at ``path`` (named by config key ``key`` in errors), loaded with ``weights_only=True``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is not a plain checkpoint (it holds objects other than tensors and containers,
            or is not a torch file at all); it is refused without running any of its code.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{key}={path}: no such file. Point {key} at a checkpoint a qrec run wrote.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"{key}={path} is not a plain checkpoint and was refused unopened ({first}). qrec loads files you "
            "supply with torch.load(weights_only=True): tensors, numbers, strings and containers only. Use a "
            "checkpoint written by a qrec run (e.g. <run>/checkpoints/best.ckpt of `python train.py model=als`)."
        ) from err
