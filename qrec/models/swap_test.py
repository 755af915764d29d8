"""SWAP-test recommender: r̂ = offset + SWAP-test estimate of user_lat·item_lat (``model=swap_test``).

The latents are those of :class:`qrec.models.svd.SVDModule` (TruncatedSVD of the bias-centred training
matrix, user_lat = U·√S, item_lat = √S·Vᵀ, fitted on train only), so with exact probabilities and the
sign-safe estimator this model *is* the ``svd`` model; ``shots=N`` shows what sampling costs.

The seed report's estimator (``estimator: seed``) is (2·p0 − 1)·|u||v| = (u·v)²/(|u||v|): never
negative and wrong whenever the vectors are not parallel — kept only to reproduce the seed.
"""

from __future__ import annotations

import torch

from qrec.data.datamodule import RatingsDataModule
from qrec.models.contract import require_non_negative, require_positive
from qrec.models.svd import SVDModule
from qrec.quantum.estimators import (
    sample_p0,
    seed_estimate,
    sign_safe_estimate,
    sign_safe_vectors,
    swap_test_p0,
)

BACKENDS = ("torch", "pennylane")
ESTIMATORS = ("sign_safe", "seed")


class SwapTestModule(SVDModule):
    """Truncated SVD whose dot product is estimated by a SWAP test.

    Args:
        k: number of SVD factors (latent dimension; each register has ⌈log2(k+1)⌉ qubits with the
            sign-safe estimator's extra component, ⌈log2 k⌉ with the seed's).
        center: what the SVD factorises (see :class:`SVDModule`; ``bias`` by default).
        estimator: ``sign_safe`` (correct u·v) or ``seed`` (the seed's wrong formula).
        backend: ``torch`` — p0 in closed form, Binomial(shots, p0)/shots with shots; ``pennylane`` —
            the circuit of :func:`qrec.quantum.circuits.swap_test_qfunc` as a TorchLayer.
        device, diff_method, shots, noise: PennyLane execution (see
            :func:`qrec.quantum.layers.check_device_config`); ``shots: null`` = exact probabilities.
            The torch backend supports shots but not noise.
        chunk: pairs per TorchLayer call (bounds the broadcast state's memory).
        seed: seeds the randomized SVD solver.
    """

    def __init__(
        self, k: int = 10, center: str = "bias", estimator: str = "sign_safe", backend: str = "torch",
        device: str = "default.qubit", diff_method: str = "best", shots: int | None = None,
        noise: float = 0.0, chunk: int = 4096, seed: int = 0,
    ):  # fmt: skip
        super().__init__(rank=k, center=center, seed=seed)
        require_positive(chunk=chunk)
        require_non_negative(noise=noise)
        if estimator not in ESTIMATORS:
            raise ValueError(
                f"model.estimator={estimator!r} is unknown; choose one of {', '.join(ESTIMATORS)}."
            )
        if backend not in BACKENDS:
            raise ValueError(f"model.backend={backend!r} is unknown; choose one of {', '.join(BACKENDS)}.")
        from qrec.quantum.circuits import SwapTestSpec
        from qrec.quantum.layers import check_device_config

        self.spec = SwapTestSpec(k + 1 if estimator == "sign_safe" else k)
        if backend == "pennylane":
            check_device_config(self.spec.n_wires, device, diff_method, shots, noise, swap_test=True)
        else:
            check_device_config(self.spec.n_wires, "default.qubit", "best", shots, 0.0)  # shots only
            if noise:
                raise ValueError("model.noise needs backend=pennylane with device=default.mixed.")
        self.save_hyperparameters()

    def build(self, dm: RatingsDataModule) -> None:
        k, limit = self.hparams.k, min(dm.n_users, dm.n_items)
        if not 0 < k < limit:
            raise ValueError(
                f"model.k={k} is the SVD rank and must lie in 1..{limit - 1} "
                f"for {dm.n_users} users x {dm.n_items} items."
            )
        super().build(dm)
        self.layer = None
        if self.hparams.backend == "pennylane":
            from qrec.quantum.layers import make_torch_layer

            hp = self.hparams
            self.layer = make_torch_layer(self.spec, hp.device, hp.diff_method, hp.shots, hp.noise)

    def p0(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """P(ancilla = 0) for (batch, dim) vector pairs, exact or sampled as configured."""
        if self.layer is None:
            p0 = swap_test_p0(u, v)
            return p0 if self.hparams.shots is None else sample_p0(p0, self.hparams.shots)
        from qrec.quantum.circuits import pad_pair

        chunk = self.hparams.chunk
        parts = [self.layer(pad_pair(a, b, self.spec))[:, 0] for a, b in zip(u.split(chunk), v.split(chunk))]
        return torch.cat(parts).to(u.dtype)

    def dot(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(batch,) SWAP-test estimate of user_lat·item_lat."""
        u, v = self.user_factors[users].double(), self.item_factors[items].double()
        if self.hparams.estimator == "seed":
            return seed_estimate(self.p0(u, v), u.norm(dim=1), v.norm(dim=1))
        uu, vv, c2 = sign_safe_vectors(u, v)
        return sign_safe_estimate(self.p0(uu, vv), uu.norm(dim=1), vv.norm(dim=1), c2)

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.offset(users, items) + self.dot(users, items).to(self.mu.dtype)
