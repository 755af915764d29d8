"""Quantum throughput benchmark: PennyLane TorchLayer vs the pure-torch simulator, one run.

Prints a table and writes ``bench/results/quantum_throughput.json``. Every workload of issue 3's
performance table is measured in the same run as its reference (TorchLayer, a memory-copy
bandwidth probe), so ratios stay meaningful on a busy machine. Inputs are synthetic latents
uniform in [0, 1]: the circuits' cost does not depend on the data.

    OMP_WAIT_POLICY=PASSIVE python bench/quantum_throughput.py [--quick] [--threads 2]

On a shared 2-core machine OpenMP spin-waiting makes small torch ops ~10× slower; this script
sets ``OMP_WAIT_POLICY=PASSIVE`` itself (before importing torch) unless it is already set.
Peak memory of the 16-qubit workloads is measured in a fresh subprocess each (ru_maxrss).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the torch import

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from qrec.quantum.circuits import SwapTestSpec, VarNetSpec, pad_pair  # noqa: E402
from qrec.quantum.estimators import sign_safe_estimate, sign_safe_vectors, swap_test_p0  # noqa: E402
from qrec.quantum.simulator import ROTATION_BLOCK, compile_varnet, varnet_forward  # noqa: E402
from qrec.timing import median_seconds  # noqa: E402

N_PRED, N_TRAIN, BATCH = 20_000, 60_000, 1_024
NOMINAL_BANDWIDTH = 25e9  # bytes/s, the figure for this machine (25–30 GB/s)
RESULTS = Path(__file__).parent / "results" / "quantum_throughput.json"


def latents(n: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, width, generator=torch.Generator().manual_seed(seed))


# --- workloads ----------------------------------------------------------------------------------
def torch_predict(spec: VarNetSpec, n: int = N_PRED) -> float:
    x, w = latents(n, spec.n_wires), torch.rand(spec.weight_shape)
    with torch.no_grad():
        return median_seconds(lambda: varnet_forward(x, w, spec), repeats=REPEATS)


def torch_epoch(spec: VarNetSpec, n: int = N_TRAIN, max_batches: int | None = None) -> tuple[float, int]:
    """Seconds for one epoch of forward+backward+Adam on s·⟨Z⟩+b (extrapolated if ``max_batches``)."""
    x, y = latents(n, spec.n_wires), torch.rand(n)
    weights = torch.nn.Parameter(torch.rand(spec.weight_shape) * 6.28)
    scale = torch.nn.Parameter(torch.ones(spec.n_outputs))
    bias = torch.nn.Parameter(torch.zeros(()))
    opt = torch.optim.Adam([weights, scale, bias], lr=0.01)
    starts = list(range(0, n, BATCH))
    run = starts[:max_batches] if max_batches else starts
    t0 = time.perf_counter()
    for i in run:
        out = varnet_forward(x[i : i + BATCH], weights, spec)
        pred = (out.reshape(len(out), -1) * scale).sum(-1) + bias
        loss = torch.nn.functional.mse_loss(pred, y[i : i + BATCH])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) * len(starts) / len(run), len(run)


def layer_predict(spec: VarNetSpec, n: int) -> float:
    """TorchLayer (default.qubit, float32, broadcasting) seconds for ``n`` predictions."""
    from qrec.quantum.layers import make_torch_layer

    layer, x = make_torch_layer(spec), latents(n, spec.n_wires)
    with torch.no_grad():
        return median_seconds(lambda: layer(x), repeats=REPEATS)


def layer_epoch(spec: VarNetSpec, max_batches: int) -> float:
    """TorchLayer epoch seconds, extrapolated from ``max_batches`` batches of 1,024."""
    from qrec.quantum.layers import make_torch_layer

    layer = make_torch_layer(spec)
    x, y = latents(N_TRAIN, spec.n_wires), torch.rand(N_TRAIN)
    opt = torch.optim.Adam(layer.parameters(), lr=0.01)
    starts = list(range(0, N_TRAIN, BATCH))
    t0 = time.perf_counter()
    for i in starts[:max_batches]:
        loss = torch.nn.functional.mse_loss(layer(x[i : i + BATCH]), y[i : i + BATCH])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) * len(starts) / max_batches


def qnode_loop(spec: VarNetSpec, n: int) -> float:
    """The seed's way: one QNode call per sample; seconds per 20k, extrapolated from ``n`` calls."""
    import pennylane as qml

    from qrec.quantum.circuits import varnet_qfunc

    qnode = qml.QNode(varnet_qfunc(spec), qml.device("default.qubit", wires=spec.n_wires), interface="torch")
    x, w = latents(n, spec.n_wires), torch.rand(spec.weight_shape)
    t0 = time.perf_counter()
    with torch.no_grad():
        for row in x:
            qnode(row, w)
    return (time.perf_counter() - t0) * N_PRED / n


