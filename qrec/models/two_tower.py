"""Two-tower BPR recommender with a linear or quantum-inspired (``qi``) projection head (``model=two_tower``).

``score(u, i) = f(sim(h(E_u[u]), h(E_i[i]))) + b_i`` with one projection head ``h`` shared by both towers
and an optional item bias ``b_i``:

- ``head=linear``: ``nn.Linear(dim, out_dim)``, cosine similarity, ``f(s) = s / temperature``;
- ``head=qi``: :class:`qrec.quantum.projection.QuantumProjection` (``dim / 2`` qubits -> ``m = n_qubits_out``)
  and fidelity ``F = |<psi_u|psi_i>|^2``, ``f(F) = F^(1/m) / temperature`` (:func:`fidelity_score`): monotone
  in ``F``, so items are ranked by fidelity. An ``m``-qubit head is compared with a linear head of
  ``out_dim = 2m`` (the real numbers that describe ``m`` Bloch vectors).

Modes:

- ``bpr``: embeddings and head trained jointly with the BPR loss on (user, positive, uniform negative)
  triples, one negative per positive.
- ``distill``: the towers are frozen rating-ALS factors (rank ``dim``, fitted by the foundation's
  ``ALSModule`` or loaded from a ``model=als`` checkpoint), standardised per dimension;
  only the head trains, to preserve each user's similarity ranking over items (listwise KL between
  softmaxes of teacher dot products and student similarities over sampled items).

Data: :class:`qrec.data.implicit.ImplicitDataModule` without item features (``data=ml100k_implicit``), i.e.
the CAQUBO issue's ranking protocol: ratings ≥ 4 are interactions, random 80/20 then 80/20, a user's
training (and, for test, validation) items excluded from the ranking; ``data.train_fraction`` for the
small-data comparison. Ranking metrics come from :func:`qrec.metrics.ranking_metrics` (tie-aware; ``val/ndcg_10``, ...).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from qrec.checkpoints import load_user_checkpoint
from qrec.data.datamodule import RatingsDataModule
from qrec.data.implicit import ImplicitDataModule, implicit_datamodule
from qrec.data.splits import Split
from qrec.distributed import gather_rows
from qrec.metrics import ranking_metrics
from qrec.models.contract import RankingModule, require_non_negative, require_positive
from qrec.quantum.projection import QuantumProjection, fidelity, fidelity_matrix, linear_head_params


def fit_als_factors(dm: ImplicitDataModule, rank: int, reg: float, sweeps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pretrained rating factors from the foundation's ``ALSModule`` (explicit ALS-WR with biases).

    The teacher sees every rating except the validation and test interactions (ratings below the
    interaction threshold included: they are never held-out positives), fitted through ``ALSModule``'s
    own contract, so it is exactly what ``python train.py model=als model.rank=<rank>`` trains.

    Returns:
        (user_factors (n_users, rank), item_factors (n_items, rank)).
    """
    from qrec.models.als import ALSModule

    held_out = np.concatenate([dm.rows["val"], dm.rows["test"]])
    train = np.setdiff1d(np.arange(len(dm.table.ratings)), held_out)
    ratings_dm = RatingsDataModule(dm.dataset, seed=dm.seed, batch_size=None)
    ratings_dm.use_split(dm.table, Split(train, dm.rows["val"], dm.rows["test"]))
    teacher = ALSModule(rank=rank, reg=reg)
    trainer = L.Trainer(
        max_epochs=sweeps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    trainer.fit(teacher, datamodule=ratings_dm)
    return teacher.user_factors.detach().clone(), teacher.item_factors.detach().clone()


def fidelity_score(
    fid: torch.Tensor, n_qubits: int, temperature: float, link: str = "root", eps: float = 1e-12
) -> torch.Tensor:
    """BPR logit of an ``n_qubits``-qubit fidelity ``F``; monotone in ``F`` (items are ranked by fidelity).

    - ``link="root"``: ``F^(1/n_qubits) / temperature``. Comparable with the linear head's
      ``cosine / temperature``: for product states it is the geometric mean of the per-qubit fidelities, in
      [0, 1] whatever the number of qubits, where ``F`` itself falls like ``2^-m`` (``F / t`` gave near-zero
      BPR gradients). Computed in the log domain, ``exp(log(F + eps) / m)``.
    - ``link="log"``: ``log(F + eps) / temperature``: unbounded below, so one badly aligned qubit dominates
      the logit. Kept for the ablation (``bench/diagnostics.py --ablation``): it trails ``root`` on
      validation nDCG@10.
    """
    log_fid = torch.log(fid + eps)
    if link == "root":
        return torch.exp(log_fid / n_qubits) / temperature
    return log_fid / temperature


class TwoTowerModule(RankingModule):
    """Two-tower recommender (see the module docstring).

    Args:
        dim: embedding dimension (even for ``head=qi``: two coordinates per qubit).
        head: ``"linear"`` or ``"qi"``.
        out_dim: linear head output size.
        n_qubits_out: qi head kept qubits (``<= dim / 2``).
        layers, gate, share_weights, encoding: the qi circuit, see ``QuantumProjection``.
        temperature: scores are the head's similarity (cosine, or the fidelity's m-th root) divided by this.
        fidelity_link: qi head: ``"root"`` or ``"log"``, see :func:`fidelity_score`.
        fidelity_eps: qi head: added to the fidelity before its log (keeps the gradient finite at 0).
        lr, weight_decay: Adam.
        lr_schedule: ``"cosine"`` anneals the learning rate to 0 over ``trainer.max_epochs`` (better on
            validation for both heads, most for qi, which plateaus early at a constant rate; README) or
            ``"constant"``.
        embed_reg: L2 on the embeddings (and item biases) of each batch (BPR's usual regulariser).
        item_bias: ``bpr``: add a learned item bias to the score (popularity), the same for both heads.
        init_std: embedding initialisation std.
        mode: ``"bpr"`` or ``"distill"``.
        teacher_ckpt: ``distill``: a ``model=als`` checkpoint (its ``user_factors``/``item_factors``); if None
            ``ALSModule(rank=dim)`` is fitted here on the training ratings.
        teacher_reg, teacher_sweeps: in-process teacher fit.
        distill_items: items sampled per step for the listwise distillation loss.
        distill_temperature: teacher softmax temperature, in units of the teacher scores' std.
        k: ranking cut-off of the reported metrics.
        seed: initialisation seed of the embeddings and teacher.
    """

    def __init__(
        self,
        dim: int = 64,
        head: str = "linear",
        out_dim: int = 16,
        n_qubits_out: int = 8,
        layers: int = 1,
        gate: str = "su4",
        share_weights: bool = True,
        encoding: str = "sigmoid",
        temperature: float = 0.3,
        fidelity_link: str = "root",
        fidelity_eps: float = 1e-12,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
        lr_schedule: str = "cosine",
        embed_reg: float = 1e-4,
        item_bias: bool = True,
        init_std: float = 0.1,
        mode: str = "bpr",
        teacher_ckpt: str | None = None,
        teacher_reg: float = 0.125,
        teacher_sweeps: int = 10,
        distill_items: int = 256,
        distill_temperature: float = 0.5,
        k: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"model.dim={dim} must be positive.")
        if head not in ("linear", "qi"):
            raise ValueError(f"model.head={head!r} must be 'linear' or 'qi'.")
        if fidelity_link not in ("root", "log"):
            raise ValueError(f"model.fidelity_link={fidelity_link!r} must be 'root' or 'log'.")
        if lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"model.lr_schedule={lr_schedule!r} must be 'cosine' or 'constant'.")
        if mode not in ("bpr", "distill"):
            raise ValueError(f"model.mode={mode!r} must be 'bpr' or 'distill'.")
        require_positive(temperature=temperature, distill_temperature=distill_temperature, fidelity_eps=fidelity_eps,
                         n_qubits_out=n_qubits_out, layers=layers, lr=lr, init_std=init_std,
                         teacher_sweeps=teacher_sweeps, distill_items=distill_items, k=k)  # fmt: skip
        require_non_negative(weight_decay=weight_decay, embed_reg=embed_reg, teacher_reg=teacher_reg)
        self.save_hyperparameters()
        if head == "qi":  # raises at once on odd dim or too many qubits
            self.head = QuantumProjection(
                dim, n_qubits_out, layers=layers, gate=gate, share_weights=share_weights, encoding=encoding
            )
        else:
            if out_dim < 1:
                raise ValueError(f"model.out_dim={out_dim} must be positive.")
            self.head = nn.Linear(dim, out_dim)
        self._built = False
        self._eval_scores: list[torch.Tensor] = []  # (batch, 3 or 4) per-user metrics
        self._eval_users: list[torch.Tensor] = []

    # --- setup ------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self.attach(implicit_datamodule(self.trainer, "TwoTowerModule", "ml100k_implicit, which model=two_tower sets"))

    def attach(self, dm: ImplicitDataModule) -> None:
        """``build`` on ``dm`` once (also usable without a Trainer, e.g. before ``load_state_dict``)."""
        if self._built:
            return
        dm.setup()
        self.build(dm)

    def build(self, dm: ImplicitDataModule) -> None:
        """Create the towers (trainable embeddings, or frozen teacher factors in ``distill`` mode)."""
        hp = self.hparams
        gen = torch.Generator().manual_seed(hp.seed)
        if hp.mode == "bpr":
            self.user_emb = nn.Parameter(hp.init_std * torch.randn(dm.n_users, hp.dim, generator=gen))
            self.item_emb = nn.Parameter(hp.init_std * torch.randn(dm.n_items, hp.dim, generator=gen))
            # Popularity lives in the item bias, so the similarity (what the heads compare) need not
            # encode it; without it both heads ranked below plain popularity.
            bias = torch.zeros(dm.n_items)
            if hp.item_bias:
                self.item_bias = nn.Parameter(bias)
            else:
                self.register_buffer("item_bias", bias)
        else:
            if hp.teacher_ckpt:
                state = load_user_checkpoint(hp.teacher_ckpt, "model.teacher_ckpt")["state_dict"]
                p, q = state["user_factors"].float(), state["item_factors"].float()
                if p.shape[1] != hp.dim:
                    raise ValueError(f"teacher rank {p.shape[1]} != model.dim={hp.dim}.")
            else:
                p, q = fit_als_factors(dm, hp.dim, hp.teacher_reg, hp.teacher_sweeps)
            self.register_buffer("teacher_user", p)
            self.register_buffer("teacher_item", q)
            # Standardised per dimension (a fixed map, no parameters) so the Bloch angles are O(1).
            scale = torch.cat([p, q]).std(0).clamp_min(1e-8)
            self.register_buffer("user_emb", p / scale)
            self.register_buffer("item_emb", q / scale)
            self.register_buffer("item_bias", torch.zeros(dm.n_items))  # the head alone is distilled
        self._built = True

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if self.hparams.lr_schedule == "constant":
            return optimizer
        epochs = self.trainer.max_epochs
        if epochs is None or epochs < 1:
            raise ValueError(
                f"model.lr_schedule=cosine anneals over trainer.max_epochs, which is {epochs}; "
                "set trainer.max_epochs or use model.lr_schedule=constant."
            )
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)}

    # --- scoring ----------------------------------------------------------------------------------
    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Head output: (batch, dim) -> unit (batch, out_dim) real or (batch, 2**m) complex."""
        z = self.head(x)
        return z if self.hparams.head == "qi" else F.normalize(z, dim=-1)

    def _to_score(self, sims: torch.Tensor) -> torch.Tensor:
        """Similarity -> logit: ``cosine / temperature`` (linear) or :func:`fidelity_score` (qi)."""
        if self.hparams.head == "qi":
            hp = self.hparams
            return fidelity_score(sims, hp.n_qubits_out, hp.temperature, hp.fidelity_link, hp.fidelity_eps)
        return sims / self.hparams.temperature

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(batch,) scores of (user, item) pairs. The head runs once per distinct id (batches repeat ids)."""
        u_ids, u_inv = users.unique(return_inverse=True)
        i_ids, i_inv = items.unique(return_inverse=True)
        zu, zi = self.project(self.user_emb[u_ids]), self.project(self.item_emb[i_ids])
        zu, zi = zu[u_inv], zi[i_inv]
        sims = fidelity(zu, zi) if self.hparams.head == "qi" else (zu * zi).sum(-1)
        return self._to_score(sims) + self.item_bias[items]

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """(len(users), n_items) scores against every item (the ranking contract)."""
        return self.score_matrix(users)

    def score_matrix(
        self, users: torch.Tensor, item_states: torch.Tensor | None = None, items: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(len(users), n_items) scores against every item, or against ``items`` whose head outputs
        ``item_states`` are given."""
        zi = (
            self.project(self.item_emb if items is None else self.item_emb[items])
            if item_states is None
            else item_states
        )
        zu = self.project(self.user_emb[users])
        sims = fidelity_matrix(zu, zi) if self.hparams.head == "qi" else zu @ zi.T
        return self._to_score(sims) + (self.item_bias if items is None else self.item_bias[items])

    # --- training ---------------------------------------------------------------------------------
    def diagnostic_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The training loss of ``batch`` without logging (DissipationProbe uses it)."""
        users, pos, neg = batch
        if self.hparams.mode == "distill":
            return self._distill_loss(users, pos)
        ids = torch.cat([pos, neg])
        scores = self.score(users.repeat(2), ids)
        bpr = -F.logsigmoid(scores[: len(pos)] - scores[len(pos) :]).mean()
        reg = (
            self.user_emb[users].square().sum(-1)
            + self.item_emb[pos].square().sum(-1)
            + self.item_emb[neg].square().sum(-1)
            + self.item_bias[pos].square()
            + self.item_bias[neg].square()
        )
        return bpr + self.hparams.embed_reg * reg.mean()

    def _distill_loss(self, users: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        users = users.unique()
        # Items: a random sample plus the batch positives, so both head and tail of each ranking are seen.
        sample = torch.randint(len(self.item_emb), (hp.distill_items,), device=users.device)
        items = torch.cat([sample, pos[: hp.distill_items]]).unique()
        teacher = self.teacher_user[users] @ self.teacher_item[items].T  # (u, i)
        teacher = teacher / (teacher.std() + 1e-8) / hp.distill_temperature
        student = self.score_matrix(users, items=items)
        return F.kl_div(
            F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True, reduction="batchmean"
        )

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        loss = self.diagnostic_loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    # --- evaluation ---------------------------------------------------------------------------------
    def _eval_step(self, users: torch.Tensor, split: str) -> None:
        """Per-user metrics of one batch of users (each has a held-out item in ``split``)."""
        if not self._eval_users:
            self._item_states = self.project(self.item_emb)
        dm, k = self.trainer.datamodule, self.hparams.k
        batch = users.cpu().numpy()
        scores = self.score_matrix(users, self._item_states).float().cpu().numpy()
        exclude = dm.exclude(split)[batch]
        res = ranking_metrics(scores, dm.relevant(split)[batch], exclude, k=k, per_user=True)
        values = [res["per_user"][f"{m}_{k}"] for m in ("ndcg", "recall", "hr")]
        if self.hparams.mode == "distill":
            values.append(self._overlap(scores, batch, exclude))
        self._eval_users.append(users)
        self._eval_scores.append(torch.as_tensor(np.stack(values, 1), device=users.device))

    def _eval_end(self, split: str) -> dict[str, float]:
        """Means over every evaluated user once (gathered from all ranks under DDP; see qrec.distributed)."""
        users, values = gather_rows(torch.cat(self._eval_users), torch.cat(self._eval_scores))
        self._eval_scores, self._eval_users, self._item_states = [], [], None
        means = values.double().mean(0).tolist()
        k = self.hparams.k
        if split == "test":
            columns = values.double().cpu().numpy()
            per_user = {f"{m}_{k}": columns[:, i] for i, m in enumerate(("ndcg", "recall", "hr"))}
            self.test_per_user = {"users": users.cpu().numpy(), **per_user}
        metrics = {f"{split}/ndcg_{k}": means[0], f"{split}/recall_{k}": means[1], f"{split}/hr_{k}": means[2]}
        if self.hparams.mode == "distill":
            dm = self.trainer.datamodule
            teacher = (self.teacher_user @ self.teacher_item.T).cpu().numpy()
            metrics[f"{split}/teacher_overlap_{k}"] = means[3]
            teacher_metrics = ranking_metrics(teacher, dm.relevant(split), dm.exclude(split), k=k)
            metrics[f"{split}/teacher_ndcg_{k}"] = teacher_metrics[f"ndcg_{k}"]
        return metrics

    def _overlap(self, scores: np.ndarray, users: np.ndarray, exclude: sp.csr_matrix) -> np.ndarray:
        """(len(users),) share of the teacher's top-k the student keeps (known items excluded)."""
        k = self.hparams.k
        teacher = (self.teacher_user[torch.as_tensor(users, device=self.device)] @ self.teacher_item.T).cpu().numpy()
        excluded = exclude.toarray().astype(bool)
        top_t = np.argpartition(-np.where(excluded, -np.inf, teacher), k, axis=1)[:, :k]
        top_s = np.argpartition(-np.where(excluded, -np.inf, scores), k, axis=1)[:, :k]
        return np.array([len(np.intersect1d(a, b)) / k for a, b in zip(top_t, top_s, strict=True)])

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        metrics = self._eval_end("val")
        self.log_dict(metrics, prog_bar=True, sync_dist=True)  # equal on every rank: the average is exact

    def test_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._eval_end("test"), sync_dist=True)
        self.extra_metrics = self.head_parameter_counts()

    def head_parameter_counts(self) -> dict[str, float]:
        """Head parameters vs a linear head with the same output size (2 reals per kept qubit)."""
        n_head = sum(p.numel() for p in self.head.parameters())
        out = self.head.out_features
        n_linear = linear_head_params(self.hparams.dim, out)
        return {
            "head_params": float(n_head),
            "linear_head_params_same_out": float(n_linear),
            "head_param_ratio": n_linear / n_head,
        }
