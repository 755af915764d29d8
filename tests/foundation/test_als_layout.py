"""RowLayout's memory budget: chunked and grouped solves equal the one-shot solve."""

import numpy as np
import torch

from qrec.models.components.als import RowLayout


def test_budgeted_solve_equals_unbudgeted_on_skewed_rows():
    g = torch.Generator().manual_seed(0)
    n_rows, n_cols, d = 40, 30, 5
    weights = torch.arange(1, n_rows + 1, dtype=torch.float64) ** -1.5  # one row holds a large share
    rows = torch.multinomial(weights, 3000, replacement=True, generator=g)
    cols = torch.randint(0, n_cols, (3000,), generator=g)
    features = torch.randn(n_cols, d, generator=g, dtype=torch.float64)
    target = torch.randn(3000, generator=g, dtype=torch.float64)
    reg = torch.full((d,), 0.1, dtype=torch.float64)
    whole = RowLayout(rows, cols, n_rows, budget=1 << 30).solve(features, target, reg)
    small = RowLayout(rows, cols, n_rows, group_size=8, budget=97)
    assert max(len(r) * o.shape[1] for r, o, _ in small.groups[1:]) <= 97 * 8  # groups shrink for long rows
    torch.testing.assert_close(small.solve(features, target, reg), whole, rtol=1e-10, atol=1e-10)


def test_conjugate_gradient_reaches_the_exact_solve():
    """CG is exact after d steps in exact arithmetic; in float64 d + 5 steps match Cholesky and numpy."""
    g = torch.Generator().manual_seed(1)
    n_rows, n_cols, d, m = 30, 25, 6, 600
    rows = torch.randint(0, n_rows - 1, (m,), generator=g)  # the last row has no observations
    cols = torch.randint(0, n_cols, (m,), generator=g)
    features = torch.randn(n_cols, d, generator=g, dtype=torch.float64)
    target = torch.randn(m, generator=g, dtype=torch.float64)
    reg = torch.full((d,), 0.05, dtype=torch.float64)
    layout = RowLayout(rows, cols, n_rows, group_size=4, block_rows=8)
    exact = layout.solve(features, target, reg)
    start = torch.randn(n_rows, d, generator=g, dtype=torch.float64)
    approx = layout.solve(features, target, reg, init=start, cg_steps=d + 5)
    torch.testing.assert_close(approx, exact, rtol=1e-8, atol=1e-8)
    for r in range(n_rows - 1):  # plain per-row reference: (XᵀX + n·reg·I) w = Xᵀt
        x, t = features[cols[rows == r]].numpy(), target[rows == r].numpy()
        gram = x.T @ x + len(t) * np.diag(reg.numpy())
        np.testing.assert_allclose(exact[r].numpy(), np.linalg.solve(gram, x.T @ t), rtol=1e-9, atol=1e-9)
    assert torch.equal(approx[-1], torch.zeros(d, dtype=torch.float64))  # no observations -> 0, as exact
    few = layout.solve(features, target, reg, init=exact, cg_steps=2)  # warm start at the answer stays there
    torch.testing.assert_close(few, exact, rtol=1e-8, atol=1e-8)


def test_als_with_cg_steps_matches_exact_rmse():
    """model.cg_steps=3 (warm-started CG) ends within 1e-3 validation RMSE of the exact ALS."""
    from qrec.data.datamodule import RatingsDataModule
    from qrec.data.synthetic import make_synthetic_ratings
    from qrec.models.als import ALSModule

    table = make_synthetic_ratings(300, 200, n_ratings=20_000, rank=5, features=False, seed=0)
    dm = RatingsDataModule(lambda: table, split="random", seed=0, batch_size=None)
    dm.setup()
    rmse = {}
    for steps in (0, 3):
        torch.manual_seed(0)
        model = ALSModule(rank=16, cg_steps=steps)
        model.attach(dm)
        for _ in range(10):
            model.fit_step(dm.train.users, dm.train.items, dm.train.ratings)
        rmse[steps] = float(((model.predict(dm.val.users, dm.val.items) - dm.val.ratings) ** 2).mean().sqrt())
    assert abs(rmse[3] - rmse[0]) < 1e-3, rmse
