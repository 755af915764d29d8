"""RowLayout's memory budget: chunked and grouped solves equal the one-shot solve."""

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