def swap_torch(dim: int) -> float:
    u, v = latents(N_PRED, dim, 1) - 0.5, latents(N_PRED, dim, 2) - 0.5

    def run() -> torch.Tensor:
        uu, vv, c2 = sign_safe_vectors(u, v)
        return sign_safe_estimate(swap_test_p0(uu, vv), uu.norm(dim=1), vv.norm(dim=1), c2)

    return median_seconds(run, repeats=REPEATS)


def swap_layer(dim: int, n: int) -> float:
    from qrec.quantum.layers import make_torch_layer

    u, v = latents(n, dim, 1) - 0.5, latents(n, dim, 2) - 0.5
    uu, vv, _ = sign_safe_vectors(u, v)
    spec = SwapTestSpec(dim + 1)
    layer, inputs = make_torch_layer(spec), pad_pair(uu, vv, spec)
    with torch.no_grad():
        return median_seconds(lambda: layer(inputs), repeats=REPEATS) * N_PRED / n


def copy_bandwidth() -> float:
    """Bytes/s of a large tensor copy (read + write): this machine's practical memory bandwidth now."""
    a = torch.empty(64 << 20)  # 256 MB
    a.fill_(1.0)
    b = torch.empty_like(a)
    return 2 * a.numel() * 4 / median_seconds(lambda: b.copy_(a), repeats=5)


