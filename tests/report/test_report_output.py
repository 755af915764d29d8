"""`python -m qrec.report` on fake multiruns (metrics.json + .npy + CSV logs, no training): kfold folds,
u1..u5 splits and seeds as units, pairing by key, missing partners, dataset groups, figures and formats."""

import json
import subprocess
import sys
import zlib

import numpy as np
import pytest

from qrec.report import plots
from qrec.report.runs import by_group, load_runs
from qrec.report.write import write_report


def fake_run(root, name, label, model, *, seed=0, split="random", fold=None, noise=0.5, rmse=None, n_users=60,
             dataset=None, offset=0.0):  # fmt: skip
    """A run directory like the pipeline writes; predictions are truth + noise (+ offset), seeded by the unit."""
    out = root / name
    out.mkdir(parents=True)
    rng = np.random.default_rng(zlib.crc32(repr((split, fold, seed)).encode()))  # the same test set for every model
    users = np.repeat(np.arange(n_users), 8)
    truth = rng.integers(1, 6, len(users)).astype(np.float32)
    model_rng = np.random.default_rng(zlib.crc32(repr((label, split, fold, seed)).encode()))
    preds = np.clip(truth + offset + noise * model_rng.standard_normal(len(users)), 1, 5).astype(np.float32)
    for key, array in (("users", users), ("ratings", truth), ("predictions", preds)):
        np.save(out / f"test_{key}.npy", array)
    computed = float(np.sqrt(np.mean((preds - truth) ** 2)))
    metrics = {"test/rmse": computed if rmse is None else rmse, "test/mae": float(np.mean(np.abs(preds - truth))),
               "test/pred_min": float(preds.min()), "test/pred_max": float(preds.max()),
               "test/infer_s_per_20k": 0.01, "fit_s": 1.0, "model": model, "label": label, "split": split,
               "fold": fold, "seed": seed, "optimized_metric": "val/rmse"}  # fmt: skip
    if dataset:
        metrics["dataset"] = dataset
    (out / "metrics.json").write_text(json.dumps(metrics))
    logs = out / "csv" / "version_0"
    logs.mkdir(parents=True)
    epochs = "\n".join(f"{e},{1.2 - 0.05 * e + 0.01 * seed}" for e in range(4))
    (logs / "metrics.csv").write_text("epoch,val/rmse\n" + epochs + "\n")
    return out


def _row(text, label):
    """The model's row of the comparison table (its second cell is the number of paired units)."""
    lines = text.splitlines()
    return next(line for line in lines if line.startswith(f"| {label} |") and line.split(" | ")[1].isdigit())


def test_seeds_pair_by_key_not_directory_order(tmp_path):
    # ALS's RMSE differs per seed; bias is ALS + 0.01 on every seed. Directory names sort bias's seeds
    # in reverse, so pairing by list order would mix seeds and widen the interval.
    for seed, rmse in enumerate((0.90, 0.95, 1.00)):
        fake_run(tmp_path, f"a{seed}", "als", "ALSModule", seed=seed, rmse=rmse)
        fake_run(tmp_path, f"b{2 - seed}", "bias", "BiasModule", seed=seed, rmse=rmse + 0.01, noise=0.7)
    text = write_report(tmp_path, n_resamples=500).read_text()
    row = _row(text, "bias")
    assert "| bias | 3 | +0.0100 [+0.0100, +0.0100] |" in row
    assert "unit: **seed**" in text and "units (seed)" in text
    assert "3/3" in row  # noise 0.7 vs 0.5 on 480 ratings: every test set's user interval excludes 0


def test_kfold_folds_are_the_units_and_missing_partners_are_reported(tmp_path):
    for fold in range(1, 6):
        fake_run(tmp_path, f"als_{fold}", "als", "ALSModule", split="kfold", fold=fold)
        if fold != 5:  # svd's fold 5 is missing
            fake_run(tmp_path, f"svd_{fold}", "svd", "SVDModule", split="kfold", fold=fold, noise=0.5)
    text = write_report(tmp_path, n_resamples=500).read_text()
    assert "unit: **fold**" in text
    assert _row(text, "svd").startswith("| svd | 4 |")
    assert "`als` on split=kfold fold=5 seed=0: no svd run on that test set; not paired." in text
    # equal noise: the user-level intervals include 0 on most folds
    assert sum("| no |" in line for line in text.splitlines() if line.startswith("| svd | split=kfold")) >= 3


def test_grouplens_folds_and_dataset_groups(tmp_path):
    for dataset in ("ml100k", "ml1m"):
        for i in range(1, 6):
            fake_run(tmp_path, f"{dataset}_als_u{i}", "als", "ALSModule", split=f"u{i}", dataset=dataset)
            fake_run(tmp_path, f"{dataset}_nmf_u{i}", "nmf", "NMFModule", split=f"u{i}", dataset=dataset, offset=0.3)
    text = write_report(tmp_path, n_resamples=500).read_text()
    assert "## ml100k" in text and "## ml1m" in text and text.count("unit: **split**") == 2
    assert text.count("| nmf | 5 | +") == 2  # nmf is worse (a +0.3 offset) on every fold of both datasets
    for name in ("rmse_vs_time_ml100k.png", "learning_curves_ml1m.png", "prediction_histograms_ml1m.png"):
        assert (tmp_path / name).stat().st_size > 1000


