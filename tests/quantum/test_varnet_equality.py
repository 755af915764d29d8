"""The pure-torch simulator equals the PennyLane TorchLayer: values and gradients, every option."""

from __future__ import annotations

import itertools

import pytest
import torch

import qrec.quantum.simulator as sim
from qrec.quantum.circuits import ENTANGLERS, READOUTS, VarNetSpec
from qrec.quantum.layers import make_torch_layer

DESIGNS = list(itertools.product(ENTANGLERS, READOUTS))
CASES = [(k, layers, e, r) for k, layers in [(1, 1), (2, 2), (3, 2)] for e, r in DESIGNS]


def _compare(spec: VarNetSpec, batch: int = 5) -> float:
    """Max |difference| over outputs and gradients w.r.t. inputs and weights, float64."""
    torch.manual_seed(0)
    layer = make_torch_layer(spec, diff_method="backprop").double()
    x = torch.rand(batch, spec.n_wires, dtype=torch.float64, requires_grad=True)
    probe = torch.randn(batch, spec.n_outputs, dtype=torch.float64).squeeze(-1)  # random cotangent
    ours = sim.varnet_forward(x, layer.weights, spec)
    ref = layer(x)
    assert ours.shape == ref.shape
    g_ours = torch.autograd.grad((ours * probe).sum(), [x, layer.weights])
    g_ref = torch.autograd.grad((ref * probe).sum(), [x, layer.weights])
    return max((ours - ref).abs().max().item(), *((a - b).abs().max().item() for a, b in zip(g_ours, g_ref)))


@pytest.mark.parametrize("k,n_layers,entangler,readout", CASES)
def test_torch_backend_matches_pennylane(k, n_layers, entangler, readout):
    assert _compare(VarNetSpec(k, n_layers, entangler, readout)) < 1e-6


@pytest.mark.parametrize("entangler", ENTANGLERS)
def test_strided_chunked_path_matches_pennylane(monkeypatch, entangler):
    # Force the large-cone code path (per-pass rotations, chunking, checkpointing) at small k.
    monkeypatch.setattr(sim, "DENSE_MAX_WIRES", 0)
    monkeypatch.setattr(sim, "CHUNK_ELEMENTS", 32)
    monkeypatch.setattr(sim, "ROTATION_BLOCK", 2)
    assert _compare(VarNetSpec(3, 2, entangler, "all_z"), batch=7) < 1e-6


@pytest.mark.parametrize("entangler", ENTANGLERS)
def test_strided_no_grad_buffers_match_dense(monkeypatch, entangler):
    spec = VarNetSpec(3, 3, entangler, "all_z")
    x, w = torch.rand(13, 6, dtype=torch.float64), torch.rand(3, 6, dtype=torch.float64)
    dense = sim.varnet_forward(x, w, spec)
    monkeypatch.setattr(sim, "DENSE_MAX_WIRES", 0)
    monkeypatch.setattr(sim, "CHUNK_ELEMENTS", 200)  # several chunks, last one short
    with torch.no_grad():
        strided = sim.varnet_forward(x, w, spec)
    torch.testing.assert_close(strided, dense, atol=1e-12, rtol=0)


def test_float32_close_to_float64():
    spec = VarNetSpec(3, 2, "ring", "z0")
    x, w = torch.rand(50, 6, dtype=torch.float64), torch.rand(2, 6, dtype=torch.float64)
    out32 = sim.varnet_forward(x.float(), w.float(), spec)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32.double(), sim.varnet_forward(x, w, spec), atol=1e-5, rtol=0)


def test_pennylane_float32_path_runs_and_agrees():
    spec = VarNetSpec(2, 2, "pairs", "z0")
    layer = make_torch_layer(spec)
    x = torch.rand(11, 4)
    out = layer(x)
    assert out.dtype == torch.float32 and out.shape == (11,)
    torch.testing.assert_close(out, sim.varnet_forward(x, layer.weights, spec), atol=1e-5, rtol=0)
