"""Random-number state in checkpoints, so a resumed run continues exactly as an uninterrupted one.

Lightning restores weights, optimizers, loops and callback states from a checkpoint, but not the global
random generators: after a resume the training sampler's shuffle (drawn from torch's global generator
when each epoch's loader is iterated), dropout and any numpy/python sampling would follow another
sequence than the uninterrupted run, and so would the metrics. This callback stores the torch (CPU and
CUDA), numpy and python generator states with every checkpoint and puts them back on resume (Lightning
calls ``load_state_dict`` after the model is built, before the first resumed batch). States are kept as
tensors and plain numbers, so the checkpoint still loads with ``weights_only=True``.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback


class RNGStateCheckpoint(Callback):
    """Save the global RNG states with each checkpoint and restore them on resume."""

    def state_dict(self) -> dict:
        np_state = np.random.get_state(legacy=False)
        version, internal, gauss = random.getstate()
        state = {
            "torch": torch.get_rng_state(),
            "numpy": {"bit_generator": np_state["bit_generator"], "pos": int(np_state["state"]["pos"]),
                      "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                      "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
            "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        }  # fmt: skip
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict) -> None:
        torch.set_rng_state(state["torch"])
        n = state["numpy"]
        np.random.set_state({"bit_generator": n["bit_generator"], "has_gauss": n["has_gauss"], "gauss": n["gauss"],
                             "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]}})  # fmt: skip
        p = state["python"]
        random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss"]))
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
