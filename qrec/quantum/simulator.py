"""A fast exact batched VarNet simulator in pure torch (float32/float64, CPU or CUDA).

Why it is fast, in order of impact:

1. **Light cone.** Each group of readout wires is simulated on its own light cone only
   (:func:`qrec.quantum.lightcone.readout_groups`): the seed's ``pairs`` design under ⟨Z_0⟩ is a
   2-qubit problem whatever k is, ``all_pairs`` at L=2 is k+1 qubits, not 2k.
2. **Real amplitudes.** RY and CNOT are real matrices and the embedding starts from |0…0⟩, so
   the state is a real vector of 2^m entries — half the memory and a quarter of the flops of a
   complex simulation.
3. **Fusion.** Every RY that precedes the first CNOT on its wire is folded into the initial
   product state (RY(a)·RY(b) = RY(a+b)); runs of CNOTs become one index permutation; the last
   permutation is folded into the diagonal readout (⟨ψ|Pᵀ Z P|ψ⟩ = Σ ψ² · (Z∘P)).
4. **Dense small cones.** Up to ``DENSE_MAX_WIRES`` wires the remaining gates are multiplied into
   one 2^m × 2^m real matrix (shared by the batch) and applied with a single matmul; larger cones
   apply each gate as one strided pass over the state, in batch chunks sized for the cache, with
   activation checkpointing under autograd so a training batch of 1,024 at 16 qubits fits.

Outputs and gradients (inputs and weights) equal the PennyLane circuit of
:func:`qrec.quantum.circuits.varnet_qfunc` (tested to 1e-6 in float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from torch.utils.checkpoint import checkpoint

from qrec.quantum.circuits import VarNetSpec, varnet_gates
from qrec.quantum.lightcone import readout_groups

DENSE_MAX_WIRES = 8
# Per-chunk state size for the strided path: small enough to stay in cache and avoid the page
# faults of huge fresh allocations (measured: at 16 qubits, 58–74% of CPU time went to page faults with
# glibc's default allocator).
CHUNK_ELEMENTS = 1 << 20
# Positions per rotation pass (a 2^q × 2^q Kronecker block): fewer passes vs more flops per entry.
ROTATION_BLOCK = 4


@dataclass
class _Plan:
    """A compiled simulation of one readout group on its light-cone wires."""

    wires: list[int]  # simulated wires; position p is bit (m-1-p) of the basis index (big-endian)
    observed: list[int]  # readout wires this group produces, in column order of ``diag``
    init_weights: list[list[tuple[int, int]]]  # per position: RY angles folded into the start
    # ("rys", {pos: [weight idx]}) | ("perm", idx, inverse idx); runs of RYs merged into one "rys" op
    ops: list[tuple] = field(default_factory=list)
    diag: torch.Tensor | None = None  # (n_observed, 2^m) readout signs, trailing permutation folded in


def _cnot_index(m: int, control: int, target: int) -> torch.Tensor:
    """Gather index of CNOT on positions (control, target): new[x] = old[idx[x]]."""
    x = torch.arange(2**m)
    return x ^ (((x >> (m - 1 - control)) & 1) << (m - 1 - target))


def _compile_group(spec: VarNetSpec, observed: list[int], cone) -> _Plan:
    gates = varnet_gates(spec)
    wires = list(cone.wires)
    pos = {w: p for p, w in enumerate(wires)}
    m = len(wires)
    plan = _Plan(wires=wires, observed=observed, init_weights=[[] for _ in wires])
    pending: list[list[tuple[int, int]]] = [[] for _ in wires]
    touched = [False] * m  # a CNOT has acted on this position: RYs can no longer be folded in

    def flush(positions: range | tuple[int, ...]) -> None:
        # RYs still pending on other wires commute with every gate emitted since they were issued,
        # so once one rotation pass is needed, all touched wires' pending RYs join it: one pass
        # per layer instead of one per CNOT, and the CNOT runs between them stay fused.
        needs_pass = any(pending[p] and touched[p] for p in positions)
        for p in range(m) if needs_pass else positions:
            if not pending[p]:
                continue
            if touched[p]:
                if not (plan.ops and plan.ops[-1][0] == "rys"):
                    plan.ops.append(("rys", {}))
                plan.ops[-1][1][p] = pending[p]
            else:
                plan.init_weights[p] += pending[p]
            pending[p] = []

    for index in cone.gates:
        gate = gates[index]
        if gate.kind == "ry":
            pending[pos[gate.wires[0]]].append(gate.param)
        elif gate.kind == "cnot":
            c, t = pos[gate.wires[0]], pos[gate.wires[1]]
            flush((c, t))
            touched[c] = touched[t] = True
            idx = _cnot_index(m, c, t)
            if plan.ops and plan.ops[-1][0] == "perm":
                # old-perm then this one: new[x] = s1[idx[x]] = s0[prev[idx[x]]]
                plan.ops[-1] = ("perm", plan.ops[-1][1][idx])
            else:
                plan.ops.append(("perm", idx))
    flush(range(m))
    basis = torch.arange(2**m)
    diag = torch.stack([1.0 - 2.0 * ((basis >> (m - 1 - pos[w])) & 1).double() for w in observed])
    if plan.ops and plan.ops[-1][0] == "perm":
        # Σ_x s0[idx[x]]² z[x] = Σ_y s0[y]² z'[y] with z'[idx[x]] = z[x]
        idx = plan.ops.pop()[1]
        folded = torch.empty_like(diag)
        folded[:, idx] = diag
        diag = folded
    plan.diag = diag
    # store each permutation with its inverse: the backward pass of a gather is then a gather too
    plan.ops = [op if op[0] == "rys" else ("perm", op[1], torch.argsort(op[1])) for op in plan.ops]
    return plan


@lru_cache(maxsize=64)
def compile_varnet(spec: VarNetSpec) -> tuple[_Plan, ...]:
    """Compiled plans, one per readout group; cached per design (gate lists are static)."""
    return tuple(_compile_group(spec, obs, cone) for obs, cone in readout_groups(spec))


def _rotation_block(angles: list[torch.Tensor | None], like: torch.Tensor) -> torch.Tensor:
    """⊗ RY(angle) over consecutive positions (None = identity), first position most significant."""
    block = torch.ones(1, 1, dtype=like.dtype, device=like.device)
    for angle in angles:
        if angle is None:
            r = torch.eye(2, dtype=like.dtype, device=like.device)
        else:
            c, s = torch.cos(angle / 2), torch.sin(angle / 2)
            r = torch.stack([torch.stack([c, -s]), torch.stack([s, c])])
        block = torch.kron(block, r)
    return block


def _apply_rotations(
    state: torch.Tensor, m: int, angles: dict[int, torch.Tensor], spare: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """RY on several positions of a (batch, 2^m) real state, ``ROTATION_BLOCK`` positions per pass.

    Rotations on neighbouring positions are multiplied into one small Kronecker matrix. Each pass
    applies it to the *last* q positions and, in the same batched matmul (a transposed operand
    costs nothing), moves them to the front; after passes covering all m positions the order is
    back where it started. One GEMM read+write of the state per block, instead of several
    elementwise passes per rotation or a bmm over millions of tiny matrices.

    Returns:
        (new state, free buffer): with a ``spare`` buffer the passes ping-pong between the two.
    """
    batch = state.shape[0]
    stop = m
    while stop > 0:
        start = max(0, stop - ROTATION_BLOCK)
        q = stop - start
        block = _rotation_block([angles.get(p) for p in range(start, stop)], state)
        if spare is None:
            state = _Rotate.apply(state.reshape(batch, 2 ** (m - q), 2**q), block).reshape(batch, -1)
        else:
            view = state.reshape(batch, 2 ** (m - q), 2**q).transpose(1, 2)
            torch.bmm(block.expand(batch, -1, -1), view, out=spare.view(batch, 2**q, 2 ** (m - q)))
            state, spare = spare, state
        stop = start
    return state, spare


class _Rotate(torch.autograd.Function):
    """out[b] = block @ view[b]ᵀ for view (batch, R, Q), block (Q, Q) -> (batch, Q, R).

    Autograd's generic matmul backward materialises the transposed operands; here both
    gradients are single batched matmuls on the stored layouts.
    """

    @staticmethod
    def forward(ctx, view: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(view, block)
        # explicit bmm: BLAS reads the transposed operand in place (matmul would copy it)
        return torch.bmm(block.expand(len(view), -1, -1), view.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        view, block = ctx.saved_tensors
        grad_view = None
        if ctx.needs_input_grad[0]:
            grad_view = torch.bmm(grad.transpose(1, 2), block.expand(len(grad), -1, -1))
        grad_block = None
        if ctx.needs_input_grad[1]:  # Σ_b grad[b] @ view[b]: (Q, R) @ (R, Q)
            grad_block = torch.bmm(grad, view).sum(0)
        return grad_view, grad_block


class _Permute(torch.autograd.Function):
    """state[:, idx] whose backward gathers with the inverse permutation (index_select's backward
    is a scatter-add, several times slower on CPU)."""

    @staticmethod
    def forward(ctx, state: torch.Tensor, idx: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(idx, inverse)
        return state.index_select(1, idx)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        idx, inverse = ctx.saved_tensors
        return _Permute.apply(grad, inverse, idx), None, None


def _apply_ops(
    state: torch.Tensor, plan: _Plan, weights: torch.Tensor, spare: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    m = len(plan.wires)
    for op in plan.ops:
        if op[0] == "perm":
            idx = op[1].to(state.device)
            if spare is None:
                state = _Permute.apply(state, idx, op[2].to(state.device))
            else:
                torch.index_select(state, 1, idx, out=spare)
                state, spare = spare, state
        else:
            angles = {p: sum(weights[idx] for idx in widx) for p, widx in op[1].items()}
            state, spare = _apply_rotations(state, m, angles, spare)
    return state, spare


def _product(amps: list[torch.Tensor]) -> torch.Tensor:
    """Kronecker product of per-wire amplitudes (batch, 2) -> (batch, 2^len), first most significant."""
    state = amps[0]
    for amp in amps[1:]:
        state = (state.unsqueeze(-1) * amp.unsqueeze(1)).reshape(len(state), -1)
    return state


def _initial_state(
    x: torch.Tensor, weights: torch.Tensor, plan: _Plan, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Product state ⊗_p RY(π·x_w + folded weights)|0⟩: (batch, 2^m), first wire most significant.

    Built as the outer product of two half-register products, so the one full-size multiply has
    a long inner dimension (an inner dimension of 2 vectorises badly); ``out`` receives it.
    """
    amps = []
    for p, w in enumerate(plan.wires):
        theta = x[:, w] * math.pi
        for idx in plan.init_weights[p]:
            theta = theta + weights[idx]
        amps.append(torch.stack([torch.cos(theta / 2), torch.sin(theta / 2)], dim=-1))  # (batch, 2)
    if len(amps) == 1:
        return amps[0]
    half = len(amps) // 2
    left, right = _product(amps[:half]), _product(amps[half:])
    if out is None:
        return (left.unsqueeze(-1) * right.unsqueeze(1)).reshape(len(x), -1)
    torch.mul(left.unsqueeze(-1), right.unsqueeze(1), out=out.view(len(x), left.shape[1], right.shape[1]))
    return out.view(len(x), -1)


