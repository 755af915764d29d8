"""The one PennyLane integration point: a factory returning ``qml.qnn.TorchLayer`` for a circuit.

Whole batches run through one QNode call by parameter broadcasting (inputs of shape (batch, …)),
never a Python loop over samples. Every configuration error is raised by
:func:`check_device_config` before any training starts.

``TorchLayer`` cannot be pickled (``torch.save(layer)`` fails): save and load its ``state_dict``.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from qrec.optional import require
from qrec.quantum.circuits import SwapTestSpec, VarNetSpec, swap_test_qfunc, varnet_qfunc

# Devices that simulate mixed states, so that depolarizing noise means something.
MIXED_DEVICES = ("default.mixed",)
# Practical wire limits: a float64 state of 2^n (pure) or 4^n (mixed) complex entries per sample
# must fit a batch in memory; beyond these a broadcast batch needs tens of GB.
MAX_WIRES = {"default.qubit": 26, "lightning.qubit": 28, "default.mixed": 12, "reference.qubit": 20}
# Device names whose plugin is a separate package, so a clear "install X" can be given.
PLUGINS = {
    "lightning.gpu": "pennylane-lightning-gpu",
    "lightning.kokkos": "pennylane-lightning-kokkos",
    "lightning.tensor": "pennylane-lightning-tensor",
    "qiskit.aer": "pennylane-qiskit",
    "qiskit.basicsim": "pennylane-qiskit",
    "qiskit.remote": "pennylane-qiskit",
    "cirq.simulator": "pennylane-cirq",
    "cirq.mixedsimulator": "pennylane-cirq",
    "qulacs.simulator": "pennylane-qulacs",
    "braket.local.qubit": "amazon-braket-pennylane-plugin",
    "braket.aws.qubit": "amazon-braket-pennylane-plugin",
    "qrack.simulator": "pennylane-qrack",
}
DIFF_METHODS = ("best", "backprop", "adjoint", "parameter-shift", "finite-diff", "spsa", "hadamard", "device")


def installed_devices() -> list[str]:
    """Names of every PennyLane device whose plugin is installed."""
    return sorted(e.name for e in importlib.metadata.entry_points(group="pennylane.plugins"))


def check_device_config(
    n_wires: int,
    device: str = "default.qubit",
    diff_method: str = "best",
    shots: int | None = None,
    noise: float = 0.0,
    swap_test: bool = False,
) -> None:
    """Raise ``ValueError`` with a clear message if a circuit configuration cannot run.

    Args:
        n_wires: wires the circuit needs.
        device: PennyLane device name.
        diff_method: QNode differentiation method.
        shots: ``None`` for exact expectations, else a positive number of samples.
        noise: depolarizing probability per gate and wire, in [0, 1]; > 0 needs a mixed device.
        swap_test: the circuit is the SWAP test (broadcast AmplitudeEmbedding, CSWAP).
    """
    installed = installed_devices()
    if device not in installed:
        if device in PLUGINS:
            raise ValueError(
                f"PennyLane device {device!r} needs its plugin: pip install {PLUGINS[device]} "
                f"(installed devices: {', '.join(installed)})."
            )
        raise ValueError(f"Unknown PennyLane device {device!r}; installed devices: {', '.join(installed)}.")
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots <= 0):
        raise ValueError(f"shots={shots!r} must be a positive integer, or null for exact expectations.")
    if not 0.0 <= float(noise) <= 1.0:
        raise ValueError(f"noise={noise} is a depolarizing probability and must lie in [0, 1].")
    if noise > 0 and device not in MIXED_DEVICES:
        raise ValueError(
            f"noise={noise} needs a mixed-state device ({', '.join(MIXED_DEVICES)}), not {device!r}."
        )
    limit = MAX_WIRES.get(device)
    if limit is not None and n_wires > limit:
        raise ValueError(
            f"The circuit needs {n_wires} wires but {device!r} supports at most {limit} here "
            f"(a broadcast batch of {n_wires}-qubit states would not fit in memory); lower model.k "
            f"or use backend=torch, which simulates only the readout's light cone."
        )
    if diff_method not in DIFF_METHODS:
        raise ValueError(f"Unknown diff_method {diff_method!r}; choose one of {', '.join(DIFF_METHODS)}.")
    if shots is not None and diff_method in ("backprop", "adjoint"):
        raise ValueError(f"diff_method={diff_method!r} needs exact expectations (shots=null).")
    if diff_method == "adjoint" and (noise > 0 or device in MIXED_DEVICES):
        raise ValueError("diff_method='adjoint' cannot differentiate mixed-state (noisy) circuits.")
    if swap_test and device == "lightning.qubit":
        raise ValueError(
            "The SWAP test broadcasts AmplitudeEmbedding, which fails on lightning.qubit "
            "(PennyLane issue #7325); use device=default.qubit."
        )


def make_torch_layer(
    circuit: VarNetSpec | SwapTestSpec,
    device: str = "default.qubit",
    diff_method: str = "best",
    shots: int | None = None,
    noise: float = 0.0,
) -> Any:
    """A ``qml.qnn.TorchLayer`` running ``circuit`` on a PennyLane device, batched by broadcasting.

    Args:
        circuit: a :class:`VarNetSpec` (trainable ``weights`` of shape (n_layers, 2k)) or a
            :class:`SwapTestSpec` (no weights).
        device, diff_method, shots, noise: see :func:`check_device_config`.

    Returns:
        A TorchLayer mapping inputs (batch, 2k) to (batch,) or (batch, 2k) for VarNet, and
        (batch, 2·2^n) padded pairs to (batch, 2) ancilla probabilities for the SWAP test.
    """
    qml = require("pennylane")

    swap = isinstance(circuit, SwapTestSpec)
    check_device_config(circuit.n_wires, device, diff_method, shots, noise, swap_test=swap)
    try:
        dev = qml.device(device, wires=circuit.n_wires)
    except Exception as err:  # plugin present but unusable (no GPU, bad build...)
        raise ValueError(f"Could not create PennyLane device {device!r}: {err}") from err
    if swap:
        qnode = qml.QNode(swap_test_qfunc(circuit, noise), dev, interface="torch", diff_method=diff_method)
        weight_shapes: dict[str, tuple[int, ...]] = {}
    else:
        qnode = qml.QNode(varnet_qfunc(circuit, noise), dev, interface="torch", diff_method=diff_method)
        weight_shapes = {"weights": circuit.weight_shape}
    if shots is not None:
        qnode = qml.set_shots(qnode, shots=shots)
    layer = qml.qnn.TorchLayer(qnode, weight_shapes)
    if not swap and circuit.readout == "all_z":
        layer.register_forward_hook(_readouts_last)
    return layer


def _readouts_last(module: Any, args: Any, out: Any) -> Any:
    """TorchLayer stacks a tuple of expvals as (n_obs, batch, 1); return (batch, n_obs) instead."""
    if out.ndim == 3:
        return out.squeeze(-1).movedim(0, -1)
    return out.reshape(out.shape[0])  # unbatched input: (n_obs, 1) -> (n_obs,)
