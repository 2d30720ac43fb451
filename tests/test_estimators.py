"""Estimators against hand-computed arrays, and their properties."""

from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pavkit.estimators import (
    advantages,
    bok,
    complementarity,
    effective_reward,
    first_pit,
    mc_estimate,
    pass_at_k,
    q_values,
    step_mask,
)

V = np.array([[0.5, 0.6, 0.2, 1.0], [0.1, 0.0, 0.0, 0.0]])  # two trajectories, H = 3

values = arrays(float, st.tuples(st.integers(1, 4), st.integers(2, 6)), elements=st.floats(0, 1))


def test_q_and_advantages_by_hand():
    np.testing.assert_allclose(q_values(V), [[0.6, 0.2, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(advantages(V), [[0.1, -0.4, 0.8], [-0.1, 0.0, 0.0]])


def test_bok_by_hand():
    # 1 - (1 - 0.5)^2 = 0.75, 1 - 0.4^2 = 0.84, 1 - 0.8^2 = 0.36
    np.testing.assert_allclose(bok(V[0], 2), [0.75, 0.84, 0.36, 1.0])
    np.testing.assert_allclose(bok([0.1], 4), [1 - 0.9**4])
    with pytest.raises(ValueError):
        bok(V, 0)


def test_effective_reward_by_hand():
    v_mu = bok(V, 2)  # [[.75, .84, .36, 1], [.19, 0, 0, 0]]
    expected = np.array([[0.6 + 0.5 * 0.09, 0.2 + 0.5 * -0.48, 1.0 + 0.5 * 0.64], [0.0 - 0.5 * 0.19, 0, 0]])
    np.testing.assert_allclose(effective_reward(V, v_mu, 0.5), expected)
    masked = effective_reward(V, v_mu, 0.5, mask=step_mask([3, 1], 3))
    np.testing.assert_allclose(masked, [expected[0], [expected[1, 0], 0, 0]])
    np.testing.assert_allclose(effective_reward(V, v_mu, 0.0), q_values(V))  # α = 0: outcome-only
    with pytest.raises(ValueError):
        effective_reward(V, V[:, :3], 1.0)


def test_effective_reward_qa_by_hand():
    from pavkit.estimators import effective_reward_qa

    q, adv = np.array([[0.5, 0.2], [0.0, 1.0]]), np.array([[0.1, -0.2], [0.3, 0.0]])
    np.testing.assert_allclose(effective_reward_qa(q, adv, 2.0), [[0.7, -0.2], [0.6, 1.0]])
    assert float(effective_reward_qa(0.55, -0.05, 1.0)) == pytest.approx(0.5)  # Fig. 2(a)'s a11 at α = 1


def test_first_pit_by_hand():
    q = np.array([[0.6, 0.0, 0.3], [0.5, 0.4, 0.2], [0.0, 0.0, 0.0], [0.3, 0.1, 0.0]])
    np.testing.assert_array_equal(first_pit(q), [1, 3, 0, 2])
    np.testing.assert_array_equal(first_pit(q, threshold=0.25), [1, 2, 0, 1])
    mask = step_mask([3, 3, 3, 2], 3)  # the last trajectory's pit is a padded step
    np.testing.assert_array_equal(first_pit(q, mask=mask), [1, 3, 0, 3])


def test_mc_estimate_by_hand():
    v, se = mc_estimate(np.array([[1, 0, 1, 1], [0, 0, 0, 0]]))
    np.testing.assert_allclose(v, [0.75, 0.0])
    np.testing.assert_allclose(se, [np.sqrt(0.75 * 0.25 / 4), 0.0])
    with pytest.raises(ValueError):
        mc_estimate(np.zeros(3))


def test_pass_at_k_by_hand():
    # n = 5, c = 2, k = 2: 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    np.testing.assert_allclose(pass_at_k([5, 5, 5, 10], [0, 4, 5, 1], 2), [0.0, 1.0, 1.0, 0.2])
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


@given(st.integers(1, 60), st.data())
def test_pass_at_k_matches_combinatorics(n, data):
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_complementarity_by_hand():
    pi = np.array([[0.5, 0.5], [0.25, 0.75]])
    adv_mu = np.array([[0.1, -0.9], [0.3, -0.1]])
    adv_pi = np.array([[0.5, -0.5], [0.0, 0.0]])
    # state 0: Var = 0.25·(1)^2 = 0.25; E[A^μ A^π] = 0.5(0.05 + 0.45) = 0.25
    # state 1: mean = 0.075 - 0.075 = 0; Var = 0.25·0.09 + 0.75·0.01 = 0.03; cross = 0
    c = complementarity(pi, adv_mu, adv_pi, rho=np.array([1.0, 2.0]))
    assert c.distinguishability == pytest.approx(0.25 + 2 * 0.03)
    assert c.alignment == pytest.approx(0.25)
    assert complementarity(pi, adv_mu, adv_pi).distinguishability == pytest.approx((0.25 + 0.03) / 2)


@given(values, st.integers(1, 5))
def test_bok_identity_and_monotone(v, k):
    np.testing.assert_allclose(bok(v, 1), v, atol=1e-15)
    assert np.all(bok(v, k + 1) >= bok(v, k) - 1e-15)
    assert np.all((bok(v, k) >= 0) & (bok(v, k) <= 1))


@given(values)
def test_advantages_telescope(v):
    np.testing.assert_allclose(advantages(v).sum(axis=1), v[:, -1] - v[:, 0], atol=1e-12)
    np.testing.assert_allclose(q_values(v) - advantages(v), v[:, :-1], atol=1e-15)  # V(s_h) = Q − A


@settings(max_examples=50)
@given(arrays(float, (3, 4), elements=st.floats(0.01, 1)), arrays(float, (3, 4), elements=st.floats(0, 1)))
def test_expected_own_advantage_is_zero(w, q):
    pi = w / w.sum(axis=1, keepdims=True)
    adv = q - (pi * q).sum(axis=1, keepdims=True)  # A^π = Q^π − V^π with V^π = E_π Q^π
    np.testing.assert_allclose((pi * adv).sum(axis=1), 0, atol=1e-12)
    c = complementarity(pi, adv, adv)  # μ = π: distinguishability = alignment = Var_π A^π
    assert c.distinguishability == pytest.approx(c.alignment, abs=1e-12)
