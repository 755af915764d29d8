"""Weights & Biases: one run per Hydra job, named, grouped and tagged from the job's config.

Lightning's ``WandbLogger`` reuses ``wandb.run`` when one is open, so without an explicit
``wandb.finish()`` every job of a sweep logged into the first job's run. :func:`job_scope` closes the
job's run at the end of every job (also when it fails), and :class:`WandbLogger` fills in the run's
name (the job's overrides, e.g. ``varnet_lstm seed=1``), group (the sweep directory, else the
experiment), tags (model, data, split, seed) and ``job_type=train``. wandb is imported lazily: nothing
here costs anything when ``logger=wandb`` is not used.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger


def _hydra() -> Any | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def job_name(model: str | None = None) -> str | None:
    """``<model choice> <other overrides>``, e.g. ``varnet_lstm seed=1`` (None outside a Hydra job)."""
    hydra = _hydra()
    if hydra is None:
        return None
    model = model or hydra.runtime.choices.get("model") or "run"
    rest = [o for o in hydra.overrides.task if not o.startswith(("model=", "logger=", "hydra", "+hydra"))]
    return " ".join([model, *rest])


def job_group() -> str | None:
    """The sweep directory in a multirun (one group per sweep), else the ``experiment=`` choice."""
    from hydra.types import RunMode

    hydra = _hydra()
    if hydra is None:
        return None
    if hydra.mode == RunMode.MULTIRUN:
        return str(hydra.sweep.dir)
    return hydra.runtime.choices.get("experiment")


def job_tags(seed: int | None, split: str | None) -> list[str]:
    """``model:…``, ``data:…``, ``split:…``, ``seed:…`` (and ``experiment:…`` when one is used)."""
    hydra = _hydra()
    choices = dict(hydra.runtime.choices) if hydra is not None else {}
    tags = [f"{key}:{choices[key]}" for key in ("model", "data", "experiment") if choices.get(key)]
    tags += [f"split:{split}"] if split else []
    tags += [f"seed:{seed}"] if seed is not None else []
    return tags


class WandbLogger(_LightningWandbLogger):
    """Lightning's WandbLogger with qrec's run identity and the config logged once.

    Args:
        seed, split: for the tags (the logger config passes ``${seed}`` and ``${data.split}``).
        **kwargs: Lightning's ``WandbLogger`` / ``wandb.init`` arguments; ``name``, ``group``, ``tags`` and
            ``job_type`` default to :func:`job_name`, :func:`job_group`, :func:`job_tags` and ``train``.
    """

    def __init__(self, seed: int | None = None, split: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("job_type", "train")
        if kwargs.get("name") is None:
            kwargs["name"] = job_name()
        if kwargs.get("group") is None:
            kwargs["group"] = job_group()
        kwargs["tags"] = list(kwargs.get("tags") or []) + job_tags(seed, split)
        super().__init__(**kwargs)
        self._wandb_init.pop("anonymous", None)  # deprecated in wandb; Lightning always passes it (a warning)
        self._config_logged = False

    def log_hyperparams(self, params: Any) -> None:
        """The first call (the pipeline's: the whole resolved Hydra config) is logged; Lightning's later
        call with the model's ``save_hyperparameters`` (the same values, at the top level) is dropped."""
        if self._config_logged:
            return
        self._config_logged = True
        super().log_hyperparams(params)


class Stage1Logger(_LightningWandbLogger):
    """Logs a hybrid's stage-1 training into the job's open run, under ``stage1/`` with its own step."""

    def __init__(self, run: Any) -> None:
        super().__init__(experiment=run)
        run.define_metric("stage1/*", step_metric="stage1/global_step")

    def log_hyperparams(self, params: Any) -> None:  # the job's config is already logged
        return

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        metrics = {f"stage1/{key}": value for key, value in metrics.items()}
        self.experiment.log({**metrics, "stage1/global_step": step or 0})


def stage1_logger() -> Stage1Logger | bool:
    """A logger for a hybrid's stage-1 Trainer: the open W&B run if there is one, else ``False``."""
    wandb = sys.modules.get("wandb")  # never import wandb just to find out it is unused
    run = getattr(wandb, "run", None) if wandb is not None else None
    return Stage1Logger(run) if run is not None else False


@contextmanager
def job_scope() -> Iterator[None]:
    """Finish the job's W&B run when the job ends, successfully or not (no-op without wandb)."""
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        wandb = sys.modules.get("wandb")
        if wandb is not None and getattr(wandb, "run", None) is not None:
            wandb.finish(exit_code=1 if failed else 0)
