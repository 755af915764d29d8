"""Per-model expectations of the contract suite: one row per ``conf/model/*.yaml``, no silent skips.

Every model must have a row (``test_every_model_config_has_a_row`` fails otherwise, naming the file), so a
new model is checked from the day it is added. A row says how to fit the model tiny (data, epochs,
overrides) and what it must achieve on held-out synthetic data:

- rating models: test RMSE ≤ the train-only bias baseline (μ + b_u + b_i, clipped) minus ``margin``
  (``reference="bias"``), or ≤ the global mean's RMSE minus ``margin`` (``reference="mean"``, for the
  bias model itself, whose prediction *is* the baseline);
- rankers: test nDCG@10 ≥ the closed-form expectation of a random ranking plus ``margin``
  (``reference="random"``), or ≥ popularity's plus ``margin`` (``reference="pop"``);
- ``reference="at_random"``: within ``margin`` of the random expectation (a model whose inputs carry no
  signal on this data; above it would mean a leak, below it a bug);
- ``reference="fails"``: a deliberate negative reproduction; the documented expectation is that it does
  NOT beat the bias baseline (asserted, so a change that silently "fixes" it is noticed);
- ``reference="equals_random"`` / ``"equals_pop"``: the reference rankers themselves (``model=random_rank``
  scores exactly the random expectation, ``model=pop`` exactly popularity).

``bad`` lists extra constructor values that must raise ``ValueError`` naming the key, beside the generic
check (every numeric hyper-parameter set to -1).
"""

from __future__ import annotations

from dataclasses import dataclass

RATING_DATA = "synthetic"
RANKING_DATA = "synthetic_implicit"
# Ratings >= 4 are interactions (the synthetic table's default 3 makes nearly every observed rating one, and
# the observed cells are uniformly random, so little but popularity would be left to learn).
IMPLICIT = ("data.threshold=4", "data.batch_size=512")
FEATURES = (*IMPLICIT, "data.features=genres")
BPR = (*FEATURES, "model.lr=0.01")  # tiny budget: larger steps than the ML-100k defaults
# 200 users x 100 items at density 0.4 (~8,000 ratings): big enough for a low-rank model to beat the biases
# by a clear margin, small enough that the whole suite fits in about a minute.
SIZE = ("data.n_users=200", "data.n_items=100")  # feature-aware rankers: the synthetic table's genres


@dataclass(frozen=True)
class Expect:
    task: str  # "rating" | "ranking"
    epochs: int
    reference: str  # bias | mean | fails | random | pop | equals_random | equals_pop
    margin: float = 0.0
    overrides: tuple[str, ...] = ()
    bad: tuple[tuple[str, str], ...] = ()  # (override, text the ValueError must contain)
    why: str = ""

    @property
    def data(self) -> str:
        return RATING_DATA if self.task == "rating" else RANKING_DATA

    @property
    def fit_overrides(self) -> list[str]:
        return [*SIZE, *self.overrides]


# tiny budget: larger steps than the ML-100k default (lr 3e-3); 20 epochs of 256-rating batches
HYBRID = ("model.base_epochs=3", "model.lr=0.01")
RANDOM_FEATURES = "the synthetic genres are drawn independently of the ratings: nothing to find in them"
SOLO = "no bias offset: the circuit alone predicts the rating; it trails the biases on ML-100k too (val 0.980)"
LIGHT_CONE = "the seed's circuit: a 2-qubit light cone (u_0, v_0) cannot beat the biases (README)"

EXPECT: dict[str, Expect] = {
    # --- rating: test RMSE on 200 x 100 synthetic ratings -----------------------------------------------
    "bias": Expect("rating", 5, "mean", 0.05, why="μ + b_u + b_i is the baseline itself: it must beat the mean"),
    "svd": Expect("rating", 1, "bias", 0.05, ("model.rank=3",)),
    "swap_test": Expect("rating", 1, "bias", 0.05, ("model.k=3",)),
    "nmf": Expect("rating", 10, "bias", 0.01, ("model.rank=3",)),
    "als": Expect("rating", 5, "bias", 0.05, ("model.rank=3",)),
    "ease": Expect("rating", 1, "bias", 0.03, ("model.reg=20",)),
    "varnet": Expect("rating", 5, "bias", 0.02, ("model.k=3",)),
    "varnet_solo": Expect("rating", 5, "mean", 0.05, ("model.k=3",), why=SOLO),
    "varnet_seed": Expect("rating", 1, "fails", 0.0, ("data.batch_size=256",), why=LIGHT_CONE),
    "lstm_only": Expect("rating", 20, "bias", 0.05, HYBRID),
    "als_lstm": Expect("rating", 3, "bias", 0.05, (*HYBRID, "model.base.rank=3")),
    "varnet_lstm": Expect("rating", 20, "bias", 0.05, HYBRID),
    "varnet_lstm_e2e": Expect("rating", 20, "bias", 0.05, HYBRID[1:]),
    # members are fitted with their own configs: two closed-form ones keep the fit tiny
    "ensemble": Expect(
        "rating", 1, "bias", 0.05, ("model.members=[als,svd]",), bad=(("model.members=[als]", "at least two"),)
    ),
    "ensemble_lstm_only": Expect(
        "rating", 1, "bias", 0.03, ("model.members=[svd,bias]",), bad=(("model.weights=mean", "model.weights"),)
    ),
    # --- ranking: test nDCG@10 on the same table as implicit feedback (ratings >= 4) ---------------------
    "itemknn_cbf": Expect("ranking", 1, "at_random", 0.03, FEATURES, why=RANDOM_FEATURES),
    "mlp_dp": Expect("ranking", 20, "random", 0.02, BPR),
    "mlp_con": Expect("ranking", 20, "random", 0.02, BPR),
    "ncf": Expect("ranking", 20, "random", 0.02, BPR),
    "two_tower": Expect("ranking", 20, "pop", 0.02, IMPLICIT, why="its learned item bias holds popularity"),
    "pop": Expect("ranking", 1, "equals_pop", why="the popularity reference ranker"),
    "random_rank": Expect("ranking", 1, "equals_random", why="every score tied: exactly the random expectation"),
}
