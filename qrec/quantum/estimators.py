"""SWAP-test maths: p0 in closed form, the seed's (wrong) estimator and a sign-safe one.

For real vectors the SWAP test gives p0 = (1 + ⟨û|v̂⟩²)/2 — it sees the *square* of the cosine,
so it cannot tell u·v from −u·v:

- the seed's estimator (2·p0 − 1)·|u||v| equals (u·v)²/(|u||v|), not u·v (wrong whenever
  |cos| ≠ 1, and never negative);
- the sign-safe estimator appends one constant component c = √(|u||v|) to both vectors, so
  u'·v' = u·v + |u||v| ≥ 0 by Cauchy–Schwarz; the SWAP test then recovers u'·v' without sign
  ambiguity as √(2·p0' − 1)·|u'||v'|, and u·v = u'·v' − c².

All functions take torch tensors with a leading batch dimension.
"""

from __future__ import annotations

import torch

# Keeps the appended component non-zero for a zero vector (AmplitudeEmbedding cannot normalise 0).
_TINY = 1e-12


def swap_test_p0(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Exact P(ancilla = 0) of the SWAP test on amplitude-embedded real vectors.

    Args:
        u, v: (batch, dim).

    Returns:
        (batch,) p0 = (1 + (u·v)² / (|u|²|v|²)) / 2.
    """
    dot = (u * v).sum(-1)
    norms2 = (u * u).sum(-1) * (v * v).sum(-1)
    return 0.5 * (1.0 + dot * dot / norms2.clamp_min(torch.finfo(u.dtype).tiny))


def sample_p0(p0: torch.Tensor, shots: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Finite-shot estimate of p0: Binomial(shots, p0) / shots (what ``shots=N`` measures).

    Args:
        p0: (batch,) exact probabilities.
    """
    counts = torch.binomial(torch.full_like(p0, float(shots)), p0.clamp(0, 1), generator=generator)
    return counts / shots


def seed_estimate(p0: torch.Tensor, u_norm: torch.Tensor, v_norm: torch.Tensor) -> torch.Tensor:
    """The seed report's estimator (2·p0 − 1)·|u||v| — WRONG: it equals (u·v)²/(|u||v|).

    Kept for faithful reproduction only. Args are (batch,) tensors; returns (batch,).
    """
    return (2.0 * p0 - 1.0) * u_norm * v_norm


def sign_safe_vectors(u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Append c = √(|u||v|) to both vectors so that their inner product is never negative.

    Args:
        u, v: (batch, dim).

    Returns:
        u' (batch, dim + 1), v' (batch, dim + 1) and c² (batch,), with u'·v' = u·v + c² ≥ 0.
    """
    c2 = (u.norm(dim=-1) * v.norm(dim=-1)).clamp_min(_TINY)
    c = c2.sqrt().unsqueeze(-1)
    return torch.cat([u, c], dim=-1), torch.cat([v, c], dim=-1), c2


def sign_safe_estimate(
    p0: torch.Tensor, u_norm: torch.Tensor, v_norm: torch.Tensor, c2: torch.Tensor
) -> torch.Tensor:
    """u·v from the SWAP test on the augmented vectors of :func:`sign_safe_vectors`.

    Args:
        p0: (batch,) P(ancilla = 0) measured on (u', v').
        u_norm, v_norm: (batch,) |u'| and |v'|.
        c2: (batch,) the appended c².

    Returns:
        (batch,) √max(2·p0 − 1, 0)·|u'||v'| − c²; exact when p0 is exact.
    """
    return (2.0 * p0 - 1.0).clamp_min(0).sqrt() * u_norm * v_norm - c2
