"""VarNet: a variational circuit on SVD latents, trained with Adam on the scaled rating (``model=varnet``).

Inputs: user_lat = U·√S and item_lat = √S·Vᵀ from a rank-k TruncatedSVD of the training matrix
(:func:`qrec.models.svd.svd_latents`), each coordinate min–max scaled to [0, 1] with ranges taken
from the users / items of the training split. The circuit (:mod:`qrec.quantum.circuits`) embeds u
on wires 0..k−1 and v on k..2k−1, applies ``n_layers`` × (trainable RY, entangler) and reads out
⟨Z⟩; the prediction is s·⟨Z⟩ + b in scaled-rating units (s a vector for ``readout=all_z``),
optionally on top of the training biases (``offset: bias``).

Light cones (see :mod:`qrec.quantum.lightcone`): the seed's ``pairs`` + ``z0`` design reads one
latent of the user and one of the item, which is why its predictions huddle around the mean.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from qrec.data.datamodule import RatingsDataModule, scale
from qrec.models.base import RatingModule
from qrec.models.components.optim import adam
from qrec.models.contract import require_non_negative, require_positive
from qrec.models.svd import CENTERS, svd_latents
from qrec.quantum.circuits import VarNetSpec

BACKENDS = ("torch", "pennylane")
OFFSETS = ("none", "bias")


def minmax_fit(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column (low, width) of ``values[rows]``; zero widths become 1 (constant columns map to 0)."""
    low, high = values[rows].min(0), values[rows].max(0)
    width = np.where(high - low > 0, high - low, 1.0)
    return low, width


