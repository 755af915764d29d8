"""The quantum circuits, defined once: a gate list per design, PennyLane qfuncs built from it.

Two families:

- **SWAP test** (no trainable weights): AmplitudeEmbedding of u and v on ⌈log2 dim⌉ wires each,
  H – CSWAPs – H on an ancilla (wire 0), p0 = P(ancilla = 0) = (1 + ⟨û|v̂⟩²)/2 for real vectors.
- **VarNet**: AngleEmbedding(u·π, Y) on wires 0..k−1 and (v·π, Y) on k..2k−1, then ``n_layers``
  layers of trainable RY on every wire followed by a CNOT entangler, then a Z readout.

The VarNet gate list (:func:`varnet_gates`) is the single source of truth: the PennyLane qfunc
(:func:`varnet_qfunc`), the light-cone analysis (:mod:`qrec.quantum.lightcone`) and the pure-torch
simulator (:mod:`qrec.quantum.simulator`) all read it, so they cannot drift apart.

PennyLane is imported inside the qfuncs only, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

from qrec.optional import require

ENTANGLERS = ("pairs", "all_pairs", "ring")
READOUTS = ("z0", "mean_z", "all_z")


class Gate(NamedTuple):
    """One gate of a VarNet circuit.

    ``kind`` is ``embed`` (RY(π·x[param]) on a fresh wire), ``ry`` (RY(weights[param])) or
    ``cnot`` (wires = (control, target)); ``param`` is an input index for ``embed`` and a
    (layer, wire) weight index for ``ry``.
    """

    kind: str
    wires: tuple[int, ...]
    param: int | tuple[int, int] | None = None


@dataclass(frozen=True)
class VarNetSpec:
    """A VarNet design.

    Args:
        k: latent dimension; the circuit has 2k wires (user on 0..k−1, item on k..2k−1).
        n_layers: number of (RY layer, entangler) blocks, ≥ 1.
        entangler: ``pairs`` — CNOT(i, k+i), the seed's circuit read literally (2-qubit light cone
            under ⟨Z_0⟩); ``all_pairs`` — CNOT(a, b) for every a < k ≤ b, the other reading of the
            seed's text (wire 0 is only ever a control, so ⟨Z_0⟩ sees u_0 and the item only);
            ``ring`` — CNOT(i, i+1) around a ring of all 2k wires (⟨Z_0⟩ depends on every input
            from one layer on).
        readout: ``z0`` — ⟨Z_0⟩ (the seed's); ``mean_z`` — mean of ⟨Z_i⟩ over all wires (depends on
            every input for every entangler); ``all_z`` — the vector of all ⟨Z_i⟩, combined by a
            trainable linear head in the model.
    """

    k: int
    n_layers: int = 2
    entangler: str = "pairs"
    readout: str = "z0"

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"VarNet k={self.k} must be ≥ 1 (the latent dimension).")
        if self.n_layers < 1:
            raise ValueError(f"VarNet n_layers={self.n_layers} must be ≥ 1.")
        if self.entangler not in ENTANGLERS:
            raise ValueError(f"Unknown entangler {self.entangler!r}; choose one of {', '.join(ENTANGLERS)}.")
        if self.readout not in READOUTS:
            raise ValueError(f"Unknown readout {self.readout!r}; choose one of {', '.join(READOUTS)}.")

    @property
    def n_wires(self) -> int:
        return 2 * self.k

    @property
    def weight_shape(self) -> tuple[int, int]:
        """Shape of the trainable RY angles: (n_layers, 2k)."""
        return (self.n_layers, self.n_wires)

    @property
    def n_outputs(self) -> int:
        """Number of readout values per sample (2k for ``all_z``, else 1)."""
        return self.n_wires if self.readout == "all_z" else 1


@dataclass(frozen=True)
class SwapTestSpec:
    """A SWAP-test circuit for vectors of dimension ``dim`` (padded with zeros to a power of 2).

    Args:
        dim: vector dimension.
        joint_embedding: prepare |û⟩⊗|v̂⟩ with one AmplitudeEmbedding of the outer product over
            both registers (default) instead of one AmplitudeEmbedding per register. The state is
            identical; PennyLane only supports a state preparation natively as the first
            operation and decomposes the second one into a Möttönen cascade, ~15× slower.
    """

    dim: int
    joint_embedding: bool = True

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"SWAP-test dimension {self.dim} must be ≥ 1.")

    @property
    def n_register(self) -> int:
        """Wires per vector register: ⌈log2 dim⌉ (at least 1)."""
        return max(1, math.ceil(math.log2(self.dim)))

    @property
    def n_wires(self) -> int:
        return 1 + 2 * self.n_register


# --- VarNet -------------------------------------------------------------------------------------
def entangler_pairs(spec: VarNetSpec) -> list[tuple[int, int]]:
    """(control, target) CNOT pairs of one entangler layer, in circuit order."""
    k, n = spec.k, spec.n_wires
    if spec.entangler == "pairs":
        return [(i, k + i) for i in range(k)]
    if spec.entangler == "all_pairs":
        return [(a, b) for a in range(k) for b in range(k, n)]
    # ring; with 2 wires the closing CNOT(1, 0) still differs from CNOT(0, 1), so keep it
    return [(i, (i + 1) % n) for i in range(n)]


def varnet_gates(spec: VarNetSpec) -> list[Gate]:
    """The full gate list of a VarNet circuit, embedding first, in circuit order."""
    gates = [Gate("embed", (w,), w) for w in range(spec.n_wires)]
    for layer in range(spec.n_layers):
        gates += [Gate("ry", (w,), (layer, w)) for w in range(spec.n_wires)]
        gates += [Gate("cnot", pair) for pair in entangler_pairs(spec)]
    return gates


def readout_wires(spec: VarNetSpec) -> list[int]:
    """Wires whose ⟨Z⟩ the readout uses (all of them for ``mean_z`` and ``all_z``)."""
    return [0] if spec.readout == "z0" else list(range(spec.n_wires))


def varnet_qfunc(spec: VarNetSpec, noise: float = 0.0):
    """The VarNet circuit as a PennyLane qfunc ``f(inputs, weights)`` for ``qml.qnn.TorchLayer``.

    Args:
        spec: the design.
        noise: depolarizing probability applied to every wire a gate touches, after the gate
            (needs a mixed-state device such as ``default.mixed``); 0 adds no channels.

    The qfunc takes ``inputs`` (batch, 2k) = [u, v] scaled to [0, 1] and ``weights``
    (n_layers, 2k), and returns ⟨Z_0⟩, the mean of ⟨Z_i⟩, or a tuple of every ⟨Z_i⟩.
    """
    qml = require("pennylane")

    gates = varnet_gates(spec)
    k, n = spec.k, spec.n_wires

    def noisy(wires: tuple[int, ...]) -> None:
        if noise > 0:
            for w in wires:
                qml.DepolarizingChannel(noise, wires=w)

    def qfunc(inputs, weights):
        # AngleEmbedding is the embedding the issue specifies; it equals the gate list's "embed" RYs
        qml.AngleEmbedding(inputs[..., :k] * math.pi, wires=range(k), rotation="Y")
        qml.AngleEmbedding(inputs[..., k:] * math.pi, wires=range(k, n), rotation="Y")
        noisy(tuple(range(n)))
        for gate in gates:
            if gate.kind == "ry":
                qml.RY(weights[gate.param], wires=gate.wires[0])
            elif gate.kind == "cnot":
                qml.CNOT(wires=list(gate.wires))
            else:
                continue
            noisy(gate.wires)
        if spec.readout == "z0":
            return qml.expval(qml.Z(0))
        if spec.readout == "mean_z":
            return qml.expval(qml.sum(*[qml.s_prod(1.0 / n, qml.Z(w)) for w in range(n)]))
        return tuple(qml.expval(qml.Z(w)) for w in range(n))

    return qfunc


# --- SWAP test ----------------------------------------------------------------------------------
def swap_test_qfunc(spec: SwapTestSpec, noise: float = 0.0):
    """The SWAP test as a PennyLane qfunc ``f(inputs)`` returning P(ancilla) of shape (batch, 2).

    ``inputs`` is (batch, 2·2^n) = [u padded, v padded] (see :func:`pad_pair`); each half is
    amplitude-embedded (normalised) on its own n-wire register, wire 0 is the ancilla.
    """
    qml = require("pennylane")

    n = spec.n_register
    user_wires, item_wires = list(range(1, 1 + n)), list(range(1 + n, 1 + 2 * n))

    def noisy(wires: list[int]) -> None:
        if noise > 0:
            for w in wires:
                qml.DepolarizingChannel(noise, wires=w)

    def qfunc(inputs):
        u, v = inputs[..., : 2**n], inputs[..., 2**n :]
        if spec.joint_embedding:
            joint = (u.unsqueeze(-1) * v.unsqueeze(-2)).reshape(*u.shape[:-1], 4**n)
            qml.AmplitudeEmbedding(joint, wires=user_wires + item_wires, normalize=True)
        else:
            qml.AmplitudeEmbedding(u, wires=user_wires, normalize=True)
            qml.AmplitudeEmbedding(v, wires=item_wires, normalize=True)
        noisy(user_wires + item_wires)
        qml.Hadamard(0)
        noisy([0])
        for a, b in zip(user_wires, item_wires, strict=True):
            qml.CSWAP(wires=[0, a, b])
            noisy([0, a, b])
        qml.Hadamard(0)
        noisy([0])
        return qml.probs(wires=0)

    return qfunc


def pad_pair(u, v, spec: SwapTestSpec):
    """Concatenate u and v, each zero-padded to 2^n, as the SWAP-test qfunc's ``inputs``.

    Args:
        u, v: (batch, dim) torch tensors.

    Returns:
        (batch, 2·2^n).
    """
    import torch

    width = 2**spec.n_register
    pad = (0, width - u.shape[-1])
    return torch.cat([torch.nn.functional.pad(u, pad), torch.nn.functional.pad(v, pad)], dim=-1)
