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
import time
import warnings
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

METHODS = ("caqubo", "miqubo", "coqubo", "qubo_boosting", "cqfs")


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
            "CAQUBO Retrain") and report its test nDCG@10 (first combination only).
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
        self.ks = [k] if k is None or isinstance(k, int) else [None if v is None else int(v) for v in k]
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

    # --- Lightning hook ---------------------------------------------------------------------------
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if not hasattr(pl_module, "counterfactual") or not hasattr(pl_module, "evaluate"):
            raise TypeError(
                f"{type(pl_module).__name__} is not a feature-aware ranking model "
                "(FeatureRankingModule); CAQUBO needs one, e.g. model=itemknn_cbf."
            )
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
        if path and Path(path).is_file():  # weights_only=False: this run's own best checkpoint
            state = torch.load(path, map_location=pl_module.device, weights_only=False)["state_dict"]
            pl_module.load_state_dict(state)

    # --- the analysis ------------------------------------------------------------------------------
    def run(self, model, out: Path) -> dict:
        """Build Q, solve every (solver, k), evaluate, write files; returns the selection.json dict."""
        from qrec.selection import SolverError, solve

        out.mkdir(parents=True, exist_ok=True)
        dm = model.dm
        names = list(dm.feature_names)
        start = time.perf_counter()
        Q, info = self.build_q(model)
        build_s = time.perf_counter() - start
        cf = info.pop("_deltas", None)
        if cf is not None:  # kept so other K / solvers / pair terms can be tried without re-running it
            np.savez(out / "counterfactual.npz", single=cf.single, pair=cf.pair, base=cf.base)
        all_metrics = {**model.evaluate("val"), **model.evaluate("test")}
        sweep = []
        for solver in self.solvers:
            for k in self.ks:
                used, error = solver, None
                try:
                    selection = solve(
                        Q,
                        solver,
                        k=k,
                        num_reads=self.num_reads,
                        seed=self.seed,
                        penalty=self.penalty,
                        penalty_scale=self.penalty_scale,
                    )
                except SolverError as err:
                    if self.on_solver_error == "raise":
                        raise
                    warnings.warn(f"{err} Falling back to 'sa'.", stacklevel=2)
                    used, error = "sa", str(err)
                    selection = solve(
                        Q,
                        "sa",
                        k=k,
                        num_reads=self.num_reads,
                        seed=self.seed,
                        penalty=self.penalty,
                        penalty_scale=self.penalty_scale,
                    )
                keep = selection.x
                if not keep.any():
                    # With no features every Item-KNN score ties and the ranking falls back to item index
                    # order (≈ first appearance in the ratings file, i.e. popularity): not a real result.
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
            result["test_ndcg_10_retrained"] = self._retrain(
                model, np.asarray([n in set(sweep[0]["selected"]) for n in names])
            )
        (out / "selection.json").write_text(json.dumps(result, indent=2, default=_json_default))
        np.save(out / "caqubo_q.npy", Q)
        if self.heatmap:
            self._heatmap(Q, out / "caqubo_q.png")
        model.extra_metrics = {
            **getattr(model, "extra_metrics", {}),
            "caqubo/val_ndcg_10_selected": result["val_ndcg_10_selected"],
            "caqubo/test_ndcg_10_selected": result["test_ndcg_10_selected"],
            "caqubo/n_selected": float(result["n_selected"]),
        }
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

    def _retrain(self, model, keep: np.ndarray) -> float:
        """Fit a fresh copy of the model using only the selected features; its test nDCG@10."""
        fresh = type(model)(**dict(model.hparams))
        fresh.initial_keep = keep
        trainer = L.Trainer(
            max_epochs=getattr(model.trainer, "max_epochs", 1) or 1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_train_batches=model.trainer.limit_train_batches,
        )
        trainer.fit(fresh, datamodule=model.dm)
        fresh.set_feature_mask(keep)
        return fresh.evaluate("test", keep)["test/ndcg_10"]

    @staticmethod
    def _heatmap(Q: np.ndarray, path: Path) -> None:
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
