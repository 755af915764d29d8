"""qrec entry point: `python train.py model=als` (see conf/train.yaml and README.md)."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from qrec.pipeline import run  # imported here so `--help` and config errors stay fast

    return run(cfg)["optimized"]


if __name__ == "__main__":
    main()
