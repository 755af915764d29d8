"""Helpers shared by the benchmark scripts: compose a config like train.py, write JSON results."""

from __future__ import annotations

import json
import platform
import tempfile
from pathlib import Path

import torch
from omegaconf import DictConfig

from qrec.config import compose_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def config(*overrides: str) -> DictConfig:
    """The config `python train.py <overrides>` would run, writing into a temporary directory."""
    return compose_config(list(overrides), tempfile.mkdtemp(prefix="qrec-bench-"))


def machine() -> dict:
    return {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "cuda": torch.cuda.is_available()}


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    print(f"\nwrote {path}")
    return path


def table(rows: list[dict], columns: list[str]) -> None:
    """Print rows as a markdown table."""
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = [f"{row.get(c):.4f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        print("| " + " | ".join(cells) + " |")
