"""Hessian-vector products and Lanczos: extreme eigenvalues and negative-curvature mass, no dense Hessian.

- :class:`HessianOperator` builds the gradient once with ``create_graph=True``; each product ``H v`` is one
  extra backward pass through that graph (Pearlmutter's trick via double backward), O(cost of a gradient).
- :func:`lanczos` runs ``k`` steps with full re-orthogonalisation (k is small, tens, so storing the
  Krylov basis, k x n floats, is cheap and avoids the ghost eigenvalues of plain Lanczos).
- :func:`hessian_spectrum` reads the extreme eigenvalues off the Ritz values (Lanczos converges to the
  ends of the spectrum first) and estimates the *fraction of negative curvature* by stochastic Lanczos
  quadrature (SLQ; Ghorbani, Krishnan & Xiao 2019): for a random unit probe ``v`` with Lanczos matrix
  ``T = Q diag(r) Q^T``, the spectral measure of ``H`` seen from ``v`` is approximated by nodes ``r_j``
  with weights ``Q[0, j]^2``; averaging over probes, ``sum_j w_j 1[r_j < -tol]`` estimates
  ``#{lambda_i < -tol} / n``. It is an estimate: with ``k`` nodes the density is resolved only coarsely,
  and the probe variance shrinks as ``1/probes``. ``tol`` is relative to ``max |lambda|`` so that the
  exactly-flat directions of a mini-batch loss (embedding rows not in the batch, pruned weights) are
  counted as flat, not negative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


class HessianOperator:
    """``v -> H v`` for the Hessian of ``loss_fn()`` with respect to ``params``.

    Args:
        loss_fn: returns a scalar loss built from ``params`` (one fixed mini-batch).
        params: tensors with ``requires_grad``; the Hessian is over their concatenation (length ``dim``).
    """

    def __init__(self, loss_fn: Callable[[], torch.Tensor], params: Sequence[torch.Tensor]) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("HessianOperator needs at least one parameter with requires_grad=True.")
        with torch.enable_grad():
            self.loss = loss_fn()
            grads = torch.autograd.grad(self.loss, self.params, create_graph=True, allow_unused=True)
        # A gradient with no graph is constant in the parameters: its Hessian block is exactly zero.
        self._live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
        self.grads = grads
        self.sizes = [p.numel() for p in self.params]
        self.dim = sum(self.sizes)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """Args: v: (dim,). Returns: (dim,) ``H v`` in ``v``'s dtype."""
        out = torch.zeros(self.dim, dtype=v.dtype, device=v.device)
        if not self._live:
            return out
        chunks = list(torch.split(v, self.sizes))
        live_grads = [self.grads[i] for i in self._live]
        live_vs = [chunks[i].to(self.params[i].dtype).view_as(self.params[i]) for i in self._live]
        with torch.enable_grad():
            hv = torch.autograd.grad(
                live_grads, self.params, grad_outputs=live_vs, retain_graph=True, allow_unused=True
            )
        pieces = [
            torch.zeros(n, dtype=v.dtype, device=v.device) if h is None else h.reshape(-1).to(v.dtype)
            for h, n in zip(hv, self.sizes, strict=True)
        ]
        return torch.cat(pieces)

    def active_coordinates(self) -> torch.Tensor:
        """(k,) indices whose gradient is non-zero on this batch. Rows of the others are usually exactly zero
        (e.g. embedding rows not in the batch), so sampling Hessian rows among these measures coupling."""
        flat = torch.cat(
            [
                torch.zeros(n, device=self.device) if g is None else g.detach().reshape(-1).ne(0).float()
                for g, n in zip(self.grads, self.sizes, strict=True)
            ]
        )
        return flat.nonzero().squeeze(1).cpu()

    def dense(self) -> torch.Tensor:
        """The full (dim, dim) Hessian, one column per basis vector. For tests on tiny models only."""
        if self.dim > 5000:
            raise ValueError(f"refusing a dense Hessian of dim {self.dim} > 5000; use Lanczos.")
        eye = torch.eye(self.dim, dtype=torch.float64, device=self.device)
        return torch.stack([self.matvec(e) for e in eye], dim=1)


