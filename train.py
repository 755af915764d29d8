"""qrec entry point: `python train.py model=als` (see conf/train.yaml and README.md)."""

import os

import hydra
from omegaconf import DictConfig

from qrec.config import register_resolvers

# Small torch ops on a busy 2-core CPU were ~10x slower with OpenMP spin-waiting (see DESIGN notes).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
register_resolvers()  # ${qrec.uid:} in the output directories, before Hydra composes the config


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from qrec.console import setup_console  # imported here so `--help` and config errors stay fast
    from qrec.distributed import ddp_job_scope
    from qrec.pipeline import run
    from qrec.tracking import job_scope

    setup_console()  # after Hydra's logging set-up and Lightning's import: one handler, known warnings off

    # DDP ranks run this job only, in its directory; the job's W&B run is finished even if it fails.
    with ddp_job_scope(cfg.paths.output_dir), job_scope():
        return run(cfg)["optimized"]


if __name__ == "__main__":
    main()
