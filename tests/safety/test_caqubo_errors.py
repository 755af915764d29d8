"""CAQUBO: configuration mistakes fail before training; remote-solver failures are caught, with the
analysis already computed saved first."""

import functools

import lightning as L
import numpy as np
import pytest

from qrec.callbacks.caqubo import CAQUBOCallback
from qrec.data import make_synthetic_ratings
from qrec.data.implicit import ImplicitDataModule
from qrec.models.itemknn_cbf import ItemKNNCBFModule
from qrec.selection import solvers

pytest.importorskip("dwave.samplers")
requests = pytest.importorskip("requests")  # what dwave-cloud-client raises without a network


@pytest.fixture(scope="module")
def dm():
    make = functools.partial(make_synthetic_ratings, n_users=40, n_items=30, density=0.5, seed=1)
    data = ImplicitDataModule(make, features="kg", n_features=6, threshold=3.0, seed=0, batch_size=128)
    data.setup()
    return data


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(tmp_path / "missing.conf"))


class _NeverTrained(ItemKNNCBFModule):
    def training_step(self, *args, **kwargs):
        raise AssertionError("training started before the configuration was checked")


def _fit(callback, dm, tmp_path):
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[callback], default_root_dir=tmp_path,
                        num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(_NeverTrained(k=10), datamodule=dm)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"solver": "qpu"}, r"solver=qpu needs a D-Wave Leap token"),
        ({"solver": ["sa", "hybrid"]}, r"solver=hybrid needs a D-Wave Leap token"),
        ({"k": 7}, r"k=7: the data has 6 item features, so k must be in 1\.\.6"),
        ({"k": [3, 100]}, r"k=100"),
    ],
)
def test_mistakes_fail_in_setup_before_training(dm, tmp_path, no_token, options, message):
    callback = CAQUBOCallback(output_dir=str(tmp_path), progress=False, **options)
    with pytest.raises(ValueError, match=message):
        _fit(callback, dm, tmp_path)
    assert not (tmp_path / "caqubo_q.npy").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [({"k": 0}, "k=0"), ({"k": [2, -1]}, "k=-1"), ({"k": 2.5}, "k=2.5"), ({"solver": "annealer"}, "annealer"),
     ({"method": "pca"}, "pca"), ({"on_solver_error": "ignore"}, "ignore")],
)  # fmt: skip
def test_bad_values_fail_at_construction(options, message):
    with pytest.raises(ValueError, match=message):
        CAQUBOCallback(**options)


def test_missing_token_with_fallback_only_warns_in_setup(dm, tmp_path, no_token):
    callback = CAQUBOCallback(solver="qpu", on_solver_error="fallback", output_dir=str(tmp_path), progress=False)
    with pytest.warns(UserWarning, match="'sa' will be used"):
        callback._check_tokens()


def _offline_qpu(monkeypatch):
    """A token is configured but the network is down: DWaveSampler fails after its retries."""
    monkeypatch.setattr(solvers, "has_dwave_token", lambda: True)
    real_sample = solvers._sample

    def sample(U, solver, *args, **kwargs):
        if solver in ("qpu", "hybrid"):
            raise requests.exceptions.ConnectionError("Max retries exceeded with url: /sapi/v2/solvers/")
        return real_sample(U, solver, *args, **kwargs)

    monkeypatch.setattr(solvers, "_sample", sample)


def test_network_error_falls_back_to_sa_and_records_why(dm, tmp_path, monkeypatch):
    _offline_qpu(monkeypatch)
    model = ItemKNNCBFModule(k=10)
    model.attach(dm)
    callback = CAQUBOCallback(solver="qpu", k=3, on_solver_error="fallback", num_reads=10, heatmap=False,
                              progress=False)  # fmt: skip
    with pytest.warns(UserWarning, match="Falling back to 'sa'"):
        result = callback.run(model, tmp_path)
    assert result["solver"] == "sa" and result["requested_solver"] == "qpu"
    assert "ConnectionError" in result["solver_error"] and result["n_selected"] == 3


def test_network_error_without_fallback_is_clear_and_keeps_the_analysis(dm, tmp_path, monkeypatch):
    _offline_qpu(monkeypatch)
    model = ItemKNNCBFModule(k=10)
    model.attach(dm)
    callback = CAQUBOCallback(solver="hybrid", k=3, num_reads=10, heatmap=False, progress=False)
    with pytest.raises(solvers.SolverError, match=r"solver='hybrid' failed: ConnectionError.*on_solver_error=fallback"):
        callback.run(model, tmp_path)
    Q = np.load(tmp_path / "caqubo_q.npy")
    assert Q.shape == (6, 6) and np.load(tmp_path / "counterfactual.npz")["pair"].shape == (6, 6)


def test_local_solver_bugs_are_not_swallowed(dm, tmp_path, monkeypatch):
    monkeypatch.setattr(solvers, "_sample", lambda *a, **k: (_ for _ in ()).throw(ZeroDivisionError("bug")))
    model = ItemKNNCBFModule(k=10)
    model.attach(dm)
    callback = CAQUBOCallback(solver="sa", k=3, on_solver_error="fallback", heatmap=False, progress=False)
    with pytest.raises(ZeroDivisionError):
        callback.run(model, tmp_path)
