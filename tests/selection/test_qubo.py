"""Each QUBO builder on a tiny case computed by hand."""

import numpy as np
import pytest

from qrec.selection import caqubo, coqubo, cqfs, energy, miqubo, qubo_boosting, to_upper

LN2 = np.log(2.0)


def test_caqubo_signs_layouts_and_pair_terms():
    d1 = np.array([0.1, -0.2])
    d2 = np.array([[0.0, 0.05], [0.05, 0.0]])
    np.testing.assert_allclose(caqubo(d1, d2), [[-0.1, -0.05], [0.0, 0.2]])
    np.testing.assert_allclose(caqubo(d1, d2, layout="symmetric"), [[-0.1, -0.05], [-0.05, 0.2]])
    # interaction: δ01 − δ0 − δ1 = 0.05 − 0.1 + 0.2 = 0.15
    np.testing.assert_allclose(caqubo(d1, d2, pair_term="interaction"), [[-0.1, -0.15], [0.0, 0.2]])
    # symmetric counts the pair twice in xᵀQx: E(1,1) = −0.1 + 0.2 − 2·0.05
    assert energy(caqubo(d1, d2, layout="symmetric"), np.array([1, 1])) == pytest.approx(0.0)
    assert energy(caqubo(d1, d2), np.array([1, 1])) == pytest.approx(0.05)


def test_caqubo_rejects_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        caqubo(np.zeros(2), np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="pair_term"):
        caqubo(np.zeros(2), np.zeros((2, 2)), pair_term="both")
    with pytest.raises(ValueError, match="must be"):
        caqubo(np.zeros(3), np.zeros((2, 2)))


def test_to_upper_keeps_energy():
    rng = np.random.default_rng(0)
    Q = rng.normal(size=(5, 5))
    X = rng.integers(0, 2, size=(20, 5))
    np.testing.assert_allclose(energy(to_upper(Q), X), energy(Q, X))
    assert np.allclose(np.tril(to_upper(Q), -1), 0)


def test_miqubo_hand_case():
    # x0 = y exactly; x1 is independent of y, and stays uninformative given x0.
    X = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    y = np.array([1, 1, 0, 0])
    # MI(x0;y) = ln2, MI(x1;y) = 0, CMI(x0;y|x1) = ln2, CMI(x1;y|x0) = 0; m = ln2, α = 0.5
    np.testing.assert_allclose(miqubo(X, y), [[-0.5, -0.5], [0.0, 0.0]], atol=1e-12)


def test_miqubo_binary_fast_path_matches_generic_levels():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 2, size=(200, 4)).astype(float)
    y = (X[:, 0] + rng.random(200) > 1.2).astype(int)
    # Values {0, 2}: same information, forces the generic (one-hot) path.
    np.testing.assert_allclose(miqubo(X, y), miqubo(2 * X, y), atol=1e-12)


def test_coqubo_hand_case():
    X = np.array([[1, 1], [1, 1], [0, 1], [0, 0]])
    y = np.array([1, 1, 0, 0])
    r = 0.125 / (np.sqrt(0.75 * 0.25) * 0.5)  # ρ(x1, y) = ρ(x0, x1) = 1/√3
    np.testing.assert_allclose(coqubo(X, y), 0.5 * np.array([[-1.0, r], [r, -r]]), atol=1e-12)


def test_qubo_boosting_hand_case():
    H = np.array([[1, 1], [1, 1], [0, 1], [0, 0]], dtype=float)
    y = np.array([1, 1, 0, 0])
    r = 1 / np.sqrt(3)
    diag = np.array([4 / 4 + 0.5 - 2 * 1.0, 4 / 4 + 0.5 - 2 * r])  # N_s/n² + λ − 2ρ(h_i, y)
    m = max(np.abs(diag).max(), r)
    expected = 0.5 * np.array([[diag[0], r], [r, diag[1]]]) / m
    np.testing.assert_allclose(qubo_boosting(H, y), expected, atol=1e-12)


def test_cqfs_hand_case():
    icm = np.array([[1, 0], [1, 1], [0, 1]])
    s_cf = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]])  # only items 0 and 1 are co-consumed
    b = 1e-3
    expected = np.array([[-2.0, -1 + b], [-1 + b, 2 * b]]) / 2.0
    np.testing.assert_allclose(cqfs(icm, s_cf, alpha=1.0, beta=b), expected, atol=1e-12)
    with pytest.raises(ValueError, match="s_cf"):
        cqfs(icm, np.zeros((2, 2)))
