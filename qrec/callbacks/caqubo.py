"""CAQUBO feature selection as a Lightning callback (``callbacks=caqubo``).

After ``fit`` (rank zero only) the callback takes the trained feature-aware model (the best
checkpoint when a ``ModelCheckpoint`` kept one, so the analysis sees the model the run reports),
builds a feature-selection QUBO — CAQUBO from a counterfactual analysis on the *validation* split,
or a baseline (MIQUBO, CoQUBO, QUBO-Boosting, CQFS) from the training data — solves it, and writes
``selection.json`` plus a heatmap of Q (``caqubo_q.png``) in the run directory. The headline numbers
also land in ``metrics.json`` through ``model.extra_metrics`` (``caqubo/...``).

``solver`` and ``k`` may be lists: every (solver, k) combination is solved from the same Q (the
counterfactual analysis, the expensive part, runs once); the first combination fills the top-level
keys and all of them are listed under ``sweep``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from qrec.checkpoints import load_user_checkpoint

METHODS = ("caqubo", "miqubo", "coqubo", "qubo_boosting", "cqfs")
REMOTE_SOLVERS = ("qpu", "hybrid")  # D-Wave cloud: need a token and the network


class CAQUBOCallback(Callback):
    """Select item features with a QUBO after training.

    Args:
        method: ``caqubo`` or a baseline: ``miqubo``, ``coqubo``, ``qubo_boosting``, ``cqfs``.
        solver: a solver of :func:`qrec.selection.solve`, or a list of them.
        k: features to keep, None for CAQUBO's unconstrained optimum, or a list (None allowed inside).
        num_reads, seed, penalty, penalty_scale: passed to :func:`qrec.selection.solve`.
        pair_term, layout: CAQUBO options (see :func:`qrec.selection.caqubo`).
        pairs: compute pair deltas (False: diagonal-only CAQUBO, the paper's ablation).
        n_jobs: worker processes for the counterfactual pairs (None: one per CPU; torch models always
            use one). top_l: cached ranking length.
        on_solver_error: ``raise`` stops the run when a solver cannot run (e.g. ``qpu`` without a
            token); ``fallback`` records the error and uses ``sa`` instead.
        retrain: also re-train a fresh copy of the model with only the selected features (the paper's
            "CAQUBO Retrain"), with the same early stopping and best-checkpoint selection as the original
            fit, and report its validation and test nDCG@10 (first combination only).
        cqfs_beta: β of CQFS. heatmap: write ``caqubo_q.png``. output_dir: where files go
            (default: the trainer's ``default_root_dir``).
        progress: show a progress bar during the counterfactual analysis.
    """

    def __init__(
        self,
        method: str = "caqubo",
        solver: str | list[str] = "sa",
        k: int | None | list[int | None] = None,
        num_reads: int = 100,
        seed: int = 0,
        penalty: str | float = "auto",
        penalty_scale: float = 10.0,
        pair_term: str = "raw",
        layout: str = "upper",
        pairs: bool = True,
        n_jobs: int | None = None,
        top_l: int = 40,
        on_solver_error: str = "raise",
        retrain: bool = False,
        cqfs_beta: float = 1e-3,
        heatmap: bool = True,
        output_dir: str | None = None,
        progress: bool = True,
    ):
        from qrec.selection import SOLVERS

        if method not in METHODS:
            raise ValueError(f"method={method!r} is unknown; choose one of {', '.join(METHODS)}.")
        self.solvers = [solver] if isinstance(solver, str) else list(solver)
        for s in self.solvers:
            if s not in SOLVERS:
                raise ValueError(f"solver={s!r} is unknown; choose one of {', '.join(SOLVERS)}.")
        self.ks = list(k) if isinstance(k, Sequence) and not isinstance(k, str) else [k]
        for v in self.ks:
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"callbacks.caqubo.k={v!r}: k must be null or an integer ≥ 1 (features to keep).")
        if on_solver_error not in ("raise", "fallback"):
            raise ValueError(f"on_solver_error={on_solver_error!r}: choose 'raise' or 'fallback'.")
        self.method, self.num_reads, self.seed = method, num_reads, seed
        self.penalty, self.penalty_scale, self.pair_term, self.layout = (
            penalty,
            penalty_scale,
            pair_term,
            layout,
        )
        self.pairs, self.top_l, self.on_solver_error = pairs, top_l, on_solver_error
        self.n_jobs = n_jobs or os.cpu_count() or 1
        self.retrain, self.cqfs_beta, self.heatmap = retrain, cqfs_beta, heatmap
        self.output_dir, self.progress = output_dir, progress
        self.result: dict | None = None

    # --- Lightning hooks --------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Check everything that can be checked before training: the model kind, k against the number of
        features, and D-Wave tokens for remote solvers (a mistake here must not cost a whole fit)."""
        from qrec.data.implicit import ImplicitDataModule
        from qrec.models.ranking import FeatureRankingModule

        if stage != "fit":
            return
        if not isinstance(pl_module, FeatureRankingModule):
            raise TypeError(
                f"{type(pl_module).__name__} is not a feature-aware ranking model "
                "(FeatureRankingModule); CAQUBO needs one, e.g. model=itemknn_cbf."
            )
        dm = trainer.datamodule
        if isinstance(dm, ImplicitDataModule) and dm.features is not None:
            n = len(dm.feature_names)
            for k in self.ks:
                if k is not None and not 1 <= k <= n:
                    raise ValueError(
                        f"callbacks.caqubo.k={k}: the data has {n} item features, so k must be in 1..{n} "
                        "(or null for the unconstrained optimum)."
                    )
        self._check_tokens()

    def _check_tokens(self) -> None:
        from qrec.selection.solvers import has_dwave_token

        remote = [s for s in self.solvers if s in REMOTE_SOLVERS]
        if not remote or has_dwave_token():
            return
        message = (f"callbacks.caqubo.solver={','.join(remote)} needs a D-Wave Leap token: set DWAVE_API_TOKEN or "
                   "run `dwave config create`.")  # fmt: skip
        if self.on_solver_error == "raise":
            raise ValueError(f"{message} Or use solver=sa|tabu|steepest|exact locally, or "
                             "callbacks.caqubo.on_solver_error=fallback to fall back to sa.")  # fmt: skip
        warnings.warn(f"{message} on_solver_error=fallback: 'sa' will be used instead.", stacklevel=2)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._load_best(trainer, pl_module)
        was_training = pl_module.training
        pl_module.eval()
        try:
            self.result = self.run(pl_module, Path(self.output_dir or trainer.default_root_dir))
        finally:
            pl_module.train(was_training)

    @staticmethod
    def _load_best(trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        checkpoint = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)), None)
        path = checkpoint.best_model_path if checkpoint else ""
        if path and Path(path).is_file():  # the run's best checkpoint (after a resume, the path the resumed file named)
            state = load_user_checkpoint(path, "best_model_path")["state_dict"]
            pl_module.load_state_dict(state)

    # --- the analysis ------------------------------------------------------------------------------
    def run(self, model, out: Path) -> dict:
        """Build Q, solve every (solver, k), evaluate, write files; returns the selection.json dict."""
        from qrec.selection import SolverError, solve

        out.mkdir(parents=True, exist_ok=True)
        dm = model.dm
        names, labels = list(dm.feature_names), list(dm.feature_labels)
        start = time.perf_counter()
        Q, info = self.build_q(model)
        build_s = time.perf_counter() - start
        cf = info.pop("_deltas", None)
        if cf is not None:  # kept so other K / solvers / pair terms can be tried without re-running it
            np.savez(out / "counterfactual.npz", single=cf.single, pair=cf.pair, base=cf.base)
        np.save(out / "caqubo_q.npy", Q)  # saved before solving: a solver failure loses no analysis
        all_metrics = {**model.evaluate("val"), **model.evaluate("test")}
        sweep = []
        for solver in self.solvers:
            for k in self.ks:
                used, error = solver, None
                options = dict(k=k, num_reads=self.num_reads, seed=self.seed, penalty=self.penalty,
                               penalty_scale=self.penalty_scale)  # fmt: skip
                try:
                    selection = solve(Q, solver, **options)
                except Exception as err:
                    # A remote solver fails in many ways (no token, ConnectionError after retries, any
                    # dwave.cloud error); all of them are "this solver cannot run here".
                    if not isinstance(err, SolverError) and solver not in REMOTE_SOLVERS:
                        raise
                    saved = ", ".join(p.name for p in (out / "caqubo_q.npy", out / "counterfactual.npz") if p.exists())
                    if self.on_solver_error == "raise":
                        raise SolverError(
                            f"solver={solver!r} failed: {type(err).__name__}: {err} ({saved} saved in {out}). "
                            "Set callbacks.caqubo.on_solver_error=fallback to fall back to 'sa'."
                        ) from err
                    warnings.warn(f"solver={solver!r} failed ({type(err).__name__}: {err}). Falling back to 'sa'.",
                                  stacklevel=2)  # fmt: skip
                    used, error = "sa", f"{type(err).__name__}: {err}"
                    selection = solve(Q, "sa", **options)
                keep = selection.x
                if not keep.any():
                    # With no features every Item-KNN score ties: the (tie-aware) metric is then exactly that
                    # of a random ranking, not a feature-selection result.
                    warnings.warn(f"{self.method}/{solver}/k={k} selected no feature.", stacklevel=2)
                sel_metrics = {**model.evaluate("val", keep), **model.evaluate("test", keep)}
                sweep.append(
                    {
                        "method": self.method,
                        "solver": used,
                        "requested_solver": solver,
                        "solver_error": error,
                        "k": k,
                        "n_selected": int(keep.sum()),
                        "empty_selection": not keep.any(),
                        "selected": [names[i] for i in np.flatnonzero(keep)],
                        "dropped": [names[i] for i in np.flatnonzero(~keep)],
                        # readable labels, parallel to the raw ids above (which stay the stable keys)
                        "selected_labels": [labels[i] for i in np.flatnonzero(keep)],
                        "dropped_labels": [labels[i] for i in np.flatnonzero(~keep)],
                        "energy": selection.energy,
                        "feasible_fraction": selection.feasible_fraction,
                        "penalty": selection.penalty,
                        "num_reads": selection.num_reads,
                        "solve_s": selection.solve_s,
                        "energy_mean": float(np.mean(selection.energies)),
                        "energy_std": float(np.std(selection.energies)),
                        **{f"{key.replace('/', '_')}_all": value for key, value in all_metrics.items()},
                        **{f"{key.replace('/', '_')}_selected": value for key, value in sel_metrics.items()},
                    }
                )
        result = {
            **sweep[0],
            "counterfactual_s": info.get("counterfactual_s"),
            "build_s": build_s,
            "n_features": len(names),
            "model": type(model).__name__,
            "data": dm.features.source,
            "seed": self.seed,
            "info": {k: v for k, v in info.items() if k != "counterfactual_s"},
            "sweep": sweep,
        }
        if self.retrain:
            result["retrain"] = self._retrain(model, np.asarray([n in set(sweep[0]["selected"]) for n in names]))
            result["test_ndcg_10_retrained"] = result["retrain"]["test_ndcg_10"]
        (out / "selection.json").write_text(json.dumps(result, indent=2, default=_json_default))
        if self.heatmap:
            self._heatmap(Q, out / "caqubo_q.png", labels)
        model.extra_metrics = {
            **model.extra_metrics,
            "caqubo/val_ndcg_10_selected": result["val_ndcg_10_selected"],
            "caqubo/test_ndcg_10_selected": result["test_ndcg_10_selected"],
            "caqubo/n_selected": float(result["n_selected"]),
        }
        if self.retrain:  # the retrained model's scores beside the masked model's, in the run's summary too
            model.extra_metrics["caqubo/val_ndcg_10_retrained"] = result["retrain"]["val_ndcg_10"]
            model.extra_metrics["caqubo/test_ndcg_10_retrained"] = result["retrain"]["test_ndcg_10"]
        return result

    def build_q(self, model) -> tuple[np.ndarray, dict]:
        """The (n, n) QUBO of ``self.method`` and timing/diagnostic info."""
        from qrec.selection import caqubo, coqubo, cqfs, miqubo, qubo_boosting

        dm = model.dm
        F = dm.features.matrix.toarray().astype(np.float64)
        if self.method == "caqubo":
            double = any(p.dtype == torch.float32 for p in model.parameters())
            if double:
                model.double()  # float64 scores: exact ties are reproducible across batch shapes
            try:
                evaluator = model.counterfactual("val", top_l=self.top_l)
                run = getattr(evaluator, "run_torch_safe", evaluator.run)  # torch models: no fork
                cf = run(pairs=self.pairs, progress=self.progress, n_jobs=self.n_jobs)
            finally:
                if double:
                    model.float()
            pair = (
                cf.pair
                if self.pairs
                else np.where(
                    np.eye(len(cf.single), dtype=bool), 0.0, cf.single[:, None] + cf.single[None, :]
                )
            )
            # Without pairs, δ_ij := δ_i + δ_j makes the interaction zero (diagonal-only ablation).
            pair_term = self.pair_term if self.pairs else "interaction"
            Q = caqubo(cf.single, pair, pair_term=pair_term, layout=self.layout)
            info = {
                "counterfactual_s": cf.seconds,
                "evaluations": cf.evaluations,
                "val_ndcg_10_base": cf.base,
                "delta_single_positive": int((cf.single > 0).sum()),
                "delta_single_negative": int((cf.single < 0).sum()),
                **cf.extra,
                "_deltas": cf,
            }
            return Q, info
        X, y, w = self._samples(dm, F)
        if self.method == "miqubo":
            return miqubo(X, y, w), {}
        if self.method == "coqubo":
            return coqubo(X, y, w), {}
        if self.method == "qubo_boosting":
            return qubo_boosting(*self._one_feature_predictions(model, dm)), {}
        from qrec.selection.itemknn import itemknn_weights

        s_cf = itemknn_weights(dm.train.T.toarray().astype(np.float64), 100, 5.0)  # ItemKNN-CF, train only
        return cqfs(F, s_cf, beta=self.cqfs_beta), {}

    def _samples(self, dm, F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item-feature samples with interaction labels, 1:1 negatives, as weighted item rows."""
        users, items = dm.train_pairs
        neg = dm.sample_negatives(users, np.random.default_rng(self.seed))
        pos_w = np.bincount(items, minlength=dm.n_items).astype(float)
        neg_w = np.bincount(neg, minlength=dm.n_items).astype(float)
        X = np.vstack([F, F])
        y = np.r_[np.ones(dm.n_items), np.zeros(dm.n_items)]
        w = np.r_[pos_w, neg_w]
        keep = w > 0
        return X[keep], y[keep], w[keep]

    def _one_feature_predictions(self, model, dm, max_samples: int = 30_000):
        """QUBO-Boosting's (predictions of the n one-feature weak models, labels) on the training positives
        plus 1:1 negatives, subsampled to ``max_samples`` (seeded). The weak models are the model's
        ``one_feature_scores``: Item-KNN refitted per feature; a count proxy for the neural models."""
        rng = np.random.default_rng(self.seed)
        users, items = dm.train_pairs
        neg = dm.sample_negatives(users, rng)
        su, si = np.r_[users, users], np.r_[items, neg]
        y = np.r_[np.ones(len(users)), np.zeros(len(users))]
        if len(su) > max_samples:
            pick = rng.choice(len(su), max_samples, replace=False)
            su, si, y = su[pick], si[pick], y[pick]
        return model.one_feature_scores(su, si), y

    def _retrain(self, model, keep: np.ndarray) -> dict:
        """Fit a fresh copy of the model using only the selected features, as the compared model was fitted.

        The copy gets the original trainer's budget and fresh copies of its early stopping and best-checkpoint
        callbacks (same monitor, mode, patience), and is scored from its best validation checkpoint, so
        "retrain" and "mask the trained model" differ only in the features. Returns its epochs, validation
        and test nDCG@10.
        """
        fresh = type(model)(**dict(model.hparams))
        fresh.initial_keep = keep
        source = model.trainer
        stop = next((c for c in source.callbacks if isinstance(c, EarlyStopping)), None)
        best = next((c for c in source.callbacks if isinstance(c, ModelCheckpoint) and c.monitor), None)
        L.seed_everything(self.seed, verbose=False)
        with tempfile.TemporaryDirectory() as tmp:
            callbacks = []
            if best is not None:
                callbacks.append(ModelCheckpoint(dirpath=tmp, monitor=best.monitor, mode=best.mode, save_top_k=1))
            if stop is not None:
                callbacks.append(EarlyStopping(
                    monitor=stop.monitor, mode=stop.mode, patience=stop.patience, min_delta=abs(float(stop.min_delta)),
                    strict=stop.strict, check_finite=stop.check_finite, stopping_threshold=stop.stopping_threshold,
                    divergence_threshold=stop.divergence_threshold,
                ))  # fmt: skip
            trainer = L.Trainer(
                max_epochs=source.max_epochs, min_epochs=source.min_epochs, callbacks=callbacks, logger=False,
                enable_checkpointing=best is not None, enable_progress_bar=False, enable_model_summary=False,
                limit_train_batches=source.limit_train_batches, limit_val_batches=source.limit_val_batches,
                check_val_every_n_epoch=source.check_val_every_n_epoch, num_sanity_val_steps=0,
                default_root_dir=tmp,
            )  # fmt: skip
            trainer.fit(fresh, datamodule=model.dm)
            epochs = trainer.current_epoch
            if best is not None and callbacks[0].best_model_path:
                blob = load_user_checkpoint(callbacks[0].best_model_path, "best_model_path")
                fresh.load_state_dict(blob["state_dict"])
                epochs = int(blob["epoch"]) + 1
        fresh.set_feature_mask(keep)
        fresh.eval()
        return {
            "epochs": epochs,
            "monitor": best.monitor if best is not None else None,
            "early_stopping": stop is not None,
            "val_ndcg_10": fresh.evaluate("val", keep)["val/ndcg_10"],
            "test_ndcg_10": fresh.evaluate("test", keep)["test/ndcg_10"],
        }

    @staticmethod
    def _heatmap(Q: np.ndarray, path: Path, labels: list[str] | None = None) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from qrec.selection import to_upper

        U = to_upper(Q)
        shown = U + np.triu(U, 1).T  # symmetric view: each pair's total coupling on both sides
        lim = float(np.abs(shown).max()) or 1.0
        fig, ax = plt.subplots(figsize=(6, 5))
        im = ax.imshow(shown, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title("Feature-selection QUBO (blue: keeping lowers the energy)")
        ax.set_xlabel("feature")
        ax.set_ylabel("feature")
        if labels and len(labels) <= 40:  # readable up to about 40 ticks; larger Qs keep index axes
            ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(len(labels)), labels, fontsize=6)
        fig.colorbar(im, ax=ax)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
