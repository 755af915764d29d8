"""What `python train.py` does: data -> model -> trainer -> fit -> validate/test best -> metrics.json."""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from qrec import timing
from qrec.callbacks.timing import LoopTimer
from qrec.checkpoints import load_user_checkpoint
from qrec.checks import check_config
from qrec.data.datamodule import RatingsDataModule
from qrec.distributed import refuse_closed_form
from qrec.models.base import ClosedFormModule
from qrec.models.contract import RecommenderModule
from qrec.models.itemknn_cbf import ItemKNNCBFModule
from qrec.models.pop import ReferenceRanker


def _instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every entry of a dict-of-configs group (callbacks, logger); empty group -> []."""
    if not group:
        return []
    return [instantiate(conf) for conf in group.values() if conf is not None and "_target_" in conf]


def run(cfg: DictConfig) -> dict:
    """Train, validate and test one configuration; write ``metrics.json`` in the output directory.

    Runs with ``cfg.threads`` torch threads when set (restored afterwards: a multirun process runs many jobs).

    Returns:
        The metrics dict, plus ``optimized``: the best validation value of ``cfg.optimized_metric``
        (what Hydra sweepers minimise or maximise).
    """
    check_config(cfg)  # configs that would train nothing fail here, before any data or model work
    with torch_threads(cfg.get("threads")):
        return _run(cfg)


@contextmanager
def torch_threads(n: int | None):
    """Run the block with ``n`` torch threads (None: torch's default), then restore the previous count."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run(cfg: DictConfig) -> dict:
    run_start = time.perf_counter()
    timing.take()  # a multirun process runs many jobs: each records its own spans
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    # Data and model are built (and validated) before any training starts.
    data_start = time.perf_counter()
    datamodule = instantiate(cfg.data)
    if cfg.get("refit_on_val") and not isinstance(datamodule, RatingsDataModule):
        raise ValueError(
            f"refit_on_val=true needs a rating data module (data=ml100k, data=synthetic); "
            f"{type(datamodule).__name__} has no train_on_val option. Drop refit_on_val."
        )
    datamodule.setup("fit")
    timing.add("data_s", time.perf_counter() - data_start)
    model = instantiate(cfg.model)
    if not isinstance(model, RecommenderModule):
        raise TypeError(
            f"model._target_={cfg.model._target_} is a {type(model).__name__}; train.py runs subclasses of "
            "qrec.models.contract.RecommenderModule (qrec.models.base.RatingModule or contract.RankingModule)."
        )
    callbacks = _instantiate_all(cfg.get("callbacks")) + [LoopTimer("fit")]
    loggers = _instantiate_all(cfg.get("logger"))
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    refuse_closed_form(model, trainer.world_size, (ClosedFormModule, ItemKNNCBFModule, ReferenceRanker))
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    start = time.perf_counter()
    # weights_only=True: a resume checkpoint is a file the user points at, so it may not run code.
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    fit_s = time.perf_counter() - start

    checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
    best = checkpoint.best_model_path if checkpoint and checkpoint.best_model_path else None
    metrics: dict = {}
    with timing.span("eval_s"):
        for result in trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False):
            metrics.update(result)
        for result in trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False):
            metrics.update(result)
    metrics = {key: float(value) for key, value in metrics.items()}
    optimized = metrics.get(cfg.optimized_metric)
    if cfg.get("refit_on_val"):
        epochs = _best_epochs(trainer, best)
        validated_extras = model.extra_metrics  # e.g. stage 1's / an ensemble's validation scores
        with timing.span("refit_s"):
            model, datamodule, refit_metrics = refit_on_val(cfg, epochs, out, model.refit_overrides())
        model.extra_metrics = {**validated_extras, **model.extra_metrics}
        metrics = {(f"train_only/{key}" if key.startswith("test/") else key): value for key, value in metrics.items()}
        metrics.update(refit_metrics, refit_epochs=epochs)
    metrics.update(
        model=cfg.model._target_.rsplit(".", 1)[-1], label=cfg.get("label") or _model_choice(cfg),
        split=cfg.data.get("split"), fold=cfg.data.get("fold") if cfg.data.get("split") == "kfold" else None,
        protocol=datamodule.protocol, seed=cfg.seed,
        fit_s=fit_s, epochs=trainer.current_epoch, best_checkpoint=best,
        optimized_metric=cfg.optimized_metric, optimized=optimized,
    )  # fmt: skip
    metrics.update(dataset=datamodule.describe(), **datamodule.cold_start())  # what it ran on (reports group by it)
    metrics.update(model.extra_metrics)
    metrics.update(timing.take(), **{"timing/fit_s": fit_s, "timing/run_s": time.perf_counter() - run_start})
    if trainer.is_global_zero:  # under DDP every rank holds the same gathered metrics; one writes them
        write_outputs(out, metrics, model.test_predictions, datamodule, model.test_per_user)
        log_extras(loggers, model, metrics)
        print_summary(metrics, out)
    return metrics


