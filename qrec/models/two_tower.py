"""Two-tower BPR recommender with a linear or quantum-inspired (``qi``) projection head (``model=two_tower``).

``score(u, i) = f(sim(h(E_u[u]), h(E_i[i]))) + b_i`` with one projection head ``h`` shared by both towers
and an optional item bias ``b_i``:

- ``head=linear``: ``nn.Linear(dim, out_dim)``, cosine similarity, ``f(s) = s / temperature``;
- ``head=qi``: :class:`qrec.quantum.projection.QuantumProjection` (``dim / 2`` qubits -> ``n_qubits_out``)
  and fidelity ``F = |<psi_u|psi_i>|^2``, ``f(F) = log(F + eps)``. An ``m``-qubit head is compared with
  a linear head of ``out_dim = 2m`` (the real numbers that describe ``m`` Bloch vectors).

Modes:

- ``bpr``: embeddings and head trained jointly with the BPR loss on (user, positive, uniform negative)
  triples, one negative per positive.
- ``distill``: the towers are frozen rating-ALS factors (rank ``dim``, fitted by the foundation's
  ``ALSModule`` or loaded from a ``model=als`` checkpoint), standardised per dimension;
  only the head trains, to preserve each user's similarity ranking over items (listwise KL between
  softmaxes of teacher dot products and student similarities over sampled items).

:class:`TwoTowerDataModule` is the implicit-feedback view of the shared rating split: every training
rating (optionally only those ``>= min_rating``) is an interaction; validation/test relevance are the
held-out interactions; a user's training (and, for test, validation) items are excluded from the ranking.
Ranking metrics come from :mod:`qrec.metrics_ranking` (``val/ndcg_10``, ``test/ndcg_10``, ...).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

from qrec.data.datamodule import RatingsDataModule
from qrec.data.movielens import DataError
from qrec.metrics_ranking import ranking_metrics
from qrec.quantum.projection import QuantumProjection, fidelity, fidelity_matrix, linear_head_params


class _BPRRows(Dataset):
    """Indexed by a whole batch of rows (as the rating DataModule): (users, positives, uniform negatives).

    A uniform negative is a training positive with probability ~ the user's density (about 6% on
    MovieLens-100k); like most BPR implementations we do not reject those.
    """

    def __init__(self, users: torch.Tensor, items: torch.Tensor, n_items: int, seed: int):
        self.users, self.items, self.n_items = users, items, n_items
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = torch.as_tensor(rows)
        return (
            self.users[rows],
            self.items[rows],
            torch.randint(self.n_items, (len(rows),), generator=self.gen),
        )


class TwoTowerDataModule(RatingsDataModule):
    """Implicit-feedback batches and ranking targets on the shared rating split (60/20/20 by default).

    Known duplication: CAQUBO's :class:`qrec.data.implicit.ImplicitDataModule` implements the paper's
    protocol (ratings ≥ 4, 80/20 then 80/20) with item features; the two-tower numbers in the README were
    measured with this module, so merging the two is left for a change that re-measures them.

    Args (beyond :class:`qrec.data.datamodule.RatingsDataModule`'s):
        min_rating: only ratings ``>= min_rating`` count as interactions (None: every rating).
        train_fraction: keep this random share of the training interactions (small-data experiments);
            the ranking still excludes every training item, so metrics stay comparable.
    """

    def __init__(self, *args, min_rating: float | None = None, train_fraction: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 < train_fraction <= 1:
            raise DataError(f"data.train_fraction={train_fraction} must be in (0, 1].")
        if self.batch_size is None:
            raise DataError("TwoTowerDataModule needs a finite data.batch_size (BPR is trained by SGD).")
        self.min_rating, self.train_fraction = min_rating, train_fraction
        self.interactions: dict[str, sp.csr_matrix] | None = None

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.interactions is not None:
            return
        shape = (self.n_users, self.n_items)

        def csr(part, keep=None):
            mask = (
                np.ones(len(part), bool)
                if self.min_rating is None
                else part.ratings.numpy() >= self.min_rating
            )
            if keep is not None:
                mask &= keep
            u, i = part.users.numpy()[mask], part.items.numpy()[mask]
            return sp.csr_matrix((np.ones(len(u), bool), (u, i)), shape=shape)

        keep = None
        if self.train_fraction < 1:
            rng = np.random.default_rng(self.seed + 1)
            keep = rng.random(len(self.train)) < self.train_fraction
        seen = lambda part: sp.csr_matrix(  # every rated item, whatever its rating: the user has seen it
            (np.ones(len(part), bool), (part.users.numpy(), part.items.numpy())), shape=shape
        )
        train_pos = csr(self.train, keep).tocoo()
        self.train_users = torch.from_numpy(train_pos.row.astype(np.int64))
        self.train_items = torch.from_numpy(train_pos.col.astype(np.int64))
        self.interactions = {
            "val": csr(self.val),
            "test": csr(self.test),
            "exclude_val": seen(self.train),
            "exclude_test": (seen(self.train) + seen(self.val)).astype(bool),
        }

    def train_dataloader(self) -> DataLoader:
        rows = _BPRRows(self.train_users, self.train_items, self.n_items, self.seed)
        order = RandomSampler(range(len(rows)), generator=torch.Generator().manual_seed(self.seed))
        return DataLoader(
            rows, sampler=BatchSampler(order, self.batch_size, drop_last=False), batch_size=None
        )

    def _users_loader(self) -> DataLoader:
        return DataLoader(torch.arange(self.n_users), batch_size=self.eval_batch_size, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        return self._users_loader()

    def test_dataloader(self) -> DataLoader:
        return self._users_loader()


def fit_als_factors(
    dm: RatingsDataModule, rank: int, reg: float, sweeps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pretrained rating factors from the foundation's ``ALSModule`` (explicit ALS-WR with biases).

    Fitted through its own public contract (a private ``Trainer`` on a full-batch copy of the same split),
    so the teacher is exactly what ``python train.py model=als model.rank=<rank>`` trains.

    Returns:
        (user_factors (n_users, rank), item_factors (n_items, rank)).
    """
    from qrec.models.als import ALSModule

    ratings_dm = RatingsDataModule(
        dm.dataset, split=dm.split, seed=dm.seed, fold=dm.fold, val_fraction=dm.val_fraction, batch_size=None
    )
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


class TwoTowerModule(L.LightningModule):
    """Two-tower recommender (see the module docstring).

    Args:
        dim: embedding dimension (even for ``head=qi``: two coordinates per qubit).
        head: ``"linear"`` or ``"qi"``.
        out_dim: linear head output size.
        n_qubits_out: qi head kept qubits (``<= dim / 2``).
        layers, gate, share_weights, encoding: the qi circuit, see ``QuantumProjection``.
        temperature: linear head: scores are cosine similarities divided by this.
        fidelity_eps: qi head: scores are ``log(fidelity + fidelity_eps)``.
        lr, weight_decay: Adam.
        embed_reg: L2 on the embeddings (and item biases) of each batch (BPR's usual regulariser).
        item_bias: ``bpr``: add a learned item bias to the score (popularity), the same for both heads.
        init_std: embedding initialisation std (``head=qi`` with angle encoding does better with ~0.5).
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
        encoding: str = "angle",
        temperature: float = 0.3,
        fidelity_eps: float = 1e-6,
        lr: float = 1e-2,
        weight_decay: float = 0.0,
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
        if mode not in ("bpr", "distill"):
            raise ValueError(f"model.mode={mode!r} must be 'bpr' or 'distill'.")
        if temperature <= 0 or distill_temperature <= 0 or fidelity_eps <= 0:
            raise ValueError(
                "model.temperature, model.distill_temperature and model.fidelity_eps must be > 0."
            )
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
        self.extra_metrics: dict[str, float] = {}
        self._eval_scores: list[np.ndarray] = []

    # --- setup ------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self._built:
            return
        dm = self.trainer.datamodule
        if not isinstance(dm, TwoTowerDataModule):
            raise TypeError(
                f"TwoTowerModule needs an TwoTowerDataModule (model=two_tower sets it), "
                f"got {type(dm).__name__}."
            )
        dm.setup(stage)
        self.build(dm)

    def build(self, dm: TwoTowerDataModule) -> None:
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
                state = torch.load(hp.teacher_ckpt, map_location="cpu", weights_only=False)["state_dict"]
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

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)

    # --- scoring ----------------------------------------------------------------------------------
    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Head output: (batch, dim) -> unit (batch, out_dim) real or (batch, 2**m) complex."""
        z = self.head(x)
        return z if self.hparams.head == "qi" else F.normalize(z, dim=-1)

    def _to_score(self, sims: torch.Tensor) -> torch.Tensor:
        """Similarity -> logit. qi: ``log(F + eps)``, monotone in the fidelity ``F`` (same ranking), so BPR's
        ``sigmoid(s_pos - s_neg)`` is the Bradley-Terry ``F_pos / (F_pos + F_neg)``. Fidelities of
        m-qubit states are ~2^-m apart from their maximum, and ``F / temperature`` gave near-zero BPR
        gradients (test nDCG@10 0.04 after 5 epochs)."""
        if self.hparams.head == "qi":
            return torch.log(sims + self.hparams.fidelity_eps)
        return sims / self.hparams.temperature

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(batch,) scores of (user, item) pairs. The head runs once per distinct id (batches repeat ids)."""
        u_ids, u_inv = users.unique(return_inverse=True)
        i_ids, i_inv = items.unique(return_inverse=True)
        zu, zi = self.project(self.user_emb[u_ids]), self.project(self.item_emb[i_ids])
        zu, zi = zu[u_inv], zi[i_inv]
        sims = fidelity(zu, zi) if self.hparams.head == "qi" else (zu * zi).sum(-1)
        return self._to_score(sims) + self.item_bias[items]

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

    # --- evaluation -------------------------------------------------------------------------------
    def _eval_step(self, users: torch.Tensor) -> None:
        if not self._eval_scores:
            self._item_states = self.project(self.item_emb)
        self._eval_scores.append(self.score_matrix(users, self._item_states).float().cpu().numpy())

    def _eval_end(self, split: str) -> dict[str, float]:
        dm = self.trainer.datamodule
        scores = np.concatenate(self._eval_scores)
        self._eval_scores, self._item_states = [], None
        k = self.hparams.k
        m = ranking_metrics(scores, dm.interactions[split], dm.interactions[f"exclude_{split}"], k=k)
        metrics = {
            f"{split}/ndcg_{k}": m["ndcg"],
            f"{split}/recall_{k}": m["recall"],
            f"{split}/hr_{k}": m["hr"],
        }
        if self.hparams.mode == "distill":
            metrics.update(self._agreement(scores, dm.interactions[f"exclude_{split}"], split))
        return metrics

    def _agreement(self, scores: np.ndarray, exclude: sp.csr_matrix, split: str) -> dict[str, float]:
        """How well the student keeps the teacher's top-k: overlap@k and the teacher's own nDCG@k."""
        k = self.hparams.k
        teacher = (self.teacher_user @ self.teacher_item.T).cpu().numpy()
        t_masked, s_masked = teacher.copy(), scores.copy()
        rows, cols = exclude.nonzero()
        t_masked[rows, cols], s_masked[rows, cols] = -np.inf, -np.inf
        top_t = np.argpartition(-t_masked, k, axis=1)[:, :k]
        top_s = np.argpartition(-s_masked, k, axis=1)[:, :k]
        overlap = np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(top_t, top_s, strict=True)])
        dm = self.trainer.datamodule
        t_ndcg = ranking_metrics(teacher, dm.interactions[split], exclude, k=k)["ndcg"]
        return {f"{split}/teacher_overlap_{k}": float(overlap), f"{split}/teacher_ndcg_{k}": t_ndcg}

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        metrics = self._eval_end("val")
        self.log_dict(metrics, prog_bar=True)

    def test_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._eval_end("test"))
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