def test_two_runs_of_one_model_on_one_test_set_are_reported_not_averaged(tmp_path):
    fake_run(tmp_path, "a", "als", "ALSModule")
    fake_run(tmp_path, "b1", "bias", "BiasModule")
    fake_run(tmp_path, "b2", "bias", "BiasModule", noise=0.7)  # e.g. a sweep over bias's settings
    text = write_report(tmp_path, n_resamples=500).read_text()
    assert "- bias: not compared, two runs of bias on the same test set split=random seed=0" in text
    assert "| bias | classical | 2 (seed 0, 0) |" in text


def test_runs_on_different_test_data_are_refused(tmp_path):
    fake_run(tmp_path, "a", "als", "ALSModule")
    other = fake_run(tmp_path, "b", "bias", "BiasModule")
    np.save(other / "test_ratings.npy", np.ones(480, dtype=np.float32))
    with pytest.raises(SystemExit, match="test_users.npy / test_ratings.npy differ"):
        write_report(tmp_path)


def test_ranking_runs_use_the_per_user_hook(tmp_path):
    rng = np.random.default_rng(0)
    users = np.arange(200)
    base = rng.uniform(0, 1, 200)
    for seed in (0, 1):
        for label, values in (("pop", base), ("two_tower", base + 0.05)):
            out = tmp_path / f"{label}_{seed}"
            out.mkdir()
            (out / "metrics.json").write_text(json.dumps(
                {"test/ndcg_10": float(values.mean()), "test/recall_10": 0.1, "model": label, "label": label,
                 "dataset": {"name": "ml-100k", "split": "random"}, "seed": seed, "fit_s": 1.0}))  # fmt: skip
            # (ranking runs record their split inside `dataset` only, as the implicit data module writes it)
            np.savez(out / "test_per_user.npz", users=users[::-1], ndcg_10=values[::-1])
    text = write_report(tmp_path, reference="pop", n_resamples=500).read_text()
    row = _row(text, "two_tower")
    assert "| two_tower | 2 | +0.0500 [+0.0500, +0.0500] |" in row and "ΔnDCG@10 user bootstrap" in text
    assert "+0.0500 [+0.0500, +0.0500] (split=random seed=0, 200 users)" in row


def test_every_seed_is_drawn_and_labelled(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path, f"als_{seed}", "als", "ALSModule", seed=seed)
        fake_run(tmp_path, f"varnet_{seed}", "varnet", "VarNetModule", seed=seed, noise=0.8)
        fake_run(tmp_path, f"vl_{seed}", "varnet_lstm", "QuantumErrorLSTMModule", seed=seed, noise=0.6)
    (runs_by_label,) = by_group(load_runs(tmp_path)).values()
    curves = plots.learning_curves(runs_by_label).axes  # one panel per family: classical, hybrid, quantum
    assert [len(ax.lines) for ax in curves] == [2, 2, 2]  # every seed of every model
    legend = [t.get_text() for ax in curves for t in ax.get_legend().get_texts()]
    assert legend == ["als (seed 0, seed 1)", "varnet_lstm (seed 0, seed 1)", "varnet (seed 0, seed 1)"]
    panels = [ax for ax in plots.prediction_histograms(runs_by_label).axes if ax.get_legend()]
    assert len(panels) == 3
    assert all([t.get_text() for t in ax.get_legend().get_texts()] == ["seed 0", "seed 1"] for ax in panels)
    scatter = plots.rmse_vs_time(runs_by_label).axes[0]
    assert [t.get_text() for t in scatter.get_legend().get_texts()] == ["classical", "quantum", "hybrid"]
    assert len(scatter.containers) == 3  # one errorbar per model
    assert {plots.family(runs[0]) for runs in runs_by_label.values()} == {"classical", "quantum", "hybrid"}


def test_cli_writes_the_chosen_format(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path / "multirun", f"als_{seed}", "als", "ALSModule", seed=seed)
        fake_run(tmp_path / "multirun", f"bias_{seed}", "bias", "BiasModule", seed=seed, noise=0.6)
    result = subprocess.run([sys.executable, "-m", "qrec.report", str(tmp_path / "multirun"), "--out",
                             str(tmp_path / "out"), "--format", "svg", "--resamples", "500"],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "units (seed)" in result.stdout and "| bias | 2 |" in result.stdout  # printed, not only written
    text = (tmp_path / "out" / "results.md").read_text()
    for stem in ("rmse_vs_time", "prediction_histograms", "learning_curves"):
        assert f"({stem}.svg)" in text and (tmp_path / "out" / f"{stem}.svg").read_text().startswith("<?xml")
    assert not list((tmp_path / "out").glob("*.png"))
