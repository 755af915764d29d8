"""What shot budgets and hardware noise do to RMSE (seed protocol, seed 0).

    python bench/noise_shots.py [--eval-ratings 2000]

1. SWAP test (`model=swap_test`, rank 10): test RMSE for shots = 10 ... 100,000 and exact.
2. VarNet (k=2, 4 qubits, `pairs` + `all_z`, the circuit predicts the whole rating): trained once,
   exactly, with the torch backend; its weights are then run on PennyLane's `default.mixed` with a
   depolarizing channel of probability p after every gate, and with finite shots, on the first
   `--eval-ratings` test ratings (density-matrix simulation is slow, so a subset).

Prints tables, writes bench/results/noise_shots.json and bench/results/noise_shots.png.
"""

from __future__ import annotations

import argparse
import copy

import lightning as L
import torch
from common import RESULTS, config, save, table
from hydra.utils import instantiate

from qrec.pipeline import run

SHOTS = [10, 100, 1_000, 10_000, 100_000, None]
NOISE = [0.0, 0.001, 0.01, 0.03, 0.1]
VARNET = ["model=varnet", "model.k=2", "model.center=none", "model.offset=none", "model.readout=all_z"]


def swap_test_curve() -> list[dict]:
    rows = []
    for shots in SHOTS:
        metrics = run(config("model=swap_test", f"model.shots={'null' if shots is None else shots}", "logger=none"))
        rows.append({"shots": shots or "exact", "test_rmse": metrics["test/rmse"]})
    return rows


def varnet_noise(n_eval: int) -> list[dict]:
    cfg = config(*VARNET, "logger=none", "trainer.max_epochs=10")
    L.seed_everything(0, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup()
    exact = instantiate(cfg.model)
    L.Trainer(max_epochs=10, logger=False, enable_checkpointing=False, enable_progress_bar=False).fit(exact, dm)
    test = dm.test
    users, items, ratings = test.users[:n_eval], test.items[:n_eval], test.ratings[:n_eval]
    rmse = lambda module: float(((module.predict_clipped(users, items) - ratings) ** 2).mean().sqrt())
    rows = [{"device": "torch (exact)", "noise": 0.0, "shots": "exact", "test_rmse_subset": rmse(exact)}]
    for noise in NOISE:
        for shots in (None, 1000):
            params = {**cfg.model, "backend": "pennylane", "device": "default.mixed", "noise": noise,
                      "shots": shots, "chunk": 250, "diff_method": "best" if shots is None else "parameter-shift"}
            noisy = instantiate(params)
            noisy.attach(dm)
            state = copy.deepcopy(exact.state_dict())
            state["layer.weights"] = state.pop("weights")
            noisy.load_state_dict(state)
            with torch.no_grad():
                rows.append({"device": "default.mixed", "noise": noise, "shots": shots or "exact",
                             "test_rmse_subset": rmse(noisy)})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def plot(swap: list[dict], noise: list[dict]) -> None:
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    finite = [r for r in swap if r["shots"] != "exact"]
    a.plot([r["shots"] for r in finite], [r["test_rmse"] for r in finite], marker="o", label="finite shots")
    a.axhline(swap[-1]["test_rmse"], color="gray", ls="--", label="exact (= svd)")
    a.set_xscale("log")
    a.set(xlabel="shots per prediction", ylabel="test RMSE", title="SWAP test: RMSE vs shots")
    a.legend()
    for shots in ("exact", 1000):
        rows = [r for r in noise if r["device"] == "default.mixed" and r["shots"] == shots]
        b.plot([max(r["noise"], 1e-4) for r in rows], [r["test_rmse_subset"] for r in rows], marker="o",
               label=f"default.mixed, {shots} shots" if shots != "exact" else "default.mixed, exact")  # fmt: skip
    b.axhline(noise[0]["test_rmse_subset"], color="gray", ls="--", label="noiseless (torch)")
    b.set_xscale("log")
    b.set(xlabel="depolarizing probability per gate (0 drawn at 1e-4)", ylabel="test RMSE (subset)",
          title="VarNet k=2: RMSE vs noise")  # fmt: skip
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "noise_shots.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval-ratings", type=int, default=2000)
    args = parser.parse_args()
    swap = swap_test_curve()
    noise = varnet_noise(args.eval_ratings)
    print()
    table(swap, ["shots", "test_rmse"])
    print()
    table(noise, ["device", "noise", "shots", "test_rmse_subset"])
    plot(swap, noise)
    save("noise_shots", {"swap_test": swap, "varnet_noise": noise, "eval_ratings": args.eval_ratings})


if __name__ == "__main__":
    main()
