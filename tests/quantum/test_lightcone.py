"""Light cones: which inputs can change each design's output (analysis and PennyLane agree)."""

from __future__ import annotations

import pytest
import torch

from qrec.quantum.circuits import ENTANGLERS, VarNetSpec
from qrec.quantum.layers import make_torch_layer
from qrec.quantum.lightcone import readout_groups, varnet_light_cone
from qrec.quantum.simulator import simulated_qubits


def test_seed_pairs_design_sees_two_inputs():
    for k in (2, 4, 8):
        cone = varnet_light_cone(VarNetSpec(k, 2, "pairs", "z0"))
        assert cone.inputs == {0, k} and cone.wires == (0, k)
    # one layer: Z_0 commutes with the CNOT it controls, so only u_0 matters
    assert varnet_light_cone(VarNetSpec(4, 1, "pairs", "z0")).inputs == {0}


def test_all_pairs_z0_sees_u0_and_the_item():
    k = 8
    cone = varnet_light_cone(VarNetSpec(k, 2, "all_pairs", "z0"))
    assert cone.inputs == {0, *range(k, 2 * k)}
    assert simulated_qubits(VarNetSpec(k, 2, "all_pairs", "z0")) == [k + 1]


@pytest.mark.parametrize("entangler", ENTANGLERS)
def test_all_wire_readouts_see_every_input(entangler):
    for readout in ("mean_z", "all_z"):
        assert varnet_light_cone(VarNetSpec(4, 2, entangler, readout)).inputs == set(range(8))


def test_ring_z0_sees_every_input_and_pairs_readout_groups_stay_small():
    assert varnet_light_cone(VarNetSpec(4, 1, "ring", "z0")).inputs == set(range(8))
    groups = readout_groups(VarNetSpec(4, 2, "pairs", "all_z"))
    assert sorted(g for g, _ in groups) == [[i, 4 + i] for i in range(4)]
    assert all(len(cone.wires) == 2 for _, cone in groups)


@pytest.mark.parametrize("entangler", ENTANGLERS)
@pytest.mark.parametrize("readout", ["z0", "mean_z"])
def test_cone_matches_pennylane_sensitivity(entangler, readout):
    """Inputs outside the cone leave the PennyLane output unchanged; inputs inside move it."""
    spec = VarNetSpec(3, 2, entangler, readout)
    torch.manual_seed(0)
    layer = make_torch_layer(spec, diff_method="backprop").double()
    x = torch.rand(1, spec.n_wires, dtype=torch.float64)
    base = layer(x)
    cone = varnet_light_cone(spec)
    for j in range(spec.n_wires):
        moved = x.clone()
        moved[0, j] += 0.37
        change = (layer(moved) - base).abs().item()
        if j in cone.inputs:
            assert change > 1e-6, f"input {j} is in the cone but did not change the output"
        else:
            assert change < 1e-12, f"input {j} is outside the cone but changed the output"
