"""Loading checkpoints a user points qrec at (``model.teacher_ckpt``, ``ckpt_path``) without running their code.

``torch.load(weights_only=False)`` unpickles arbitrary objects, so a crafted file runs its own code
the moment it is opened. Files a user supplies are loaded with ``weights_only=True`` (tensors, numbers,
strings and plain containers only); ``weights_only=False`` is kept only for checkpoints the running
process wrote itself, through :func:`load_own_checkpoint` (the one place that trust is granted).
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


def load_own_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """A Lightning checkpoint this process wrote itself (a best/last checkpoint of its own Trainer).

    Full unpickling (``weights_only=False``) is safe only because the file never came from a user; never pass a
    path from the config here (use :func:`load_user_checkpoint`).
    """
    return torch.load(path, map_location=map_location, weights_only=False)
