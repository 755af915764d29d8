"""Stage 1 of a hybrid: train the base model once, cache it, and reuse it only for the same config and data."""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import json
import logging
import os
import tempfile
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from qrec.data.datamodule import RatingsDataModule
from qrec.models.base import RatingModule

log = logging.getLogger(__name__)


def cache_root() -> Path:
    base = os.environ.get("QREC_DATA_DIR") or Path.home() / ".cache" / "qrec"
    return Path(base) / "stage1"


def data_fingerprint(dm: RatingsDataModule) -> str:
    """sha256 of the exact training and validation ratings (so another split or seed never matches)."""
    digest = hashlib.sha256()
    for part in (dm.train, dm.val):
        for field in part[:3]:
            digest.update(field.numpy().tobytes())
    return digest.hexdigest()


def code_fingerprint(target: str) -> str:
    """sha256 of the qrec source files defining ``target`` and its base classes, so an edited model class
    (or an edited base class, e.g. how closed-form models checkpoint) never reuses old checkpoints."""
    module_name, class_name = target.rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), class_name)
    files = sorted({inspect.getfile(c) for c in inspect.getmro(cls) if c.__module__.startswith("qrec.")})
    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).read_bytes())
    return digest.hexdigest()


def stage1_key(config: dict, dm: RatingsDataModule, seed: int, epochs: int, batch_size: int) -> str:
    payload = json.dumps({"config": config, "seed": seed, "epochs": epochs, "batch_size": batch_size,
                          "data": data_fingerprint(dm), "code": code_fingerprint(config["_target_"])},
                         sort_keys=True)  # fmt: skip
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def fit_or_load_base(
    config: DictConfig | dict, dm: RatingsDataModule, seed: int, epochs: int, batch_size: int | None,
    cache_dir: str | None = None,
) -> tuple[RatingModule, bool]:  # fmt: skip
    """The stage-1 model for ``config`` on ``dm``: from the cache if the key matches, else trained and cached.

    A cache file is used only if its stored key equals the key of this config, data, seed and model source
    files; a file that cannot be read is reported and replaced by a fresh fit.

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
    path = Path(cache_dir) if cache_dir else cache_root()
    path = path / f"{config['_target_'].rsplit('.', 1)[-1]}-{key}.pt"
    L.seed_everything(seed, verbose=False)  # the fresh module's initialisation depends on the seed only
    module = instantiate(config)
    module.attach(dm)
    if path.is_file():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob.get("key") != key:
                raise ValueError(f"stored key {blob.get('key')} != {key}")
            module.load_state_dict(blob["state_dict"])
            module.stage1_epochs = int(blob.get("epochs", epochs))
            log.info("stage 1: reusing cached %s", path)
            return module.eval(), True
        except Exception as err:  # noqa: BLE001 - any unreadable cache means "retrain", never "crash"
            log.warning("stage 1: cached checkpoint %s is unusable (%s); retraining it.", path, err)
            L.seed_everything(seed, verbose=False)
            module = instantiate(config)
            module.attach(dm)
    base_dm = copy.copy(dm)
    base_dm.batch_size = batch_size
    module.stage1_epochs = _train(module, base_dm, epochs)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    torch.save({"key": key, "state_dict": module.state_dict(), "epochs": module.stage1_epochs}, partial)
    partial.replace(path)  # atomic: a crash never leaves a half-written cache file under the real name
    return module.eval(), False


def _train(module: RatingModule, dm: RatingsDataModule, epochs: int) -> int:
    """Fit ``module`` on ``dm``; returns the epochs its final weights trained for (see fit_or_load_base)."""
    if dm.train_on_val:  # validation ratings are in the training split: fixed epochs, no validation loop
        trainer = L.Trainer(max_epochs=epochs, min_epochs=epochs, limit_val_batches=0, logger=False,
                            enable_checkpointing=False, enable_model_summary=False, callbacks=[])  # fmt: skip
        trainer.fit(module, datamodule=dm)
        return epochs
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = ModelCheckpoint(dirpath=tmp, monitor="val/rmse", mode="min", save_top_k=1)
        trainer = L.Trainer(max_epochs=epochs, logger=False, enable_model_summary=False, num_sanity_val_steps=0,
                            callbacks=[checkpoint, EarlyStopping("val/rmse", patience=3)])  # fmt: skip
        trainer.fit(module, datamodule=dm)
        if not checkpoint.best_model_path:
            return max(trainer.current_epoch, 1)
        blob = torch.load(checkpoint.best_model_path, weights_only=False)
        module.load_state_dict(blob["state_dict"])
        return int(blob["epoch"]) + 1
