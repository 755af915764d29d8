"""SWAP-test maths: the circuit's p0, the seed's wrong estimator and the sign-safe estimator."""

from __future__ import annotations

import pytest
import torch

from qrec.quantum.circuits import SwapTestSpec, pad_pair
from qrec.quantum.estimators import (
    sample_p0,
    seed_estimate,
    sign_safe_estimate,
    sign_safe_vectors,
    swap_test_p0,
)
from qrec.quantum.layers import make_torch_layer


def _circuit_p0(
    u: torch.Tensor, v: torch.Tensor, shots: int | None = None, joint: bool = True
) -> torch.Tensor:
    spec = SwapTestSpec(u.shape[1], joint_embedding=joint)
    layer = make_torch_layer(spec, shots=shots)
    return layer(pad_pair(u, v, spec))[:, 0]


@pytest.mark.parametrize("dim", [1, 3, 4, 5])
def test_closed_form_equals_circuit(dim):
    torch.manual_seed(dim)
    u, v = torch.randn(9, dim, dtype=torch.float64), torch.randn(9, dim, dtype=torch.float64)
    torch.testing.assert_close(_circuit_p0(u, v), swap_test_p0(u, v), atol=1e-12, rtol=0)
    # the literal circuit (one AmplitudeEmbedding per register) prepares the same state
    torch.testing.assert_close(_circuit_p0(u, v, joint=False), swap_test_p0(u, v), atol=1e-12, rtol=0)


def test_seed_estimator_is_squared_cosine_not_dot():
    torch.manual_seed(0)
    u, v = torch.randn(64, 4, dtype=torch.float64), torch.randn(64, 4, dtype=torch.float64)
    nu, nv, dot = u.norm(dim=1), v.norm(dim=1), (u * v).sum(1)
    est = seed_estimate(_circuit_p0(u, v), nu, nv)
    torch.testing.assert_close(est, dot**2 / (nu * nv), atol=1e-10, rtol=0)
    assert (est >= -1e-12).all()  # never negative, so it cannot follow a negative u·v
    assert (est - dot).abs().max() > 0.1


def test_sign_safe_estimator_recovers_dot_product():
    torch.manual_seed(1)
    u, v = torch.randn(64, 5, dtype=torch.float64), torch.randn(64, 5, dtype=torch.float64)
    u[0] = 0.0  # a zero vector still embeds (the appended component stays non-zero)
    v[1] = -u[1]  # exactly anti-parallel: u'·v' = 0, the hardest case for the square root
    uu, vv, c2 = sign_safe_vectors(u, v)
    assert uu.shape == (64, 6) and ((uu * vv).sum(1) >= -1e-12).all()
    est = sign_safe_estimate(_circuit_p0(uu, vv), uu.norm(dim=1), vv.norm(dim=1), c2)
    torch.testing.assert_close(est, (u * v).sum(1), atol=1e-6, rtol=0)
    assert ((u * v).sum(1) < 0).any()  # the test exercises negative dot products


def test_shots_sample_binomially():
    torch.manual_seed(2)
    u, v = torch.rand(4000, 2, dtype=torch.float64), torch.rand(4000, 2, dtype=torch.float64)
    exact = swap_test_p0(u, v)
    shots = 100
    noisy = sample_p0(exact, shots, torch.Generator().manual_seed(0))
    assert torch.allclose(noisy * shots, (noisy * shots).round())  # multiples of 1/shots
    # the mean error vanishes and the spread matches sqrt(p(1-p)/shots)
    z = (noisy - exact) / (exact * (1 - exact) / shots).sqrt()
    assert abs(z.mean().item()) < 0.1 and 0.85 < z.std().item() < 1.15


def test_pennylane_shots_give_sampled_probabilities():
    torch.manual_seed(3)
    u, v = torch.rand(6, 4, dtype=torch.float64), torch.rand(6, 4, dtype=torch.float64)
    p0 = _circuit_p0(u, v, shots=50)
    assert torch.allclose(p0 * 50, (p0 * 50).round()) and ((p0 >= 0) & (p0 <= 1)).all()