def _group_dense(x: torch.Tensor, weights: torch.Tensor, plan: _Plan) -> torch.Tensor:
    # Rows of R are the images of the basis states, so ψ_out = ψ_in @ R; R depends on weights only.
    eye = torch.eye(2 ** len(plan.wires), dtype=x.dtype, device=x.device)
    rotation, _ = _apply_ops(eye, plan, weights)
    state = _initial_state(x, weights, plan) @ rotation
    return (state * state) @ plan.diag.to(x).T


def _group_strided(
    x: torch.Tensor, weights: torch.Tensor, plan: _Plan, *buffers: torch.Tensor
) -> torch.Tensor:
    if buffers:  # no autograd: reuse two state buffers (fresh large allocations page-fault)
        size = len(x) * 2 ** len(plan.wires)
        a, b = (buf[:size] for buf in buffers)
        state = _initial_state(x, weights, plan, a)
        state, spare = _apply_ops(state, plan, weights, b.view(state.shape))
        probs = torch.mul(state, state, out=spare)
    else:
        state, _ = _apply_ops(_initial_state(x, weights, plan), plan, weights)
        probs = state * state
    return _readout(probs, plan.diag.to(x))


def _readout(probs: torch.Tensor, diag: torch.Tensor) -> torch.Tensor:
    """(batch, 2^m) probabilities × (n_obs, 2^m) diagonal observables -> (batch, n_obs)."""
    if len(diag) == 1:  # mv: its backward is a cheap outer product (mm's K=1 backward is not)
        return torch.mv(probs, diag[0]).unsqueeze(1)
    return probs @ diag.T


