"""Stage 1 of a hybrid: train the base model once, cache it, and reuse it only for the same config and data."""

from __future__ import annotations

import copy
import hashlib
import logging
import tempfile
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from qrec.callbacks.timing import LoopTimer
from qrec.checkpoints import load_user_checkpoint
from qrec.data.datamodule import RatingsDataModule
from qrec.models.base import RatingModule
from qrec.models.cache import ModelCache, cache_key
from qrec.tracking import stage1_logger

log = logging.getLogger(__name__)


def _label(config: dict) -> str:
    """``VarNet`` for ``qrec.models.varnet.VarNetModule``: the console's name of the base model."""
    return config["_target_"].rsplit(".", 1)[-1].removesuffix("Module")


def data_fingerprint(dm: RatingsDataModule) -> str:
    """sha256 of the exact training and validation ratings (so another split or seed never matches)."""
    digest = hashlib.sha256()
    for part in (dm.train, dm.val):
        for field in part[:3]:
            digest.update(field.numpy().tobytes())
    return digest.hexdigest()


def stage1_key(config: dict, dm: RatingsDataModule, seed: int, epochs: int, batch_size: int) -> str:
    """Cache key: config, seed, budget and data here; the whole qrec source and library versions in
    :func:`qrec.models.cache.cache_key`."""
    return cache_key({"config": config, "seed": seed, "epochs": epochs, "batch_size": batch_size,
                      "data": data_fingerprint(dm)})  # fmt: skip


def fit_or_load_base(
    config: DictConfig | dict, dm: RatingsDataModule, seed: int, epochs: int, batch_size: int | None,
    cache_dir: str | None = None,
) -> tuple[RatingModule, bool]:  # fmt: skip
    """The stage-1 model for ``config`` on ``dm``: from the cache if the key matches, else trained and cached.

    A cache file is used only if its stored key equals the key of this config, data, seed, qrec source and
    library versions and its content hash checks out; a file that cannot be read is reported and replaced
    by a fresh fit. Jobs needing the same entry at once take turns (one trains, the others reuse it).

    On a plain data module the fit early-stops on validation RMSE and keeps the best epoch's weights. When
    ``dm.train_on_val`` is set (the ``refit_on_val=true`` refit) the validation ratings are training ratings,
    so nothing may be chosen on them: the fit runs exactly ``epochs`` epochs (the caller passes the epochs
    the first, validated fit recorded) with no validation loop, early stopping or checkpoint selection.

    Returns:
        (fitted module in eval mode, whether it came from the cache). ``module.stage1_epochs`` holds the
        epochs its weights were trained for (the best epoch + 1 of a validated fit), what a refit must use.
    """
    config = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)
    key = stage1_key(config, dm, seed, epochs, batch_size)
    cache = ModelCache(cache_dir)
    path = cache.path(config["_target_"].rsplit(".", 1)[-1], key)
    with cache.lock(path):
        module, cached = _load_or_fit(config, dm, seed, epochs, batch_size, cache, path, key)
    return module.eval(), cached


def _load_or_fit(
    config: dict, dm: RatingsDataModule, seed: int, epochs: int, batch_size: int | None, cache: ModelCache,
    path: Path, key: str,
) -> tuple[RatingModule, bool]:  # fmt: skip
    L.seed_everything(seed, verbose=False)  # the fresh module's initialisation depends on the seed only
    module = instantiate(config)
    module.attach(dm)
    entry = cache.load(path, key)
    if entry is not None:
        try:
            module.load_state_dict(entry["state_dict"])
            module.stage1_epochs = int(entry["epochs"])
            log.info("stage 1: %s (reusing cached %s)", _label(config), path)
            return module, True
        except Exception as err:  # noqa: BLE001 - any unusable cache means "retrain", never "crash"
            log.warning("stage 1: cached checkpoint %s is unusable (%s); retraining it.", path, err)
            L.seed_everything(seed, verbose=False)
            module = instantiate(config)
            module.attach(dm)
    log.info("stage 1: %s (training up to %d epochs; cached for reuse)", _label(config), epochs)
    base_dm = copy.copy(dm)
    base_dm.batch_size = batch_size
    module.stage1_epochs = _train(module, base_dm, epochs)
    if rank_zero_only.rank == 0:  # under DDP a rank that trained its own copy (same seed) leaves writing to rank 0
        cache.save(path, key, {"state_dict": module.state_dict(), "epochs": module.stage1_epochs})
    return module, False


def _train(module: RatingModule, dm: RatingsDataModule, epochs: int) -> int:
    """Fit ``module`` on ``dm``; returns the epochs its final weights trained for (see fit_or_load_base)."""
    if dm.train_on_val:  # validation ratings are in the training split: fixed epochs, no validation loop
        trainer = L.Trainer(max_epochs=epochs, min_epochs=epochs, limit_val_batches=0, logger=False,
                            enable_checkpointing=False, enable_model_summary=False,
                            callbacks=[LoopTimer("stage1")])  # fmt: skip
        trainer.fit(module, datamodule=dm)
        return epochs
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = ModelCheckpoint(dirpath=tmp, monitor="val/rmse", mode="min", save_top_k=1)
        trainer = L.Trainer(max_epochs=epochs, logger=stage1_logger(), enable_model_summary=False,
                            num_sanity_val_steps=0,
                            callbacks=[checkpoint, EarlyStopping("val/rmse", patience=3),
                                       LoopTimer("stage1")])  # fmt: skip
        trainer.fit(module, datamodule=dm)
        if not checkpoint.best_model_path:
            return max(trainer.current_epoch, 1)
        blob = load_user_checkpoint(checkpoint.best_model_path, "best_model_path")
        module.load_state_dict(blob["state_dict"])
        return int(blob["epoch"]) + 1
