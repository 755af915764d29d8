"""The classical baselines: maths checks, leakage, checkpoints, refit and bad hyper-parameters."""


import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from qrec.models.components.als import RowLayout
from qrec.models.components.nmf import masked_nmf_step
from qrec.pipeline import run

# Every model config (these included) is fitted, checked against the bias baseline, for cold users/items
# and a state_dict round trip, and run through the pipeline by tests/contract/.


def test_same_seed_same_metrics(make_cfg, tmp_path):
    a = run(make_cfg("model=als", "data=synthetic", "logger=none", "trainer.max_epochs=2"))
    b = run(make_cfg("model=als", "data=synthetic", "logger=none", "trainer.max_epochs=2"))
    assert a["test/rmse"] == b["test/rmse"]


def test_als_half_step_equals_least_squares():
    gen = torch.Generator().manual_seed(0)
    rows = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    x = torch.randn(9, 3, generator=gen, dtype=torch.float64)
    t = torch.randn(9, generator=gen, dtype=torch.float64)
    reg = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    # Each observation is its own column, so col_features are the per-observation features.
    solution = RowLayout(rows, torch.arange(9), 4, group_size=2).solve(x, t, reg)
    for r in range(3):
        xr, tr = x[rows == r].numpy(), t[rows == r].numpy()
        n = len(tr)
        # Ridge as ordinary least squares on rows augmented with sqrt(n·reg)·I.
        aug_x = np.vstack([xr, np.diag(np.sqrt(n * reg.numpy()))])
        aug_t = np.concatenate([tr, np.zeros(3)])
        expected = np.linalg.lstsq(aug_x, aug_t, rcond=None)[0]
        np.testing.assert_allclose(solution[r].numpy(), expected, atol=1e-10)
    assert torch.equal(solution[3], torch.zeros(3, dtype=torch.float64))  # no ratings -> 0


def test_nmf_ignores_unobserved_cells():
    gen = torch.Generator().manual_seed(0)
    ratings = torch.randint(1, 6, (6, 5), generator=gen).float()
    mask = torch.rand(6, 5, generator=gen) < 0.5
    w0, h0 = torch.rand(6, 2, generator=gen), torch.rand(2, 5, generator=gen)
    changed = ratings.clone()
    changed[~mask] = torch.where(torch.rand(int((~mask).sum())) < 0.5, 99.0, float("nan"))
    w, h, w2, h2 = w0, h0, w0, h0
    for _ in range(5):
        w, h = masked_nmf_step(ratings, mask, w, h, 0.1)
        w2, h2 = masked_nmf_step(changed, mask, w2, h2, 0.1)
    assert torch.equal(w, w2) and torch.equal(h, h2)
    assert (w >= 0).all() and (h >= 0).all()


def test_fit_uses_train_split_only(make_cfg):
    """Changing validation and test ratings cannot change what ALS learns (the leakage guard)."""
    import lightning as L

    from qrec.data import RatingsDataModule, make_synthetic_ratings

    def fit(corrupt: bool):
        table = make_synthetic_ratings(seed=1)
        dm = RatingsDataModule(lambda: table, batch_size=None)
        dm.setup()
        if corrupt:
            table.ratings[np.concatenate([dm.indices.val, dm.indices.test])] = 1.0
            dm.table = None
            dm.setup()
        from qrec.models.als import ALSModule

        L.seed_everything(0)
        module = ALSModule(rank=3)
        L.Trainer(max_epochs=2, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                  limit_val_batches=0).fit(module, datamodule=dm)
        return module

    clean, corrupted = fit(False), fit(True)
    for name in ("mu", "b_user", "b_item", "user_factors", "item_factors", "user_bias", "item_bias"):
        torch.testing.assert_close(getattr(clean, name), getattr(corrupted, name))


@pytest.mark.parametrize(
    ("model", "override", "message"),
    [
        ("als", "model.rank=0", "model.rank=0 must be a positive"),
        ("als", "model.reg=-1", "model.reg=-1 must be ≥ 0"),
        ("svd", "model.rank=-3", "model.rank=-3 must be a positive"),
        ("svd", "model.center=zeros", "model.center='zeros' is unknown"),
        ("nmf", "model.rank=0", "model.rank=0"),
        ("nmf", "model.reg=-0.5", "model.reg=-0.5 must be ≥ 0"),
        ("ease", "model.reg=0", "model.reg=0 must be > 0"),
        ("bias", "model.reg_user=-1", "model.reg_user=-1 must be ≥ 0"),
    ],
)
def test_bad_hyperparameters_fail_before_training(make_cfg, model, override, message):
    cfg = make_cfg(f"model={model}", "data=synthetic", override)
    with pytest.raises(Exception, match=message):
        run(cfg)


def test_closed_form_needs_full_batch(make_cfg):
    cfg = make_cfg("model=als", "data=synthetic", "data.batch_size=8", "logger=none")
    with pytest.raises(ValueError, match="data.batch_size=null"):
        run(cfg)


def test_als_checkpoint_resume(make_cfg, tmp_path):
    first = make_cfg("model=als", "data=synthetic", "logger=none", "trainer.max_epochs=2",
                     "callbacks.early_stopping=null", "callbacks.model_checkpoint.save_last=true")
    run(first)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    resumed = make_cfg("model=als", "data=synthetic", "logger=none", "trainer.max_epochs=4",
                       f"ckpt_path={ckpt}", "callbacks.early_stopping=null")
    metrics = run(resumed)
    assert metrics["epochs"] == 4


def test_refit_on_val_trains_on_train_and_val_for_the_best_epochs(make_cfg):
    """refit_on_val: the first fit chooses the epochs on validation; a fresh model is then fitted on
    train ∪ val for exactly that many epochs and tested; the train-only model's test numbers stay."""
    cfg = make_cfg("model=als", "data=synthetic", "logger=none", "trainer.max_epochs=4", "refit_on_val=true")
    metrics = run(cfg)
    ckpt = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    assert metrics["refit_epochs"] == ckpt["epoch"] + 1
    assert "train_only/test/rmse" in metrics and "test/rmse" in metrics
    assert metrics["test/rmse"] != metrics["train_only/test/rmse"]
    assert metrics["optimized"] == metrics["val/rmse"]  # sweeps still see the validation number

    dm = instantiate(cfg.data, train_on_val=True)
    dm.setup()
    plain = instantiate(cfg.data)
    plain.setup()
    assert len(dm.train) == len(plain.train) + len(plain.val)
    assert torch.equal(dm.test.ratings, plain.test.ratings)


def test_refit_on_val_needs_a_rating_datamodule(make_cfg):
    with pytest.raises(ValueError, match="refit_on_val"):
        run(make_cfg("model=itemknn_cbf", "data=ml100k_genres", "logger=none", "refit_on_val=true"))
