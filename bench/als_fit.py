"""How long ALS takes to fit on the seed split (its tuned size, 20 sweeps): target ≤ 3 s on 2 CPU cores.

    python bench/als_fit.py

Times the closed-form sweeps alone (median of 3 fits) and the whole Lightning `trainer.fit` with
validation each epoch, early stopping off. Prints a table and writes bench/results/als_fit.json.
"""

from __future__ import annotations

import time

import lightning as L
import torch
from common import config, save, table
from hydra.utils import instantiate

from qrec.timing import median_seconds

SWEEPS = 20


def main() -> None:
    cfg = config("model=als", "logger=none")
    dm = instantiate(cfg.data)
    dm.setup()
    train = dm.train

    def fit_with_lightning() -> float:
        module = instantiate(cfg.model)
        trainer = L.Trainer(max_epochs=SWEEPS, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                            enable_model_summary=False)  # fmt: skip
        start = time.perf_counter()
        trainer.fit(module, datamodule=dm)
        elapsed = time.perf_counter() - start
        sweeps = lambda: [module.fit_step(train.users, train.items, train.ratings) for _ in range(SWEEPS)]
        return elapsed, median_seconds(sweeps, repeats=1, warmup=0)

    timings = [fit_with_lightning() for _ in range(3)]
    lightning_s = sorted(t[0] for t in timings)[1]
    sweeps_s = sorted(t[1] for t in timings)[1]
    rows = [{"what": f"{SWEEPS} ALS sweeps (rank {cfg.model.rank}), closed-form steps only (median of 3)",
             "seconds": sweeps_s},
            {"what": f"trainer.fit, {SWEEPS} epochs with validation each epoch (median of 3)", "seconds": lightning_s}]
    table(rows, ["what", "seconds"])
    print(f"target: ≤ 3 s for {SWEEPS} sweeps -> {'met' if sweeps_s <= 3 else 'NOT met'}")
    save("als_fit", {"rank": cfg.model.rank, "sweeps": SWEEPS, "sweeps_s": sweeps_s, "trainer_fit_s": lightning_s,
                     "target_s": 3.0, "torch_threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
