"""TorchLayer factory: broadcasting shapes, state_dict round trip, noise, and bad configurations."""

from __future__ import annotations

import io

import pytest
import torch

from qrec.quantum.circuits import SwapTestSpec, VarNetSpec, pad_pair
from qrec.quantum.layers import installed_devices, make_torch_layer
from qrec.quantum.simulator import varnet_forward


@pytest.mark.parametrize("batch", [1, 7, 1024])
@pytest.mark.parametrize("readout", ["z0", "all_z"])
def test_broadcast_shapes(batch, readout):
    spec = VarNetSpec(2, 2, "ring", readout)
    layer = make_torch_layer(spec)
    x = torch.rand(batch, 4)
    expected = (batch,) if readout == "z0" else (batch, 4)
    out = layer(x)
    assert out.shape == expected
    assert varnet_forward(x, layer.weights, spec).shape == expected
    torch.testing.assert_close(out, varnet_forward(x, layer.weights, spec), atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch", [1, 7, 1024])
def test_swap_test_broadcast_shapes(batch):
    spec = SwapTestSpec(3)
    out = make_torch_layer(spec)(pad_pair(torch.rand(batch, 3), torch.rand(batch, 3), spec))
    assert out.shape == (batch, 2)


def test_state_dict_round_trip():
    spec = VarNetSpec(2, 2, "all_pairs", "z0")
    layer = make_torch_layer(spec)
    with pytest.raises(Exception):  # noqa: B017 - documented limitation: TorchLayer is not picklable
        torch.save(layer, io.BytesIO())
    buffer = io.BytesIO()
    torch.save(layer.state_dict(), buffer)
    buffer.seek(0)
    fresh = make_torch_layer(spec)
    x = torch.rand(5, 4)
    assert not torch.allclose(fresh(x), layer(x))
    fresh.load_state_dict(torch.load(buffer))
    torch.testing.assert_close(fresh(x), layer(x))


def test_full_depolarizing_noise_erases_the_signal():
    spec = VarNetSpec(1, 1, "pairs", "z0")
    x = torch.rand(4, 2, dtype=torch.float64)
    clean = make_torch_layer(spec, device="default.mixed").double()
    noisy = make_torch_layer(spec, device="default.mixed", noise=0.75).double()  # p=3/4: fully mixed
    noisy.load_state_dict(clean.state_dict())
    torch.testing.assert_close(clean(x), varnet_forward(x, clean.weights, spec))
    assert noisy(x).abs().max() < 1e-12
    partial = make_torch_layer(spec, device="default.mixed", noise=0.1).double()
    partial.load_state_dict(clean.state_dict())
    assert 0 < (partial(x) - clean(x)).abs().max() < clean(x).abs().max()


def test_bad_configurations_fail_before_training():
    spec = VarNetSpec(2, 1)
    with pytest.raises(ValueError, match="Unknown PennyLane device"):
        make_torch_layer(spec, device="default.qubitt")
    if "lightning.gpu" not in installed_devices():
        with pytest.raises(ValueError, match="needs its plugin: pip install pennylane-lightning-gpu"):
            make_torch_layer(spec, device="lightning.gpu")
    for shots in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="shots"):
            make_torch_layer(spec, shots=shots)
    for noise in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            make_torch_layer(spec, device="default.mixed", noise=noise)
    with pytest.raises(ValueError, match="mixed-state device"):
        make_torch_layer(spec, noise=0.1)
    with pytest.raises(ValueError, match="supports at most"):
        make_torch_layer(VarNetSpec(7, 1), device="default.mixed")
    with pytest.raises(ValueError, match="diff_method"):
        make_torch_layer(spec, diff_method="magic")
    with pytest.raises(ValueError, match="shots=null"):
        make_torch_layer(spec, diff_method="backprop", shots=100)
    with pytest.raises(ValueError, match="#7325"):
        make_torch_layer(SwapTestSpec(4), device="lightning.qubit")
    with pytest.raises(ValueError, match="entangler"):
        VarNetSpec(2, 1, "star")
    with pytest.raises(ValueError, match="readout"):
        VarNetSpec(2, 1, "pairs", "z1")
