"""Light cones of VarNet circuits: which inputs, weights and gates can change a Z readout.

Heisenberg picture: the readout Z_w is pulled back through the circuit, gate by gate, from the
end. We track, per wire, whether the pulled-back operator may contain an X and/or a Z factor
there (Y = iXZ has both). The rules over-approximate every Pauli string in the sum, so they are
sound — a gate or input outside the cone provably cannot change the output:

- RY on a wire with neither factor commutes with the operator: drop it. Otherwise Z and X mix
  (Z → cos·Z + sin·X), so the wire gets both factors.
- CNOT(c, t) maps X_c → X_c X_t and Z_t → Z_c Z_t and fixes Z_c and X_t: it acts trivially
  unless the control has an X factor or the target a Z factor; X spreads control → target,
  Z spreads target → control.

This is finer than "every gate that touches a wire in the cone": with ``all_pairs`` wire 0 is
only ever a control, so ⟨Z_0⟩ passes through the last entangler untouched and, at L = 2, sees u_0
and the item register only (9 of 16 wires at k = 8). The kept gates touch only cone wires, so
simulating those wires alone is exact — that is what makes the torch simulator fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from qrec.quantum.circuits import Gate, VarNetSpec, readout_wires, varnet_gates


@dataclass(frozen=True)
class LightCone:
    """What a set of Z readouts can see.

    Attributes:
        inputs: input indices (0..2k−1, u then v) that can change the readout.
        weights: (layer, wire) trainable angles that can change the readout.
        wires: sorted wires that must be simulated.
        gates: indices (into the gate list) of the gates that act non-trivially, in circuit order.
    """

    inputs: frozenset[int]
    weights: frozenset[tuple[int, int]]
    wires: tuple[int, ...]
    gates: tuple[int, ...]


def light_cone(gates: Sequence[Gate], observed: Iterable[int], n_wires: int) -> LightCone:
    """Light cone of the Z observables on ``observed`` wires for a gate list (module docstring).

    Args:
        gates: the circuit in order (see :func:`qrec.quantum.circuits.varnet_gates`).
        observed: wires carrying a Z readout (their union is analysed).
        n_wires: number of wires in the circuit.
    """
    has_x = [False] * n_wires
    has_z = [False] * n_wires
    for w in observed:
        has_z[w] = True
    kept: list[int] = []
    inputs: set[int] = set()
    weights: set[tuple[int, int]] = set()
    for index in range(len(gates) - 1, -1, -1):
        gate = gates[index]
        if gate.kind == "cnot":
            c, t = gate.wires
            if not (has_x[c] or has_z[t]):
                continue
            has_x[t] = has_x[t] or has_x[c]
            has_z[c] = has_z[c] or has_z[t]
        else:  # embed / ry: a Y rotation on one wire
            (w,) = gate.wires
            if not (has_x[w] or has_z[w]):
                continue
            has_x[w] = has_z[w] = True
            if gate.kind == "embed":
                inputs.add(gate.param)
            else:
                weights.add(gate.param)
        kept.append(index)
    wires = sorted({w for i in kept for w in gates[i].wires} | set(observed))
    return LightCone(frozenset(inputs), frozenset(weights), tuple(wires), tuple(reversed(kept)))


def varnet_light_cone(spec: VarNetSpec, observed: Iterable[int] | None = None) -> LightCone:
    """Light cone of a VarNet design's readout (or of Z on the given ``observed`` wires)."""
    observed = readout_wires(spec) if observed is None else list(observed)
    return light_cone(varnet_gates(spec), observed, spec.n_wires)


def readout_groups(spec: VarNetSpec) -> list[tuple[list[int], LightCone]]:
    """Readout wires grouped so that each group is simulated once, on its own light cone.

    Each readout wire's cone is computed alone; a wire whose cone is contained in another
    group's wire set joins that group (simulating a superset is still exact), largest first.

    Returns:
        [(readout wires, light cone of their union)], with every readout wire in exactly one group.
    """
    gates, n = varnet_gates(spec), spec.n_wires
    single = {w: light_cone(gates, [w], n) for w in readout_wires(spec)}
    groups: list[list[int]] = []
    for w in sorted(single, key=lambda w: -len(single[w].wires)):
        home = next((g for g in groups if set(single[w].wires) <= set(single[g[0]].wires)), None)
        if home is None:
            groups.append([w])
        else:
            home.append(w)
    return [(sorted(g), light_cone(gates, g, n)) for g in groups]
