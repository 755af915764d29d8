"""Import optional dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRAS = {"pennylane": "quantum", "dimod": "qubo", "dwave": "qubo", "dwave.samplers": "qubo",
          "dwave.system": "qubo", "wandb": "wandb", "optuna": "optuna", "pyarrow": "parquet"}  # fmt: skip


def require(module: str) -> ModuleType:
    """``importlib.import_module(module)``, or an ImportError saying which qrec extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        extra = EXTRAS.get(module) or EXTRAS.get(module.split(".")[0], "all")
        raise ImportError(
            f"{module} is not installed; it comes with qrec's `{extra}` extra: pip install -e '.[{extra}]'"
        ) from err
