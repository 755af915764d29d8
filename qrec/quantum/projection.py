"""Quantum-inspired projection head: Bloch encoding -> brick circuit (exact MPS) -> compression -> fidelity.

After Kankeu et al. 2025 ("Quantum-inspired Embeddings Projection and Similarity Metrics for
Representation Learning", arXiv 2501.04591), in pure torch:

1. **Encoding.** An embedding ``x`` of even dimension ``d`` becomes a product state of ``n = d / 2``
   qubits: coordinates ``(x[2i], x[2i+1])`` give the Bloch angles of qubit ``i``,
   ``|q_i> = cos(theta/2)|0> + e^{i phi} sin(theta/2)|1>``.
2. **Circuit.** ``layers`` brick layers of parameterised nearest-neighbour two-qubit gates
   ``U = exp(-i sum_k w_k P_k)`` (``P_k`` two-qubit Pauli strings): each layer applies gates on the
   pairs (0,1), (2,3), ... then on (1,2), (3,4), ...
3. **Simulation.** A matrix-product state (MPS). Each gate is split *exactly* (no SVD, so gradients are
   well defined everywhere) into whichever factorisation has the smallest new bond: ``2 * left_bond``,
   ``2 * right_bond`` or ``4 * old_bond`` (operator-Schmidt rank of a two-qubit gate is <= 4). One gate
   crosses each bond per layer, so the bond dimension is bounded by ``min(4**layers, 2**min(i, n-i))``
   whatever ``n`` is; the constructor computes the exact bound and refuses circuits above
   ``max_bond``. A full ``2**n`` statevector is never formed (``simulate_dense`` exists only as a test
   reference and refuses ``n > 20``).
4. **Compression (quantum-autoencoder post-selection).** ``n_out`` qubits, evenly spaced along the
   chain, are kept; the other ("trash") qubits are projected onto ``|0>`` and the kept state is
   renormalised: ``|psi_c> = (<0|_trash (x) 1) U|x> / ||...||``. This is the compression of a quantum
   autoencoder (Romero et al. 2017), where training pushes the trash qubits towards ``|0>``; unlike
   tracing out, the compressed state stays *pure*, so the fidelity ``|<psi_a|psi_b>|^2`` is the
   ordinary overlap and costs one inner product. Post-selection is non-unitary: its (log) success
   probability is returned by :meth:`QuantumProjection.compress_mps` for monitoring. Because the
   projected trash legs are contracted with ``<0|`` (not traced), every input qubit can influence the
   kept state, not only those in the kept qubits' light cones.
5. **Similarity.** :func:`fidelity` (pairs) and :func:`fidelity_matrix` (all pairs) on dense kept
   states (``n_out <= 16``); :func:`mps_fidelity` for pairs of MPS when ``n_out`` is larger.

Output size: an ``m``-qubit product state is described by ``2m`` real numbers (its Bloch angles), so
the head with ``n_out = m`` is compared with a linear head ``d -> 2m`` (:func:`linear_head_params`).
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

MAX_QUBITS = 4096  # input qubits; the MPS cost is linear in n, this only catches absurd configs
DENSE_MAX_QUBITS = 20  # the dense reference simulator's limit (2**20 amplitudes per sample)
DENSE_OUT_MAX_QUBITS = 16  # kept qubits returned as a dense 2**m vector by forward()

_PAULI = {
    "I": torch.eye(2, dtype=torch.complex128),
    "X": torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128),
    "Y": torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128),
    "Z": torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128),
}
# Generator sets of the two-qubit gate. "su4": all 15 non-identity Pauli strings (any gate in SU(4));
# "so4": the 6 strings with an odd number of Y (purely imaginary), so exp(-i H) is real orthogonal;
# "xyz": the canonical entangler exp(-i(a XX + b YY + c ZZ)) with 3 parameters.
GATE_GENERATORS = {
    "su4": ["".join(p) for p in itertools.product("IXYZ", repeat=2) if p != ("I", "I")],
    "so4": ["IY", "YI", "XY", "YX", "ZY", "YZ"],
    "xyz": ["XX", "YY", "ZZ"],
}


def pauli_generators(gate: str) -> torch.Tensor:
    """Hermitian generators of a gate family. Returns (G, 4, 4) complex128."""
    if gate not in GATE_GENERATORS:
        raise ValueError(f"gate must be one of {sorted(GATE_GENERATORS)}, got {gate!r}.")
    return torch.stack([torch.kron(_PAULI[a], _PAULI[b]) for a, b in GATE_GENERATORS[gate]])


def gate_unitaries(weights: torch.Tensor, generators: torch.Tensor) -> torch.Tensor:
    """``exp(-i sum_k w_k P_k)`` for a stack of gates.

    Args:
        weights: (..., G) real.
        generators: (G, 4, 4) complex.
    Returns:
        (..., 4, 4) complex unitaries, basis ordered |q_i q_{i+1}> with q_i the more significant bit.
    """
    h = torch.einsum("...g,gab->...ab", weights.to(generators.dtype), generators)
    return torch.linalg.matrix_exp(-1j * h)


def bloch_encode(
    x: torch.Tensor, encoding: str = "angle", dtype: torch.dtype = torch.complex64
) -> torch.Tensor:
    """Each coordinate pair -> one qubit on the Bloch sphere (a product state).

    ``"angle"``: ``theta = x[2i]``, ``phi = x[2i+1]`` (periodic, unbounded inputs, every point of the
    sphere reachable; the natural choice for learned embeddings). ``"sigmoid"``: ``theta = pi *
    sigmoid(x[2i])``, ``phi = 2 pi * sigmoid(x[2i+1])`` (monotone in each coordinate, for fixed
    embeddings such as pretrained factors whose scale is arbitrary).

    Args:
        x: (batch, d) real, ``d`` even.
    Returns:
        (batch, d // 2, 2) complex single-qubit amplitudes ``[cos(theta/2), e^{i phi} sin(theta/2)]``.
    """
    if x.ndim != 2 or x.shape[1] % 2:
        raise ValueError(f"bloch_encode needs a (batch, even d) tensor, got shape {tuple(x.shape)}.")
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    theta, phi = x[:, 0::2].to(real), x[:, 1::2].to(real)
    if encoding == "sigmoid":
        theta, phi = math.pi * torch.sigmoid(theta), 2 * math.pi * torch.sigmoid(phi)
    elif encoding != "angle":
        raise ValueError(f"encoding must be 'angle' or 'sigmoid', got {encoding!r}.")
    amp0 = torch.cos(theta / 2).to(dtype)
    amp1 = torch.polar(torch.sin(theta / 2), phi).to(dtype)
    return torch.stack([amp0, amp1], dim=-1)


def product_fidelity(qa: torch.Tensor, qb: torch.Tensor) -> torch.Tensor:
    """Fidelity of two product states, ``prod_i |<a_i|b_i>|^2``.

    Args:
        qa, qb: (batch, n, 2) complex single-qubit amplitudes.
    Returns:
        (batch,) real.
    """
    return (qa.conj() * qb).sum(-1).abs().square().prod(-1)


def brick_schedule(n_qubits: int, layers: int) -> list[list[tuple[int, int]]]:
    """Sub-layers of disjoint nearest-neighbour pairs: per layer the even pairs, then the odd pairs."""
    even = [(i, i + 1) for i in range(0, n_qubits - 1, 2)]
    odd = [(i, i + 1) for i in range(1, n_qubits - 1, 2)]
    return [sub for _ in range(layers) for sub in (even, odd) if sub]


def kept_qubits(n_qubits: int, n_out: int) -> list[int]:
    """Evenly spaced kept qubits, one near the centre of each block of ``n_qubits / n_out``."""
    block = n_qubits / n_out
    return [min(n_qubits - 1, int(j * block + (block - 1) / 2)) for j in range(n_out)]


def _split_choice(left: int, mid: int, right: int) -> tuple[str, int]:
    """The exact gate split with the smallest new bond (see the module docstring)."""
    options = [("left", 2 * left), ("right", 2 * right), ("operator", 4 * mid)]
    return min(options, key=lambda o: o[1])


def mps_bond_dims(n_qubits: int, schedule: list[list[tuple[int, int]]]) -> list[int]:
    """Bond dimensions the exact simulation will reach (integers only, no tensors). Returns n-1 ints."""
    bonds = [1] * (n_qubits + 1)  # bonds[i] sits left of qubit i; bonds[0] = bonds[n] = 1
    for sub in schedule:
        for i, _ in sub:
            bonds[i + 1] = _split_choice(bonds[i], bonds[i + 1], bonds[i + 2])[1]
    return bonds[1:-1]


def mps_from_product(q: torch.Tensor) -> list[torch.Tensor]:
    """(batch, n, 2) amplitudes -> list of n site tensors (batch, 1, 2, 1)."""
    return [q[:, i, :, None].unsqueeze(1) for i in range(q.shape[1])]


def mps_apply_gate(mps: list[torch.Tensor], i: int, gate: torch.Tensor) -> None:
    """Apply a two-qubit gate to qubits (i, i+1) in place, with an exact SVD-free split.

    Args:
        mps: site tensors (batch, left, 2, right).
        gate: (4, 4) complex unitary.
    """
    a, b = mps[i], mps[i + 1]
    batch, left, _, mid = a.shape
    right = b.shape[-1]
    u = gate.reshape(2, 2, 2, 2)  # [out_i, out_j, in_i, in_j]
    how, _ = _split_choice(left, mid, right)
    if how == "operator":
        # U = sum_{x,y} |x><y| (x) U[x, :, y, :]: bond index (mid, x, y), 4 * mid wide.
        # new_a[l, s, (m, x, y)] = delta(s, x) a[l, y, m]: two block copies, no multiply.
        a_t = a.permute(0, 1, 3, 2)  # (batch, left, mid, y)
        zero = torch.zeros_like(a_t)
        new_a = torch.stack([torch.stack([a_t, zero], 3), torch.stack([zero, a_t], 3)], 2)
        new_a = new_a.reshape(batch, left, 2, 4 * mid)
        new_b = torch.einsum("xcyd,bmdr->bmxycr", u, b).reshape(batch, 4 * mid, 2, right)
    else:
        theta = torch.einsum("blxm,bmyr->blxyr", a, b)
        theta = torch.einsum("acxy,blxyr->blacr", u, theta)
        if how == "left":  # site i becomes an isometry (identity on (left, out_i))
            eye = torch.eye(2 * left, dtype=a.dtype, device=a.device).reshape(left, 2, 2 * left)
            new_a = eye.expand(batch, -1, -1, -1)
            new_b = theta.reshape(batch, 2 * left, 2, right)
        else:
            eye = torch.eye(2 * right, dtype=a.dtype, device=a.device).reshape(2 * right, 2, right)
            new_a = theta.reshape(batch, left, 2, 2 * right)
            new_b = eye.expand(batch, -1, -1, -1)
    mps[i], mps[i + 1] = new_a, new_b


def _rescale(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``t / ||t||`` per batch row and ``log ||t||``. Through the real view: complex norm and division
    were a third of the head's CPU time."""
    real = torch.view_as_real(t)
    norm = real.square().flatten(1).sum(1).sqrt().clamp_min(1e-30)
    scaled = real * (1 / norm).reshape((-1,) + (1,) * (real.ndim - 1))
    return torch.view_as_complex(scaled), norm.log()


def mps_postselect(mps: list[torch.Tensor], kept: list[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Project every qubit not in ``kept`` onto |0> and absorb it into its kept neighbours.

    Running products are rescaled as they go (the state is renormalised at the end anyway), so the
    result cannot underflow however many qubits are projected; the scales are summed into the log of
    the squared norm (the post-selection success probability for a normalised input).

    Args:
        mps: n site tensors (batch, left, 2, right).
        kept: sorted qubit indices to keep (at least one).
    Returns:
        (kept MPS of len(kept) tensors with boundary bonds 1, log_norm_sq (batch,) real)
    """
    keep = set(kept)
    out: list[torch.Tensor] = []
    carry = None  # (batch, bond of the last kept tensor or 1, current left bond)
    log_scale = torch.zeros(mps[0].shape[0], dtype=mps[0].real.dtype, device=mps[0].device)
    for i, site in enumerate(mps):
        if i in keep:
            if carry is not None:
                site = torch.einsum("bxl,blsr->bxsr", carry, site)
                carry = None
            if out:  # rescale kept tensors too, so long chains of kept qubits stay finite
                site, log_norm = _rescale(site)
                log_scale = log_scale + 2 * log_norm
            out.append(site)
        else:
            proj = site[:, :, 0, :]
            carry, log_norm = _rescale(proj if carry is None else torch.bmm(carry, proj))
            log_scale = log_scale + 2 * log_norm
    if carry is not None:
        out[-1] = torch.einsum("bxsl,bly->bxsy", out[-1], carry)
    norm_sq = mps_overlap(out, out).real.clamp_min(1e-300)
    return out, log_scale + norm_sq.log()


def mps_overlap(mps_a: list[torch.Tensor], mps_b: list[torch.Tensor]) -> torch.Tensor:
    """``<a|b>`` for pairs of MPS by transfer matrices, O(n * chi^3) per pair. Returns (batch,) complex."""
    env = torch.ones(mps_a[0].shape[0], 1, 1, dtype=mps_a[0].dtype, device=mps_a[0].device)
    for a, b in zip(mps_a, mps_b, strict=True):
        env = torch.einsum("bxy,bxsz,bysw->bzw", env, a.conj(), b)
    return env[:, 0, 0]


def mps_fidelity(mps_a: list[torch.Tensor], mps_b: list[torch.Tensor]) -> torch.Tensor:
    """``|<a|b>|^2 / (<a|a><b|b>)`` for pairs of MPS. Returns (batch,) real in [0, 1]."""
    num = mps_overlap(mps_a, mps_b).abs().square()
    return num / (mps_overlap(mps_a, mps_a).real * mps_overlap(mps_b, mps_b).real)


def mps_to_dense(mps: list[torch.Tensor]) -> torch.Tensor:
    """Contract an MPS with boundary bonds 1 into (batch, 2**len(mps)) amplitudes (first qubit = MSB)."""
    if len(mps) > DENSE_OUT_MAX_QUBITS:
        raise ValueError(f"refusing a dense state of {len(mps)} > {DENSE_OUT_MAX_QUBITS} qubits; use MPS.")
    psi = mps[0][:, 0]  # (batch, 2, right)
    for site in mps[1:]:
        psi = torch.einsum("bpl,blsr->bpsr", psi, site).flatten(1, 2)
    return psi[..., 0]


def fidelity(psi_a: torch.Tensor, psi_b: torch.Tensor) -> torch.Tensor:
    """Fidelity of pairs of pure states, ``|<a|b>|^2`` (inputs renormalised).

    Args:
        psi_a, psi_b: (batch, 2**m) complex.
    Returns:
        (batch,) real in [0, 1].
    """
    num = (psi_a.conj() * psi_b).sum(-1).abs().square()
    return num / (psi_a.abs().square().sum(-1) * psi_b.abs().square().sum(-1))


def fidelity_matrix(psi_a: torch.Tensor, psi_b: torch.Tensor) -> torch.Tensor:
    """All-pairs fidelity score matrix in one matmul.

    Args:
        psi_a: (na, 2**m) complex; psi_b: (nb, 2**m) complex.
    Returns:
        (na, nb) real in [0, 1].
    """
    psi_a = psi_a / psi_a.norm(dim=-1, keepdim=True)
    psi_b = psi_b / psi_b.norm(dim=-1, keepdim=True)
    return (psi_a.conj() @ psi_b.T).abs().square()


def linear_head_params(d_in: int, d_out: int, bias: bool = True) -> int:
    """Parameters of ``nn.Linear(d_in, d_out)``."""
    return d_in * d_out + (d_out if bias else 0)


class QuantumProjection(nn.Module):
    """Quantum-inspired projection head (see the module docstring for the maths).

    Args:
        d_in: input embedding dimension (even); ``n = d_in // 2`` qubits.
        n_out: qubits kept after compression (``1 <= n_out <= n``).
        layers: brick layers of two-qubit gates (each: even pairs, then odd pairs).
        gate: generator set of each gate, ``"su4"`` (15 params), ``"so4"`` (6) or ``"xyz"`` (3).
        share_weights: one gate per sub-layer, repeated along the chain (translation invariant, as in a
            quantum convolutional network); otherwise every gate has its own weights.
        encoding: ``"angle"`` or ``"sigmoid"``, see :func:`bloch_encode`.
        max_bond: refuse circuits whose exact MPS bond dimension would exceed this.
        init_std: std of the initial gate weights (0 = identity circuit).
        dtype: ``torch.complex64`` or ``torch.complex128``.
    """

    def __init__(
        self,
        d_in: int,
        n_out: int,
        layers: int = 2,
        gate: str = "su4",
        share_weights: bool = False,
        encoding: str = "angle",
        max_bond: int = 64,
        init_std: float = 0.5,
        dtype: torch.dtype = torch.complex64,
    ) -> None:
        super().__init__()
        if d_in < 2 or d_in % 2:
            raise ValueError(f"d_in must be even and >= 2 (two coordinates per qubit), got {d_in}.")
        n = d_in // 2
        if n > MAX_QUBITS:
            raise ValueError(f"{n} input qubits > supported {MAX_QUBITS}; project the embedding down first.")
        if not 1 <= n_out <= n:
            raise ValueError(
                f"n_out={n_out} qubits asked but a d_in={d_in} embedding encodes only {n} qubits "
                f"(need 1 <= n_out <= d_in / 2)."
            )
        if layers < 0:
            raise ValueError(f"layers must be >= 0, got {layers}.")
        if dtype not in (torch.complex64, torch.complex128):
            raise ValueError(f"dtype must be complex64 or complex128, got {dtype}.")
        if encoding not in ("angle", "sigmoid"):
            raise ValueError(f"encoding must be 'angle' or 'sigmoid', got {encoding!r}.")
        self.d_in, self.n_qubits, self.n_out = d_in, n, n_out
        self.encoding, self.dtype, self.share_weights = encoding, dtype, share_weights
        self.schedule = brick_schedule(n, layers)
        self.bond_dims = mps_bond_dims(n, self.schedule)
        if self.bond_dims and max(self.bond_dims) > max_bond:
            raise ValueError(
                f"layers={layers} on {n} qubits reaches bond dimension {max(self.bond_dims)} > "
                f"max_bond={max_bond} "
                "(it grows as 4**layers); use fewer layers or raise max_bond."
            )
        self.kept = kept_qubits(n, n_out)
        self.register_buffer("generators", pauli_generators(gate).to(dtype), persistent=False)
        n_gates = len(self.schedule) if share_weights else sum(len(s) for s in self.schedule)
        self.weights = nn.Parameter(init_std * torch.randn(n_gates, len(self.generators)))

    @property
    def out_features(self) -> int:
        """Real numbers an equivalent classical head would output (2 Bloch angles per kept qubit)."""
        return 2 * self.n_out

    def _gates(self) -> list[torch.Tensor]:
        """One (4, 4) unitary per gate position, in schedule order."""
        unitaries = gate_unitaries(self.weights, self.generators)
        if self.share_weights:
            return [unitaries[s] for s, sub in enumerate(self.schedule) for _ in sub]
        return list(unitaries)

    def circuit_mps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encode and run the circuit on all ``n`` qubits (no compression).

        Args:
            x: (batch, d_in) real.
        Returns:
            n site tensors (batch, left, 2, right).
        """
        self._check_input(x)
        mps = mps_from_product(bloch_encode(x, self.encoding, self.dtype))
        gates = iter(self._gates())
        for sub in self.schedule:
            for i, _ in sub:
                mps_apply_gate(mps, i, next(gates))
        return mps

    def compress_mps(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Circuit then post-selection of the trash qubits on |0>.

        Args:
            x: (batch, d_in) real.
        Returns:
            (MPS of ``n_out`` unnormalised site tensors, log post-selection probability (batch,))
        """
        return mps_postselect(self.circuit_mps(x), self.kept)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compressed normalised states.

        Args:
            x: (batch, d_in) real.
        Returns:
            (batch, 2**n_out) complex, unit norm.
        """
        mps, _ = self.compress_mps(x)
        psi = mps_to_dense(mps)
        # The eps keeps a (measure-zero) zero post-selection amplitude from producing NaN.
        return psi / (psi.norm(dim=-1, keepdim=True) + 1e-30)

    def similarity(self, xa: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        """Fidelity of pairs. xa, xb: (batch, d_in). Returns (batch,) in [0, 1]."""
        return fidelity(self(xa), self(xb))

    def simulate_dense(self, x: torch.Tensor, compress: bool = True) -> torch.Tensor:
        """Reference full-statevector simulation (tests only; refuses more than 20 qubits).

        Args:
            x: (batch, d_in) real.
        Returns:
            (batch, 2**n_out) if ``compress`` else (batch, 2**n) complex, normalised.
        """
        self._check_input(x)
        n = self.n_qubits
        if n > DENSE_MAX_QUBITS:
            raise ValueError(
                f"dense simulation of {n} > {DENSE_MAX_QUBITS} qubits refused; use the MPS path."
            )
        q = bloch_encode(x, self.encoding, self.dtype)
        psi = q[:, 0]
        for i in range(1, n):
            psi = (psi[:, :, None] * q[:, i, None, :]).flatten(1)
        gates = iter(self._gates())
        for sub in self.schedule:
            for i, _ in sub:
                view = psi.reshape(len(psi), 2**i, 4, 2 ** (n - i - 2))
                psi = torch.einsum("ab,lxbr->lxar", next(gates), view).reshape(len(psi), -1)
        if compress:
            index = tuple(slice(None) if k in self.kept else 0 for k in range(n))
            psi = psi.reshape((len(psi),) + (2,) * n)[(slice(None),) + index].reshape(len(psi), -1)
        return psi / psi.norm(dim=-1, keepdim=True)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise ValueError(f"expected input of shape (batch, {self.d_in}), got {tuple(x.shape)}.")