def traffic_bytes(spec: VarNetSpec, n: int) -> float:
    """Modelled bytes one forward pass over ``n`` samples moves (float32, per simulated group).

    Initial product write, a read+write per CNOT permutation and per rotation pass, and the
    readout's read + square + read; small-cone (dense) groups are counted the same way.
    """
    total = 0.0
    for plan in compile_varnet(spec):
        m = len(plan.wires)
        perms = sum(op[0] == "perm" for op in plan.ops)
        rot_passes = sum(-(-m // ROTATION_BLOCK) for op in plan.ops if op[0] == "rys")
        total += n * 2**m * 4 * (1 + 2 * perms + 2 * rot_passes + 3)
    return total


def _isolated(job: str, spec: VarNetSpec, threads: int, max_batches: int | None) -> dict:
    """Run one 16-qubit workload in a fresh process; returns seconds and peak RSS (GB)."""
    torch.set_num_threads(threads)
    global REPEATS
    REPEATS = 1
    if job == "predict":
        seconds, batches = torch_predict(spec), None
    else:
        seconds, batches = torch_epoch(spec, max_batches=max_batches)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux: kB
    return {"seconds": seconds, "peak_gb": peak, "batches_timed": batches}


def isolated(job: str, spec: VarNetSpec, threads: int, max_batches: int | None = None) -> dict:
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_isolated, (job, spec, threads, max_batches))


# --- driver -------------------------------------------------------------------------------------
REPEATS = 3


def main() -> None:
    global REPEATS
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller reference runs")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    REPEATS = 1 if args.quick else 3
    ref_n = 5_000 if args.quick else N_PRED  # TorchLayer predictions timed (scaled to 20k)
    ring_batches = 2 if args.quick else 5  # 16-qubit ring epoch: batches timed, then extrapolated
    rows: list[dict] = []

    def add(workload: str, seconds: float, target: float | None, note: str = "", **extra) -> None:
        ok = None if target is None else seconds <= target
        rows.append({"workload": workload, "seconds": seconds, "target_s": target, "meets": ok, "note": note})
        rows[-1].update(extra)
        mark = "" if ok is None else ("ok" if ok else "MISSED")
        target_s = "report" if target is None else f"≤ {target:g}"
        print(f"{workload:<58} {seconds:>10.4f} s  {target_s:>8}  {mark:<6} {note}", flush=True)

    policy = os.environ["OMP_WAIT_POLICY"]
    print(f"torch {torch.__version__}, {args.threads} threads, OMP_WAIT_POLICY={policy}")
    bandwidth = copy_bandwidth()
    print(f"memory copy bandwidth now: {bandwidth / 1e9:.1f} GB/s (nominal {NOMINAL_BANDWIDTH / 1e9:.0f})\n")

    seed = VarNetSpec(4, 2, "pairs", "z0")
    t_layer = layer_predict(seed, ref_n) * N_PRED / ref_n
    t_torch = torch_predict(seed)
    t_loop = qnode_loop(seed, 50 if args.quick else 200)
    add("k=4 L=2 pairs z0: per-sample QNode loop, 20k preds", t_loop, None, "extrapolated")
    add("k=4 L=2 pairs z0: backend=pennylane TorchLayer, 20k preds", t_layer, 3.0, "float32, broadcast")
    add("k=4 L=2 pairs z0: backend=torch, 20k preds", t_torch, 0.05, f"{t_layer / t_torch:.0f}x TorchLayer")
    rows[-1]["speedup_vs_torchlayer"] = t_layer / t_torch
    t_layer_epoch = layer_epoch(seed, 2 if args.quick else 6)
    add("k=4 L=2 pairs z0: TorchLayer epoch 60k b=1024 (fwd+bwd+Adam)", t_layer_epoch, None, "extrapolated")
    for entangler, readout in [("pairs", "z0"), ("all_pairs", "z0"), ("ring", "z0"), ("pairs", "all_z")]:
        spec = VarNetSpec(4, 2, entangler, readout)
        if (entangler, readout) != ("pairs", "z0"):
            add(f"k=4 L=2 {entangler} {readout}: backend=torch, 20k preds", torch_predict(spec), 0.05)
        seconds, _ = torch_epoch(spec)
        add(
            f"k=4 L=2 {entangler} {readout}: torch epoch 60k b=1024",
            seconds,
            2.0,
            f"{t_layer_epoch / seconds:.0f}x TorchLayer" if entangler == "pairs" and readout == "z0" else "",
        )

    for entangler, readout, is_default in [
        ("pairs", "z0", False), ("all_pairs", "z0", False), ("pairs", "all_z", True), ("ring", "z0", False)
    ]:  # fmt: skip
        spec = VarNetSpec(8, 2, entangler, readout)
        qubits = [len(p.wires) for p in compile_varnet(spec)]
        faithful = entangler in ("pairs", "all_pairs") and readout == "z0"
        tag = f"k=8 L=2 {entangler} {readout}{' (default)' if is_default else ''}"
        pred = isolated("predict", spec, args.threads)
        gbps = traffic_bytes(spec, N_PRED) / pred["seconds"]
        add(
            f"{tag}: torch 20k preds",
            pred["seconds"],
            1.0 if faithful else None,
            f"cone {max(qubits)} of 16 qubits; ~{gbps / 1e9:.1f} GB/s = {gbps / bandwidth:.0%} of copy bw",
            peak_gb=pred["peak_gb"],
            modelled_gb_per_s=gbps / 1e9,
            bandwidth_fraction=gbps / bandwidth,
            bandwidth_fraction_nominal=gbps / NOMINAL_BANDWIDTH,
        )
        big = max(qubits) > 10
        epoch = isolated("epoch", spec, args.threads, ring_batches if big else None)
        extrapolated = f"; extrapolated from {ring_batches} batches" if big else ""
        add(
            f"{tag}: torch epoch 60k b=1024",
            epoch["seconds"],
            30.0 if faithful else None,
            f"peak RSS {epoch['peak_gb']:.2f} GB{extrapolated}",
            peak_gb=epoch["peak_gb"],
            peak_target_gb=4.0 if faithful else None,
        )

    t_swap = swap_torch(16)
    t_swap_layer = swap_layer(16, 2_000 if args.quick else 5_000)
    add("SWAP test k=16 (sign-safe): TorchLayer, 20k preds", t_swap_layer, None, "extrapolated, 11 wires")
    add(
        "SWAP test k=16 (sign-safe): torch closed form, 20k preds",
        t_swap,
        0.1,
        f"{t_swap_layer / t_swap:.0f}x TorchLayer",
    )

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "torch": torch.__version__, "threads": args.threads, "quick": args.quick,
        "omp_wait_policy": policy, "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
        "copy_bandwidth_gb_s": bandwidth / 1e9, "rotation_block": ROTATION_BLOCK,
    }  # fmt: skip
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\nwrote {args.out}  (load average {meta['load_avg_1m']:.1f} on {meta['cpu_count']} cores)")


if __name__ == "__main__":
    main()