def write_outputs(
    out: Path, metrics: dict, predictions: torch.Tensor | None, datamodule, per_user: dict | None = None
) -> None:
    """metrics.json and, for rating models, the test predictions/ratings; for ranking models the per-user
    test metrics (``test_per_user.npz``). Each file is written atomically."""
    _atomic(out / "metrics.json", lambda f: f.write(json.dumps(metrics, indent=2).encode()))
    if per_user is not None:  # the unit of the report's user-level bootstrap of ΔnDCG
        _atomic(out / "test_per_user.npz", lambda f: np.savez(f, **per_user))
    if predictions is not None:  # for prediction histograms and paired tests in `python -m qrec.report`
        _atomic(out / "test_predictions.npy", lambda f: np.save(f, predictions.numpy()))
        _atomic(out / "test_ratings.npy", lambda f: np.save(f, datamodule.test.ratings.numpy()))
        # the unit of the user-level bootstrap
        _atomic(out / "test_users.npy", lambda f: np.save(f, datamodule.test.users.numpy()))


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def _best_epochs(trainer: L.Trainer, best: str | None) -> int:
    """Epochs the validation-chosen model trained for (the best checkpoint's epoch + 1)."""
    if best:
        return int(load_user_checkpoint(best, "best_model_path")["epoch"]) + 1  # may be named by a resumed file
    return max(trainer.current_epoch, 1)


def refit_on_val(
    cfg: DictConfig, epochs: int, out: Path, overrides: dict | None = None
) -> tuple[L.LightningModule, L.LightningDataModule, dict]:
    """A fresh model fitted on train ∪ validation for ``epochs`` epochs, then tested.

    Every choice (hyper-parameters, number of epochs) was already made on validation by the first fit;
    this final fit only adds the validation ratings to training, as the literature's u1..u5 protocol
    does (train on the whole base fold, test once). No validation loop, early stopping or checkpoint;
    ``overrides`` (the first model's ``refit_overrides()``: e.g. a hybrid's stage-1 epochs) are passed to
    the model's constructor so its inner fits reuse the first fit's choices too.
    """
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = instantiate(cfg.data, train_on_val=True)
    datamodule.setup("fit")
    model = instantiate(cfg.model, **(overrides or {}))
    trainer = instantiate(
        cfg.trainer, max_epochs=epochs, min_epochs=None, limit_val_batches=0, callbacks=[], logger=False,
        enable_checkpointing=False, default_root_dir=str(out / "refit"),
    )  # fmt: skip
    print(f"Refit on train + validation for {epochs} epoch(s) (chosen on validation by the first fit)")
    trainer.fit(model, datamodule=datamodule)
    metrics = {}
    for result in trainer.test(model, datamodule=datamodule, verbose=False):
        metrics.update({key: float(value) for key, value in result.items()})
    return model, datamodule, metrics


def log_extras(loggers: list, model: RecommenderModule, metrics: dict) -> None:
    """W&B only: the summary metrics, a histogram of test predictions and, for circuits, their drawing."""
    for logger in loggers:
        if type(logger).__name__ != "WandbLogger":
            continue
        import wandb

        run = logger.experiment
        run.summary.update({k: v for k, v in metrics.items() if isinstance(v, int | float | str)})
        if model.test_predictions is not None:
            run.log({"test/pred_hist": wandb.Histogram(model.test_predictions.numpy())})
        text = model.circuit_drawing()
        if text:
            run.log({"circuit": wandb.Html(f"<pre>{text}</pre>")})


def _model_choice(cfg: DictConfig) -> str:
    """The `model=` option this run used (e.g. `als_lstm`), else the module class name."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices["model"]
    except (ValueError, KeyError):
        return cfg.model._target_.rsplit(".", 1)[-1]


def print_summary(metrics: dict, out: Path) -> None:
    """A short table of the headline numbers."""
    rows = [(key, value) for key, value in metrics.items() if isinstance(value, float)]
    width = max(len(key) for key, _ in rows)
    print(f"\n{metrics['label']} ({metrics['model']}) on {metrics['protocol']}")
    for key, value in rows:
        print(f"  {key:<{width}}  {value:.4f}")
    print(f"  metrics.json -> {out / 'metrics.json'}\n")
