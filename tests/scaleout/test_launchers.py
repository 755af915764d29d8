"""Hydra launcher plugins (the `cluster` extra): a sweep through joblib and submitit_local equals the
sequential sweep. submitit_local runs each job through submitit's own process machinery, the code path
`hydra/launcher=slurm` uses on a cluster."""

from __future__ import annotations

import pytest

from qrec.config import compose_config
from qrec.pipeline import run

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

SWEEP = ["model=bias", "data=synthetic", "logger=none", "trainer.max_epochs=3"]
KEYS = ("val/rmse", "val/mae", "test/rmse", "test/mae")


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The same two jobs run one after the other in this process."""
    out = {}
    for seed in (0, 1):
        job = tmp_path_factory.mktemp(f"seq{seed}")
        result = run(compose_config([*SWEEP, f"seed={seed}"], job))
        out[seed] = {key: result[key] for key in KEYS}
    return out


@pytest.mark.parametrize("launcher", ["joblib hydra.launcher.n_jobs=2", "submitit_local"])
def test_launcher_sweep_equals_sequential(tmp_path, train, metrics, sequential, launcher):
    name, *options = launcher.split()
    train("-m", *SWEEP, "seed=0,1", f"hydra/launcher={name}", *options, f"hydra.sweep.dir={tmp_path / 'sweep'}")
    for job, seed in (("0", 0), ("1", 1)):
        got = metrics(tmp_path / "sweep" / job)
        assert got["seed"] == seed
        for key in KEYS:
            assert got[key] == pytest.approx(sequential[seed][key], abs=1e-9), (launcher, seed, key)