def _run_group(x: torch.Tensor, weights: torch.Tensor, plan: _Plan) -> torch.Tensor:
    m = len(plan.wires)
    if m <= DENSE_MAX_WIRES:
        return _group_dense(x, weights, plan)
    chunk = max(1, CHUNK_ELEMENTS >> m)
    grad = torch.is_grad_enabled() and (x.requires_grad or weights.requires_grad)
    if grad:
        # Recompute each chunk in backward instead of storing every intermediate state:
        # memory stays ~ one chunk's states whatever the batch size.
        parts = [
            checkpoint(_group_strided, part, weights, plan, use_reentrant=False) for part in x.split(chunk)
        ]
        return torch.cat(parts)
    buffers = [torch.empty(min(chunk, len(x)) << m, dtype=x.dtype, device=x.device) for _ in range(2)]
    return torch.cat([_group_strided(part, weights, plan, *buffers) for part in x.split(chunk)])


def varnet_expvals(x: torch.Tensor, weights: torch.Tensor, spec: VarNetSpec) -> torch.Tensor:
    """⟨Z_w⟩ on every readout wire of a VarNet design, exactly.

    Args:
        x: (batch, 2k) inputs [u, v] in [0, 1] (angles are π·x).
        weights: (n_layers, 2k) RY angles.
        spec: the design.

    Returns:
        (batch, n_readout): one column for ``z0``, 2k columns (wire order) otherwise.
    """
    if x.ndim != 2 or x.shape[1] != spec.n_wires:
        raise ValueError(f"VarNet inputs must be (batch, {spec.n_wires}), got {tuple(x.shape)}.")
    if tuple(weights.shape) != spec.weight_shape:
        raise ValueError(f"VarNet weights must be {spec.weight_shape}, got {tuple(weights.shape)}.")
    weights = weights.to(x.dtype)
    plans = compile_varnet(spec)
    columns: dict[int, torch.Tensor] = {}
    for plan in plans:
        out = _run_group(x, weights, plan)
        for j, w in enumerate(plan.observed):
            columns[w] = out[:, j]
    return torch.stack([columns[w] for w in sorted(columns)], dim=1)


def varnet_forward(x: torch.Tensor, weights: torch.Tensor, spec: VarNetSpec) -> torch.Tensor:
    """The circuit's output as the PennyLane qfunc returns it.

    Returns:
        (batch,) for ``z0`` and ``mean_z``; (batch, 2k) for ``all_z``.
    """
    z = varnet_expvals(x, weights, spec)
    if spec.readout == "z0":
        return z[:, 0]
    if spec.readout == "mean_z":
        return z.mean(dim=1)
    return z


def simulated_qubits(spec: VarNetSpec) -> list[int]:
    """Qubits simulated per readout group (a report of what the light cone saves)."""
    return [len(plan.wires) for plan in compile_varnet(spec)]