def lanczos(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    steps: int,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lanczos tridiagonalisation with full re-orthogonalisation, in float64.

    Args:
        matvec: symmetric operator on (dim,) float64 vectors.
        dim: operator size.
        steps: Krylov dimension ``k`` (capped at ``dim``); stops early on an invariant subspace.
        v0: (dim,) start vector; random normal (``generator``) if None.
    Returns:
        (ritz_values (k',), slq_weights (k',)): eigenvalues of the tridiagonal matrix and the squared first
        components of its eigenvectors (they sum to 1).
    """
    if steps < 1:
        raise ValueError(f"Lanczos needs steps >= 1, got {steps}.")
    steps = min(steps, dim)
    v = torch.randn(dim, generator=generator, dtype=torch.float64) if v0 is None else v0.double().cpu()
    v = (v / v.norm()).to(device)
    basis = torch.empty(steps, dim, dtype=torch.float64, device=device)
    alphas, betas = [], []
    for j in range(steps):
        basis[j] = v
        w = matvec(v).double()
        alpha = torch.dot(w, v)
        alphas.append(alpha)
        # Two passes of Gram-Schmidt against the whole basis ("twice is enough", Parlett).
        for _ in range(2):
            w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        beta = w.norm()
        if j == steps - 1 or beta <= 1e-10 * max(1.0, abs(float(alpha))):
            break
        betas.append(beta)
        v = w / beta
    t = torch.diag(torch.stack(alphas))
    if betas:
        off = torch.stack(betas)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    ritz, vecs = torch.linalg.eigh(t.cpu())
    return ritz, vecs[0].square()


def hessian_spectrum(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    steps: int = 20,
    probes: int = 1,
    neg_tol: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Extreme eigenvalues and negative-curvature fraction of a symmetric operator.

    Args:
        matvec: ``v -> H v`` on (dim,) float64.
        dim: size of ``H``.
        steps: Lanczos steps per probe.
        probes: random start vectors (the extremes are the max/min over probes; SLQ averages them).
        neg_tol: an eigenvalue counts as negative below ``-neg_tol * max|ritz|``.
        seed: seed of the probe vectors (a private generator: the global RNG is left alone).
    Returns:
        ``lambda_max``, ``lambda_min``, ``neg_fraction`` (SLQ estimate of the fraction of eigenvalues below
        ``-tol``), ``flat_fraction`` (within ``+-tol``), ``neg_fraction_curved`` (negative share of the
        non-flat spectrum), ``neg_ratio`` (``max(0, -lambda_min) / |lambda_max|``), ``steps``, ``probes``.
    """
    if probes < 1:
        raise ValueError(f"probes must be >= 1, got {probes}.")
    gen = torch.Generator().manual_seed(seed)
    results = [lanczos(matvec, dim, steps, generator=gen, device=device) for _ in range(probes)]
    lam_max = max(float(r.max()) for r, _ in results)
    lam_min = min(float(r.min()) for r, _ in results)
    scale = max(abs(lam_max), abs(lam_min))
    tol = neg_tol * scale
    neg = sum(float(w[r < -tol].sum()) for r, w in results) / probes
    pos = sum(float(w[r > tol].sum()) for r, w in results) / probes
    return {
        "lambda_max": lam_max,
        "lambda_min": lam_min,
        "neg_fraction": neg,
        "flat_fraction": max(0.0, 1.0 - neg - pos),
        # Among curved directions only: a mini-batch Hessian of an embedding model is mostly exactly flat
        # (rows not in the batch), which would make any negative fraction of *all* directions look tiny.
        "neg_fraction_curved": neg / (neg + pos) if neg + pos > 0 else 0.0,
        "neg_ratio": _neg_ratio(lam_min, lam_max),
        "steps": steps,
        "probes": probes,
    }


def _neg_ratio(lam_min: float, lam_max: float) -> float:
    """How strong the most negative curvature is relative to the most positive one (0 if none)."""
    if lam_min >= 0:
        return 0.0
    return -lam_min / lam_max if lam_max > 0 else float("inf")


def hessian_row_nnz(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    samples: int = 8,
    rel_tol: float = 1e-6,
    candidates: torch.Tensor | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    """Non-zeros per Hessian row, from ``H e_j`` on a few random coordinates ``j`` (one HVP each).

    This measures the paper's *model sparsity*: how many parameters each parameter's gradient couples to.

    Args:
        candidates: (c,) coordinates to sample from (e.g. the unpruned ones); all of ``0..dim-1`` if None.
        rel_tol: an entry counts as non-zero above ``rel_tol * max|H e_j|`` over the samples.
    Returns:
        ``row_nnz_mean``, ``row_nnz_max`` and ``row_density_mean`` (= mean nnz / dim).
    """
    gen = torch.Generator().manual_seed(seed)
    pool = torch.arange(dim) if candidates is None else candidates.cpu()
    if len(pool) == 0:
        return {"row_nnz_mean": 0.0, "row_nnz_max": 0.0, "row_density_mean": 0.0}
    picks = pool[torch.randperm(len(pool), generator=gen)[:samples]]
    rows = []
    for j in picks.tolist():
        e = torch.zeros(dim, dtype=torch.float64, device=device)
        e[j] = 1.0
        rows.append(matvec(e).abs())
    rows_t = torch.stack(rows)
    peak = float(rows_t.max())
    nnz = (rows_t > rel_tol * peak).sum(1).double() if peak > 0 else torch.zeros(len(rows)).double()
    return {
        "row_nnz_mean": float(nnz.mean()),
        "row_nnz_max": float(nnz.max()),
        "row_density_mean": float(nnz.mean()) / dim,
    }
