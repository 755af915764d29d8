"""W&B offline: one run per job of a sweep, named, grouped, tagged, summarised, finished."""

from __future__ import annotations

import struct
import sys
import types
from pathlib import Path

import pytest

from qrec.tracking import job_scope

pytest.importorskip("wandb")


def _records(path: Path):
    """The protobuf records of an offline ``run-*.wandb`` file (LevelDB log format: 32 KiB blocks of
    7-byte-headed chunks; wandb has no public Python reader for it since its core moved to Go)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, chunk = path.read_bytes(), 7, 32768, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        chunk, pos = chunk + data[pos : pos + length], pos + length
        if kind in (1, 4):  # a FULL record or the LAST piece of one
            record = pb.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def read_offline_run(run_dir: Path) -> dict:
    import json

    out: dict = {"summary": {}, "configs": 0}
    for record in _records(next(run_dir.glob("run-*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out.update(id=run.run_id, name=run.display_name, group=run.run_group, tags=set(run.tags),
                       job_type=run.job_type)  # fmt: skip
        elif kind == "config":
            out["configs"] += 1
            out["config_keys"] = {item.key for item in record.config.update}
        elif kind == "summary":
            out["summary"].update({i.key: json.loads(i.value_json) for i in record.summary.update if i.key})
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out


def test_offline_sweep_leaves_one_finished_run_per_job(tmp_path, train, metrics):
    sweep = tmp_path / "sweep"
    train("-m", "model=bias,lstm_only", "seed=0,1", "data=synthetic", "logger=wandb", "trainer.max_epochs=1",
          f"hydra.sweep.dir={sweep}")  # fmt: skip
    runs = {}
    for job in sorted(p for p in sweep.iterdir() if p.is_dir()):
        (run_dir,) = (job / "wandb").glob("offline-run-*")  # exactly one run per job
        runs[job.name] = read_offline_run(run_dir), metrics(job)
    assert len(runs) == 4 and len({run["id"] for run, _ in runs.values()}) == 4
    for run, result in runs.values():
        model, seed = result["label"], result["seed"]
        assert run["name"].startswith(f"{model} seed={seed}")
        assert run["group"] == str(sweep) and run["job_type"] == "train" and run["exit_code"] == 0
        assert {f"model:{model}", "data:synthetic", "split:random", f"seed:{seed}"} <= run["tags"]
        assert run["configs"] == 1 and {"model", "data", "trainer", "seed"} <= run["config_keys"]  # no hparams twice
        assert run["summary"]["test/rmse"] == pytest.approx(result["test/rmse"])
        assert run["summary"]["val/rmse"] == pytest.approx(result["val/rmse"])


def test_job_scope_finishes_the_run_when_the_job_fails(monkeypatch):
    finished = []
    fake = types.SimpleNamespace(run=object(), finish=lambda exit_code: finished.append(exit_code))
    monkeypatch.setitem(sys.modules, "wandb", fake)
    with pytest.raises(RuntimeError), job_scope():
        raise RuntimeError("job failed")
    with job_scope():
        pass
    assert finished == [1, 0]
