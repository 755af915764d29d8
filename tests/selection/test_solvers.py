"""Solvers against exact enumeration, the cardinality penalty + repair, and failures."""

import socket

import numpy as np
import pytest

from qrec.selection import SolverError, energy, solve
from qrec.selection.solvers import add_cardinality, has_dwave_token, repair

pytest.importorskip("dwave.samplers")


def _random_q(n, seed):
    return np.random.default_rng(seed).normal(size=(n, n))


def _brute(Q, k=None):
    n = len(Q)
    X = ((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(float)
    if k is not None:
        X = X[X.sum(1) == k]
    return energy(Q, X).min()


@pytest.mark.parametrize("solver", ["sa", "tabu", "steepest", "exact"])
@pytest.mark.parametrize("k", [None, 4])
def test_solvers_match_enumeration(solver, k):
    Q = _random_q(10, seed=3)
    reads = 10 if solver == "tabu" else 200  # tabu spends `timeout` (20 ms) per read and is robust
    result = solve(Q, solver, k=k, num_reads=reads, seed=0)
    assert result.energy == pytest.approx(_brute(Q, k))
    assert result.energy == pytest.approx(energy(Q, result.x))
    if k is not None:
        assert result.x.sum() == k


def test_exact_solver_n12():
    Q = _random_q(12, seed=5)
    assert solve(Q, "exact").energy == pytest.approx(_brute(Q))
    assert solve(Q, "exact", k=6).energy == pytest.approx(_brute(Q, 6))


def test_penalty_energy_identity():
    Q = _random_q(6, seed=1)
    U = add_cardinality(Q, 2, strength=3.0)
    X = np.random.default_rng(0).integers(0, 2, size=(30, 6))
    expected = energy(Q, X) + 3.0 * ((X.sum(1) - 2) ** 2 - 4)  # constant λK² dropped
    np.testing.assert_allclose(energy(U, X), expected)


def test_weak_penalty_is_repaired_to_exactly_k():
    Q = -np.abs(_random_q(40, seed=2))  # everything wants to be on
    result = solve(Q, "sa", k=7, num_reads=20, seed=0, penalty=1e-6)
    assert result.feasible_fraction == 0.0  # the penalty is too weak for raw samples...
    assert result.x.sum() == 7  # ...but repair enforces K
    assert np.all(np.isfinite(result.energies)) and len(result.energies) == 20


def test_repair_greedy_on_diagonal_q():
    Q = np.diag([-5.0, -1.0, -3.0, 2.0, -4.0])
    fixed = repair(Q, np.ones((1, 5), dtype=np.int8), 2)
    assert fixed[0].tolist() == [1, 0, 0, 0, 1]
    grown = repair(Q, np.zeros((1, 5), dtype=np.int8), 3)
    assert grown[0].tolist() == [1, 0, 1, 0, 1]


def test_int8_samples_summed_without_overflow():
    # 300 ones in int8 would wrap around under NumPy 2 if summed as int8.
    Q = -np.eye(300)
    result = solve(Q, "steepest", k=300, num_reads=2, seed=0)
    assert result.x.sum() == 300 and result.feasible_fraction == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"solver": "anneal"}, ValueError, "Unknown solver"),
        ({"solver": "sa", "k": 0}, ValueError, "1 ≤ k"),
        ({"solver": "sa", "k": 11}, ValueError, "1 ≤ k"),
        ({"solver": "sa", "num_reads": 0}, ValueError, "num_reads"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        solve(_random_q(10, 0), **kwargs)


def test_exact_refuses_large_n():
    with pytest.raises(SolverError, match="n ≤ 22"):
        solve(_random_q(23, 0), "exact")


@pytest.mark.parametrize("solver", ["qpu", "hybrid"])
def test_dwave_without_token_fails_fast_without_network(solver, monkeypatch, tmp_path):
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(tmp_path / "missing.conf"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert not has_dwave_token()
    with pytest.raises(SolverError, match="DWAVE_API_TOKEN"):
        solve(_random_q(5, 0), solver, k=2)