class VarNetModule(RatingModule):
    """VarNet rating model (see the module docstring).

    Args:
        k: SVD rank = latents per user and per item; the circuit has 2k qubits.
        n_layers, entangler, readout: the circuit design (:class:`qrec.quantum.circuits.VarNetSpec`).
        backend: ``torch`` (exact light-cone simulator, fast) or ``pennylane`` (TorchLayer on ``device``).
        device, diff_method, shots, noise: PennyLane execution, checked before training; the torch
            backend is exact and noiseless only.
        center: matrix the SVD factorises: ``bias`` residuals, ``mean``-centred, or ``none`` (raw).
        offset: ``none`` — the circuit predicts the whole (scaled) rating, as in the seed;
            ``bias`` — it predicts the residual over μ + b_u + b_i.
        lr, weight_decay: Adam.
        chunk: samples per TorchLayer call (bounds PennyLane's broadcast memory).
        seed: seeds the SVD solver.
    """

    def __init__(
        self, k: int = 4, n_layers: int = 2, entangler: str = "pairs", readout: str = "z0",
        backend: str = "torch", device: str = "default.qubit", diff_method: str = "best",
        shots: int | None = None, noise: float = 0.0, center: str = "none", offset: str = "none",
        lr: float = 0.01, weight_decay: float = 0.0, chunk: int = 2048, seed: int = 0,
    ):  # fmt: skip
        super().__init__()
        require_positive(lr=lr, chunk=chunk)
        require_non_negative(weight_decay=weight_decay, noise=noise)
        self.spec = VarNetSpec(k, n_layers, entangler, readout)  # validates the design
        if backend not in BACKENDS:
            raise ValueError(f"model.backend={backend!r} is unknown; choose one of {', '.join(BACKENDS)}.")
        if center not in CENTERS:
            raise ValueError(f"model.center={center!r} is unknown; choose one of {', '.join(CENTERS)}.")
        if offset not in OFFSETS:
            raise ValueError(f"model.offset={offset!r} is unknown; choose one of {', '.join(OFFSETS)}.")
        from qrec.quantum.layers import check_device_config

        if backend == "pennylane":
            check_device_config(self.spec.n_wires, device, diff_method, shots, noise)
        elif shots is not None or noise:
            check_device_config(self.spec.n_wires, "default.qubit", "best", shots, 0.0)  # shots ≤ 0 first
            raise ValueError("model.shots/model.noise need backend=pennylane (the torch backend is exact).")
        self.save_hyperparameters()

    def build(self, dm: RatingsDataModule) -> None:
        hp = self.hparams
        if not 0 < hp.k < min(dm.n_users, dm.n_items):
            raise ValueError(
                f"model.k={hp.k} is the SVD rank and must lie in 1..{min(dm.n_users, dm.n_items) - 1} "
                f"for {dm.n_users} users x {dm.n_items} items."
            )
        train = dm.train
        target = train.ratings.double()
        if hp.center == "bias":
            target = target - self.baseline(train.users, train.items).double()
        elif hp.center == "mean":
            target = target - float(self.mu)
        matrix = sp.csr_matrix(
            (target.numpy(), (train.users.numpy(), train.items.numpy())), shape=(dm.n_users, dm.n_items)
        )
        user_lat, item_lat = svd_latents(matrix, hp.k, hp.seed)
        # the scaler sees training users / items only: no validation or test information
        u_low, u_width = minmax_fit(user_lat, np.unique(train.users.numpy()))
        i_low, i_width = minmax_fit(item_lat, np.unique(train.items.numpy()))
        self.register_buffer("user_x", torch.from_numpy((user_lat - u_low) / u_width).float().clamp(0, 1))
        self.register_buffer("item_x", torch.from_numpy((item_lat - i_low) / i_width).float().clamp(0, 1))

        # weights uniform in [0, 2π), TorchLayer's own default, for both backends
        init = torch.rand(self.spec.weight_shape) * 2 * math.pi
        self.layer = None
        if hp.backend == "pennylane":
            from qrec.quantum.layers import make_torch_layer

            self.layer = make_torch_layer(self.spec, hp.device, hp.diff_method, hp.shots, hp.noise)
            with torch.no_grad():
                self.layer.weights.copy_(init)
        else:
            self.weights = nn.Parameter(init)
        n_out = self.spec.n_outputs
        # start as a small perturbation of the mean rating (or of the biases)
        self.head_scale = nn.Parameter(torch.full((n_out,), 0.1 / n_out))
        start = float(scale(self.mu, self.rating_scale)) if hp.offset == "none" else 0.0
        self.head_shift = nn.Parameter(torch.tensor(start))

    def circuit_drawing(self) -> str:
        """Text drawing of the circuit with the current weights on a mid-range input (W&B logs it)."""
        from qrec.optional import require
        from qrec.quantum.circuits import varnet_qfunc

        qml = require("pennylane")
        weights = (self.layer.weights if self.layer is not None else self.weights).detach()
        qnode = qml.QNode(varnet_qfunc(self.spec), qml.device("default.qubit", wires=self.spec.n_wires))
        return qml.draw(qnode, decimals=2)(torch.full((self.spec.n_wires,), 0.5), weights)

    def circuit(self, x: torch.Tensor) -> torch.Tensor:
        """Readout values (batch, 1 or 2k) for inputs (batch, 2k) in [0, 1]."""
        if self.layer is None:
            from qrec.quantum.simulator import varnet_forward

            out = varnet_forward(x, self.weights, self.spec)
        else:
            out = torch.cat([self.layer(part) for part in x.split(self.hparams.chunk)])
        return out.reshape(len(x), -1).to(x.dtype)

    def predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user_x[users], self.item_x[items]], dim=1)
        value = (self.circuit(x) * self.head_scale).sum(-1) + self.head_shift  # scaled-rating units
        lo, hi = self.rating_scale  # one scaled unit is hi - lo in rating units
        if self.hparams.offset == "bias":
            return self.baseline(users, items) + (hi - lo) * value
        return lo + (hi - lo) * value

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        users, items, ratings = batch[:3]
        loss = F.mse_loss(scale(self.predict(users, items), self.rating_scale), scale(ratings, self.rating_scale))
        self.log_train_loss(loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
