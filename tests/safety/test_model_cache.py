"""The stage-1 / ensemble-member cache: whole-source keys, content hashes, atomic writes, read-only
directories and concurrent jobs (real processes)."""

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from qrec.data import RatingsDataModule, make_synthetic_ratings
from qrec.models import cache as cache_module
from qrec.models.cache import MAGIC, ModelCache, source_fingerprint
from qrec.models.stage1 import fit_or_load_base, stage1_key

ALS_BASE = {"_target_": "qrec.models.als.ALSModule", "rank": 3}
ROOT = Path(__file__).resolve().parents[2]


def datamodule() -> RatingsDataModule:
    dm = RatingsDataModule(lambda: make_synthetic_ratings(seed=1), split="random", seed=0, batch_size=32)
    dm.setup()
    return dm


@pytest.mark.parametrize("module", ["quantum/simulator.py", "models/components/als.py", "metrics.py"])
def test_editing_any_qrec_module_changes_the_key(tmp_path, monkeypatch, module):
    copy = tmp_path / "qrec"
    shutil.copytree(cache_module.SOURCE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache_module, "SOURCE_ROOT", copy)
    dm = datamodule()
    before = stage1_key(ALS_BASE, dm, 0, 2, None)
    assert before == stage1_key(ALS_BASE, dm, 0, 2, None)  # deterministic
    with open(copy / module, "a") as handle:
        handle.write("\n# a bug fix\n")
    source_fingerprint.cache_clear()  # a new process would recompute it; this one cached the old value
    assert stage1_key(ALS_BASE, dm, 0, 2, None) != before
    (copy / "new_module.py").write_text("x = 1\n")  # adding a module counts too
    source_fingerprint.cache_clear()
    assert len({before, stage1_key(ALS_BASE, dm, 0, 2, None)}) == 2


def test_library_version_is_part_of_the_key(monkeypatch):
    dm = datamodule()
    before = stage1_key(ALS_BASE, dm, 0, 2, None)
    monkeypatch.setattr(cache_module, "library_versions", lambda: {"torch": "0.0", "numpy": "1"})
    assert stage1_key(ALS_BASE, dm, 0, 2, None) != before


def test_flipped_byte_is_reported_and_retrained(tmp_path, caplog):
    dm = datamodule()
    fresh, cached = fit_or_load_base(ALS_BASE, dm, seed=0, epochs=2, batch_size=None, cache_dir=str(tmp_path))
    assert not cached
    (path,) = tmp_path.glob("*.pt")
    data = bytearray(path.read_bytes())
    assert data.startswith(MAGIC)
    data[-200] ^= 0x01  # one bit inside the tensor data (the payload ends with the tensors' storage)
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again, cached = fit_or_load_base(ALS_BASE, dm, seed=0, epochs=2, batch_size=None, cache_dir=str(tmp_path))
    assert not cached
    assert str(path) in caplog.text and "content hash mismatch" in caplog.text
    for name, value in fresh.state_dict().items():  # the retrained model is the fresh run's model
        torch.testing.assert_close(again.state_dict()[name], value, rtol=0, atol=0, msg=name)
    # ... and the entry was rewritten: the next call reuses it silently.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert fit_or_load_base(ALS_BASE, dm, seed=0, epochs=2, batch_size=None, cache_dir=str(tmp_path))[1]
    assert "unusable" not in caplog.text


def test_writes_use_a_unique_temporary_name_then_rename(tmp_path, monkeypatch):
    names = []
    real_replace = os.replace
    record = lambda src, dst: (names.append(Path(src).name), real_replace(src, dst))
    monkeypatch.setattr(cache_module.os, "replace", record)
    cache = ModelCache(tmp_path)
    for _ in range(2):
        assert cache.save(cache.path("M", "k"), "k", {"w": torch.ones(3)})
    assert len(set(names)) == 2 and all(n.endswith(".tmp") and n != "M-k.tmp" for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["M-k.pt"]  # no temporary left behind
    torch.testing.assert_close(cache.load(cache.path("M", "k"), "k")["w"], torch.ones(3))


def test_unwritable_cache_is_a_warning_and_the_run_goes_on(tmp_path, monkeypatch, caplog):
    dm = datamodule()
    # Tests run as root, where chmod does not stop writes: make every write fail as on a read-only disk.
    def read_only(*args, **kwargs):
        raise PermissionError(30, "Read-only file system")

    monkeypatch.setattr(cache_module, "tempfile", SimpleNamespace(mkstemp=read_only))  # only the cache's writes
    with caplog.at_level(logging.WARNING):
        model, cached = fit_or_load_base(ALS_BASE, dm, seed=0, epochs=2, batch_size=None, cache_dir=str(tmp_path))
    assert not cached and model.user_factors.abs().sum() > 0
    assert "cannot write" in caplog.text and "QREC_DATA_DIR" in caplog.text
    assert not list(tmp_path.glob("*.pt"))
    # A cache "directory" below a regular file cannot even be created (or locked): still a warning.
    (tmp_path / "file").write_text("")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _, cached = fit_or_load_base(ALS_BASE, dm, 0, 2, None, cache_dir=str(tmp_path / "file" / "stage1"))
    assert not cached and "cannot lock" in caplog.text and "cannot write" in caplog.text


WORKER = textwrap.dedent(
    """
    import sys, time
    import lightning as L
    from qrec.data import RatingsDataModule, make_synthetic_ratings
    from qrec.models.stage1 import fit_or_load_base

    fit = L.Trainer.fit
    def slow_fit(self, *args, **kwargs):  # a stage 1 long enough for both jobs to overlap
        time.sleep(3)
        return fit(self, *args, **kwargs)
    L.Trainer.fit = slow_fit
    dm = RatingsDataModule(lambda: make_synthetic_ratings(seed=1), split="random", seed=0, batch_size=32)
    dm.setup()
    model, cached = fit_or_load_base({"_target_": "qrec.models.als.ALSModule", "rank": 3}, dm, 0, 2, None,
                                     sys.argv[1])
    print("CACHED" if cached else "TRAINED", float(model.user_factors.sum()))
    """
)


def test_two_jobs_needing_the_same_stage1_at_once(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    lines = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    assert [line.split()[0] for line in lines] == ["CACHED", "TRAINED"]  # one trained, the other waited
    assert lines[0].split()[1] == lines[1].split()[1]  # ... and reused exactly that model
    (entry,) = (tmp_path / "cache").glob("*.pt")
    assert ModelCache(tmp_path / "cache").load(entry, entry.stem.split("-", 1)[1]) is not None
