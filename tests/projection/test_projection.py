"""The quantum-inspired projection head: encoding, exact MPS simulation, compression, fidelity."""

import math

import pytest
import torch

from qrec.quantum.projection import (
    QuantumProjection,
    bloch_encode,
    fidelity,
    fidelity_matrix,
    linear_head_params,
    mps_fidelity,
    mps_to_dense,
    product_fidelity,
)

C128 = torch.complex128


def test_identical_inputs_have_fidelity_one():
    head = QuantumProjection(24, 4, layers=2, dtype=C128)
    x = torch.randn(5, 24, dtype=torch.float64)
    assert torch.allclose(head.similarity(x, x), torch.ones(5, dtype=torch.float64), atol=1e-12)
    psi = head(x)
    assert torch.allclose(
        fidelity_matrix(psi, psi).diagonal(), torch.ones(5, dtype=torch.float64), atol=1e-12
    )


def test_orthogonal_encodings_have_fidelity_zero_before_and_after_the_circuit():
    # Qubit 3 is |0> (theta = 0) for a and |1> (theta = pi) for b: the product states are orthogonal,
    # and a unitary circuit (no compression: n_out = n) keeps them orthogonal.
    xa, xb = torch.randn(2, 16, dtype=torch.float64).unbind()
    xa[6], xb[6] = 0.0, math.pi
    qa, qb = bloch_encode(xa[None], dtype=C128), bloch_encode(xb[None], dtype=C128)
    assert product_fidelity(qa, qb).item() < 1e-30
    head = QuantumProjection(16, 8, layers=3, dtype=C128)
    assert head.similarity(xa[None], xb[None]).item() < 1e-12
    # ... while unrelated random inputs are not orthogonal (the test can fail).
    assert head.similarity(xa[None], torch.randn(1, 16, dtype=torch.float64)).item() > 1e-6


@pytest.mark.parametrize(
    ("n", "n_out", "layers", "share", "gate"),
    [
        (2, 1, 1, False, "su4"),
        (5, 2, 2, False, "su4"),
        (8, 3, 3, True, "so4"),
        (10, 4, 2, False, "xyz"),
        (10, 10, 2, False, "su4"),
        (9, 5, 1, True, "su4"),
    ],
)
def test_mps_equals_dense_statevector(n, n_out, layers, share, gate):
    torch.manual_seed(n)
    head = QuantumProjection(2 * n, n_out, layers=layers, share_weights=share, gate=gate, dtype=C128)
    x = torch.randn(6, 2 * n, dtype=torch.float64)
    # Uncompressed circuit output, amplitude by amplitude (same global phase: no SVD gauge freedom).
    mps = head.circuit_mps(x)
    dense = head.simulate_dense(x, compress=False)
    full = mps_to_dense(mps)
    assert torch.allclose(full / full.norm(dim=-1, keepdim=True), dense, atol=1e-12)
    # Compressed (post-selected) states.
    assert torch.allclose(head(x), head.simulate_dense(x), atol=1e-12)


def test_mps_fidelity_matches_dense_fidelity():
    head = QuantumProjection(20, 6, layers=2, dtype=C128)
    xa, xb = torch.randn(4, 20, dtype=torch.float64), torch.randn(4, 20, dtype=torch.float64)
    mps_a, _ = head.compress_mps(xa)
    mps_b, _ = head.compress_mps(xb)
    assert torch.allclose(mps_fidelity(mps_a, mps_b), fidelity(head(xa), head(xb)), atol=1e-12)
    pairwise = fidelity_matrix(head(xa), head(xb))
    assert torch.allclose(pairwise.diagonal(), fidelity(head(xa), head(xb)), atol=1e-12)


def test_bond_dimension_is_bounded_for_many_qubits_and_gradients_reach_every_input():
    # 64 qubits: a dense statevector would need 2**64 amplitudes; the MPS bond stays at 4**layers.
    head = QuantumProjection(128, 8, layers=2, share_weights=True)
    assert max(head.bond_dims) <= 16
    x = torch.randn(3, 128, requires_grad=True)
    psi = head(x)
    assert psi.shape == (3, 256) and torch.allclose(psi.norm(dim=-1), torch.ones(3), atol=1e-5)
    fidelity(psi[:1].expand(2, -1), psi[1:]).sum().backward()
    # Post-selection contracts the trash qubits with <0|, so every coordinate influences the output.
    assert (x.grad[1:].abs() > 0).all()
    assert head.weights.grad is not None and torch.isfinite(head.weights.grad).all()


def test_parameter_count_against_linear_head():
    head = QuantumProjection(64, 8, layers=2, share_weights=True)
    n_qi = sum(p.numel() for p in head.parameters())
    assert head.out_features == 16
    assert n_qi == 2 * 2 * 15  # 2 layers x (even, odd) sub-layers x 15 su4 generators
    assert linear_head_params(64, head.out_features) >= 16 * n_qi


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"d_in": 15, "n_out": 2}, "even"),
        ({"d_in": 8, "n_out": 5}, "encodes only 4 qubits"),
        ({"d_in": 8, "n_out": 0}, "encodes only"),
        ({"d_in": 2 * 5000, "n_out": 4}, "supported"),
        ({"d_in": 40, "n_out": 4, "layers": 4}, "bond dimension"),
        ({"d_in": 8, "n_out": 2, "gate": "cnot"}, "gate must be"),
        ({"d_in": 8, "n_out": 2, "encoding": "amplitude"}, "encoding"),
    ],
)
def test_bad_configurations_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuantumProjection(**kwargs)


def test_bad_inputs_raise_clear_errors():
    head = QuantumProjection(8, 2)
    with pytest.raises(ValueError, match="shape"):
        head(torch.randn(3, 10))
    with pytest.raises(ValueError, match="20"):
        QuantumProjection(44, 2, layers=1).simulate_dense(torch.randn(1, 44))


def test_linear_head_params():
    assert linear_head_params(64, 16) == sum(p.numel() for p in torch.nn.Linear(64, 16).parameters())
