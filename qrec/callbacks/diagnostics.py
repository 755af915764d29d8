"""``DissipationProbe`` (``callbacks=diagnostics``): Hessian spectrum, negative curvature, weight sparsity.

Every ``every_n_steps`` optimizer steps the probe takes the current training batch, rebuilds the loss
with a differentiable gradient and runs Lanczos on Hessian-vector products
(:mod:`qrec.diagnostics.hessian`); it logs ``diag/lambda_max``, ``diag/lambda_min``,
``diag/neg_fraction`` (and ``_curved``), ``diag/weight_sparsity`` and ``diag/row_nnz_mean``. At the end
of training it writes ``diagnostics.json`` and ``diagnostics.png``, stating at which steps the conditions
of Liu et al. 2023 hold and the cost estimate for the longest window where they do
(:mod:`qrec.diagnostics.conditions`).

The loss comes from ``pl_module.diagnostic_loss(batch)`` when the model defines it (a side-effect-free
loss: no logging), else from ``training_step(batch, batch_idx)``. Works with Lightning's ``ModelPruning``:
sparsity is read from the masked weights and the Hessian is taken w.r.t. the trainable ``*_orig`` tensors,
whose pruned coordinates have exactly zero rows. Models with no trainable parameters or with
``automatic_optimization = False`` (the closed-form ALS, SVD, NMF, EASE) get a "not applicable" record.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from qrec.diagnostics.conditions import ConditionThresholds, check_conditions, cost_estimate, weight_sparsity
from qrec.diagnostics.hessian import HessianOperator, hessian_row_nnz, hessian_spectrum

log = logging.getLogger(__name__)


class DissipationProbe(Callback):
    """Periodic Hessian / sparsity probe (see the module docstring).

    Args:
        every_n_steps: probe interval in optimizer steps (> 0); step 1 is always probed. The default
            (200) keeps the probe under 10% of the two-tower's fit time (``bench/diagnostics.py``: one
            probe of the qi head costs about 12 training steps).
        lanczos_steps: Krylov dimension per probe (each costs one Hessian-vector product).
        probes: random Lanczos start vectors per measurement.
        row_samples: Hessian rows sampled for the model-sparsity estimate (one HVP each), among the
            coordinates with a non-zero gradient on the batch.
        max_batch: probe on the first ``max_batch`` rows of the batch (cheaper; None = whole batch).
        neg_tol: relative threshold below which an eigenvalue counts as negative.
        sparsity_atol: ``|w| <= atol`` counts as a zero weight.
        eps: target precision in the cost estimate.
        thresholds: overrides of :class:`qrec.diagnostics.conditions.ConditionThresholds` fields.
        output_dir: where ``diagnostics.json`` / ``.png`` go; the trainer's ``default_root_dir`` if None.
        plot: also write the PNG.
        seed: seed of the Lanczos probe vectors.
    """

    def __init__(
        self,
        every_n_steps: int = 200,
        lanczos_steps: int = 10,
        probes: int = 1,
        row_samples: int = 2,
        max_batch: int | None = 128,
        neg_tol: float = 1e-3,
        sparsity_atol: float = 0.0,
        eps: float = 1e-2,
        thresholds: dict[str, float] | None = None,
        output_dir: str | None = None,
        plot: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if every_n_steps <= 0:
            raise ValueError(f"DissipationProbe every_n_steps={every_n_steps} must be a positive interval.")
        if lanczos_steps < 2 or probes < 1 or row_samples < 0:
            raise ValueError(
                f"need lanczos_steps >= 2, probes >= 1, row_samples >= 0; "
                f"got {lanczos_steps}, {probes}, {row_samples}."
            )
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch={max_batch} must be positive or None.")
        self.every_n_steps, self.lanczos_steps, self.probes = every_n_steps, lanczos_steps, probes
        self.row_samples, self.max_batch, self.neg_tol = row_samples, max_batch, neg_tol
        self.sparsity_atol, self.eps, self.plot, self.seed = sparsity_atol, eps, plot, seed
        self.thresholds = ConditionThresholds(**(thresholds or {}))
        self.output_dir = output_dir
        self.records: list[dict[str, Any]] = []
        self.not_applicable: str | None = None
        self.probe_seconds = 0.0

    # --- hooks ------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.records, self.probe_seconds = [], 0.0
        self.not_applicable = self._why_not_applicable(pl_module)
        if self.not_applicable:
            log.warning("DissipationProbe: %s", self.not_applicable)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step  # optimizer steps taken so far (>= 1 here)
        if self.not_applicable or not (step == 1 or step % self.every_n_steps == 0):
            return
        start = time.perf_counter()
        record = self.measure(pl_module, batch, batch_idx)
        record["step"] = step
        self.records.append(record)
        keys = (
            "lambda_max",
            "lambda_min",
            "neg_fraction",
            "neg_fraction_curved",
            "weight_sparsity",
            "row_nnz_mean",
        )
        pl_module.log_dict({f"diag/{k}": float(record[k]) for k in keys})
        self.probe_seconds += time.perf_counter() - start

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        start = time.perf_counter()
        out = Path(self.output_dir or trainer.default_root_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary = self.summary(total_steps=trainer.global_step)
        if self.plot and self.records:
            self._plot(out / "diagnostics.png", summary)
        # the one-off cost of this report (plot included), so the probe's total cost is on record
        summary["report_seconds"] = time.perf_counter() - start
        (out / "diagnostics.json").write_text(json.dumps(summary, indent=2, default=float))
        log.info("DissipationProbe: %s", summary["statement"])

    # --- measurement ------------------------------------------------------------------------------
    def measure(self, pl_module: L.LightningModule, batch: Any, batch_idx: int = 0) -> dict[str, Any]:
        """One measurement on ``batch``: spectrum, negative curvature, sparsity, conditions."""
        batch = self._subsample(batch)
        params = [p for p in pl_module.parameters() if p.requires_grad]
        was_training = pl_module.training
        try:
            op = HessianOperator(lambda: self._loss(pl_module, batch, batch_idx), params)
            device = params[0].device
            spectrum = hessian_spectrum(
                op.matvec,
                op.dim,
                self.lanczos_steps,
                self.probes,
                self.neg_tol,
                self.seed + len(self.records),
                device,
            )
            rows = (
                hessian_row_nnz(
                    op.matvec,
                    op.dim,
                    self.row_samples,
                    candidates=op.active_coordinates(),
                    seed=self.seed,
                    device=device,
                )
                if self.row_samples
                else {
                    "row_nnz_mean": float("nan"),
                    "row_nnz_max": float("nan"),
                    "row_density_mean": float("nan"),
                }
            )
        finally:
            pl_module.train(was_training)
            pl_module.zero_grad(set_to_none=True)
        sparsity = weight_sparsity(pl_module, self.sparsity_atol)
        conditions = check_conditions(spectrum, sparsity, rows, self.thresholds)
        conditions.pop("thresholds")
        return {"loss": float(op.loss.detach()), **spectrum, **rows, **sparsity, **conditions}

    def _loss(self, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> torch.Tensor:
        from qrec.models.contract import RecommenderModule

        loss = pl_module.diagnostic_loss(batch) if isinstance(pl_module, RecommenderModule) else None
        if loss is not None:
            return loss
        out = pl_module.training_step(batch, batch_idx)
        loss = out["loss"] if isinstance(out, dict) else out
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise TypeError(
                "DissipationProbe needs training_step (or diagnostic_loss) to return a scalar loss."
            )
        return loss

    def _subsample(self, batch: Any) -> Any:
        """First ``max_batch`` rows of a tensor or a tuple/list/dict of same-length tensors."""
        if self.max_batch is None:
            return batch
        if isinstance(batch, torch.Tensor):
            return batch[: self.max_batch]
        if isinstance(batch, (tuple, list)):
            return type(batch)(self._subsample(b) for b in batch)
        if isinstance(batch, dict):
            return {k: self._subsample(v) for k, v in batch.items()}
        return batch

    @staticmethod
    def _why_not_applicable(pl_module: L.LightningModule) -> str | None:
        name = type(pl_module).__name__
        if not pl_module.automatic_optimization:
            return (
                f"not applicable to {name}: it is fitted in closed form (automatic_optimization=False), "
                "so there is no gradient-descent trajectory whose Hessian could be probed."
            )
        if not any(p.requires_grad for p in pl_module.parameters()):
            return f"not applicable to {name}: it has no trainable parameters."
        return None

    # --- reporting --------------------------------------------------------------------------------
    def summary(self, total_steps: int) -> dict[str, Any]:
        """Records, steps where the conditions hold, and the cost estimate of the longest such window."""
        if self.not_applicable:
            return {"applicable": False, "statement": self.not_applicable, "records": []}
        steps = [r["step"] for r in self.records]
        holding = [r["step"] for r in self.records if r["all_hold"]]
        window = self._longest_window()
        if window:
            first, last = window[0]["step"], window[-1]["step"]
            # The window extends to the next measurement (or the end): conditions are assumed to hold
            # between probes, which is all an interval-sampled probe can say.
            nxt = next((s for s in steps if s > last), total_steps)
            t_window = max(nxt - first, 1)
            regime = "T^2" if any(r["regime"] == "T^2" for r in window) else "T"
            final = window[-1]
            cost = cost_estimate(
                int(final["n_params"]),
                int(final["n_nonzero"]),
                t_window,
                self.eps,
                regime,
                self.thresholds.polylog_power,
            )
            cost.update(first_step=first, steps=t_window, regime=regime)
            statement = (
                f"The paper's conditions (sparse model, sparse weights, dissipative) hold at "
                f"{len(holding)}/{len(steps)} probed steps {holding}; longest window from step {first} "
                f"for {t_window} steps, runtime regime O({regime} polylog n)."
            )
        else:
            cost = None
            failing = {
                k: sum(not r[k] for r in self.records)
                for k in ("sparse_model", "sparse_weights", "almost_dissipative")
            }
            statement = (
                f"The paper's conditions hold at none of the {len(steps)} probed steps "
                f"(failures per condition: {failing}); its quantum speed-up argument does not "
                "apply."
            )
        return {
            "applicable": True,
            "statement": statement,
            "steps_where_conditions_hold": holding,
            "probed_steps": steps,
            "total_steps": total_steps,
            "every_n_steps": self.every_n_steps,
            "probe_seconds": self.probe_seconds,
            "cost_estimate": cost,
            "thresholds": vars(self.thresholds),
            "assumptions": "see qrec.diagnostics.conditions: constants 1, fault-tolerant QPU op = 1 flop, "
            "QRAM-style upload of the s non-zero weights, tomography download s/eps^2, "
            "classical SGD costs n per step.",
            "records": self.records,
        }

    def _longest_window(self) -> list[dict[str, Any]]:
        best: list[dict[str, Any]] = []
        current: list[dict[str, Any]] = []
        for record in self.records:
            current = current + [record] if record["all_hold"] else []
            if len(current) > len(best):
                best = current
        return best

    def _plot(self, path: Path, summary: dict[str, Any]) -> None:
        # A bare Figure renders with Agg without touching pyplot's global backend or figure manager;
        # fixed margins instead of tight_layout save a full extra draw (the report is part of fit time).
        from matplotlib.figure import Figure

        steps = [r["step"] for r in self.records]
        fig = Figure(figsize=(7, 7))
        fig.subplots_adjust(left=0.14, right=0.97, top=0.93, bottom=0.08, hspace=0.12)
        axes = fig.subplots(3, 1, sharex=True)
        axes[0].plot(steps, [r["lambda_max"] for r in self.records], "o-", label="λ_max")
        axes[0].plot(steps, [r["lambda_min"] for r in self.records], "s-", label="λ_min")
        axes[0].set_yscale("symlog", linthresh=1e-3)
        axes[0].set_ylabel("Hessian eigenvalue")
        axes[1].plot(
            steps, [r["neg_fraction_curved"] for r in self.records], "o-", color="C3", label="of curved"
        )
        axes[1].plot(steps, [r["neg_fraction"] for r in self.records], "s--", color="C1", label="of all")
        axes[1].legend()
        axes[1].axhline(self.thresholds.almost_neg_fraction, ls="--", color="grey", lw=0.8)
        axes[1].set_ylabel("negative-curvature\nfraction (SLQ)")
        axes[2].plot(
            steps, [1 - r["weight_sparsity"] for r in self.records], "o-", color="C2", label="weights"
        )
        axes[2].plot(
            steps, [r["row_density_mean"] for r in self.records], "s-", color="C4", label="Hessian rows"
        )
        axes[2].axhline(self.thresholds.max_weight_density, ls="--", color="grey", lw=0.8)
        axes[2].set_yscale("log")
        axes[2].set_ylabel("non-zero density")
        axes[2].set_xlabel("training step")
        for ax in axes:
            for step in summary["steps_where_conditions_hold"]:
                ax.axvspan(step - 0.5, step + 0.5, color="green", alpha=0.2)
        axes[0].legend()
        axes[2].legend()
        fig.suptitle("DissipationProbe (green: all conditions hold)", fontsize=10)
        fig.savefig(path, dpi=110)
