"""Exact tree-MDP values against independent references: leaf enumeration, the naive recursion of the
benchmark, and Monte Carlo rollouts within 4 standard errors."""

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pavkit.estimators import bok, mc_estimate, mc_values
from pavkit.toy.exact import bok_values, exact_values, occupancy, prover_values
from pavkit.toy.mdp import SpecError, TreeRollouts, random_tree_mdp, sample_leaves, state_of

_spec = importlib.util.spec_from_file_location("bench_exact", Path(__file__).parents[1] / "bench" / "exact.py")
bench_exact = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_exact)


def enumerate_root_value(mdp, policy):
    """V(root) = Σ over all leaves of P(path) · r(leaf), with no backward induction."""
    total = 0.0
    for path in itertools.product(range(mdp.num_actions), repeat=mdp.horizon):
        p = 1.0
        for h in range(mdp.horizon):
            p *= policy[state_of(path[:h], mdp.num_actions), path[h]]
        leaf = sum(a * mdp.num_actions ** (mdp.horizon - 1 - h) for h, a in enumerate(path))
        total += p * mdp.terminal_reward[leaf]
    return total


def test_state_order_is_breadth_first_lexicographic():
    assert [state_of(p, 3) for p in [(), (0,), (2,), (0, 0), (0, 2), (1, 0), (2, 2)]] == [0, 1, 3, 4, 6, 7, 12]
    mdp = random_tree_mdp(3, 2, 0)
    assert (mdp.depth(0), mdp.depth(1), mdp.depth(2)) == (slice(0, 1), slice(1, 4), slice(4, 13))
    # the leaf (a_1, a_2) is at terminal index a_1·A + a_2, i.e. state num_internal + that
    assert state_of((2, 1), 3) == mdp.num_internal + 2 * 3 + 1


@pytest.mark.parametrize("a,h,seed", [(2, 1, 0), (2, 5, 1), (3, 3, 2), (4, 3, 3), (5, 2, 4)])
def test_root_value_matches_enumeration(a, h, seed):
    mdp = random_tree_mdp(a, h, seed, reward_density=0.5, binary=False)
    for name in ("pi", "mu"):
        assert exact_values(mdp, mdp.policy(name)).v[0] == pytest.approx(
            enumerate_root_value(mdp, mdp.policy(name)), abs=1e-12)


@pytest.mark.parametrize("a,h", [(2, 6), (3, 4), (4, 3)])
def test_all_values_match_naive_recursion(a, h):
    mdp = random_tree_mdp(a, h, 7, binary=False, reward_density=0.6)
    pi = mdp.policy("pi")
    v, q, adv = bench_exact.naive_values(a, h, mdp.terminal_reward.tolist(), pi.tolist())
    vals = exact_values(mdp, pi)
    np.testing.assert_allclose(vals.v, v, atol=1e-14)
    np.testing.assert_allclose(vals.q, q, atol=1e-14)
    np.testing.assert_allclose(vals.a, adv, atol=1e-14)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 4), st.integers(1, 4), st.integers(0, 10_000), st.floats(0.05, 5.0))
def test_own_advantage_has_zero_mean_and_values_bounded(a, h, seed, conc):
    mdp = random_tree_mdp(a, h, seed, reward_density=0.4, binary=False, concentration=conc)
    pi = mdp.policy("pi")
    vals = exact_values(mdp, pi)
    np.testing.assert_allclose((pi * vals.a).sum(axis=1), 0.0, atol=1e-12)  # E_π[A^π] = 0
    assert np.all((vals.v >= -1e-15) & (vals.v <= 1 + 1e-15))
    np.testing.assert_allclose(vals.q, vals.v[1:].reshape(-1, a))  # Q(s, a) = V(child)
    np.testing.assert_allclose(bok_values(vals, 1).v, vals.v, atol=1e-15)  # BoK at K = 1 is the identity
    rho = occupancy(mdp, pi)
    for d in range(h):
        assert rho[mdp.depth(d)].sum() == pytest.approx(1.0)


def test_bok_prover_matches_best_of_k_rollouts():
    """V^{BoK(π)}(s) = P(at least one of K rollouts of π from s succeeds), by simulation within 4 SE."""
    mdp = random_tree_mdp(3, 4, 11, reward_density=0.2)
    pi, k, n = mdp.policy("pi"), 4, 20_000
    states = np.array([0, 1, 2, 3, 5, 17])
    leaves = sample_leaves(mdp, pi, states, n * k, seed=3).reshape(len(states), n, k)
    success = mdp.terminal_reward[leaves].max(axis=2)  # an oracle ORM picks a correct one if any
    est, se = mc_estimate(success)
    exact = bok_values(exact_values(mdp, pi), k).v[states]
    np.testing.assert_allclose(exact, bok(exact_values(mdp, pi).v[states], k))
    assert np.all(np.abs(est - exact) <= 4 * se + 1e-12), (est, exact, se)


def test_mc_values_within_four_standard_errors():
    mdp = random_tree_mdp(3, 4, 5, reward_density=0.4)
    for name in ("pi", "mu"):
        rollouts = TreeRollouts(mdp, mdp.policy(name))
        states = np.arange(mdp.num_states)
        est, se = mc_values(rollouts, rollouts, states, 4000, seed=1)
        exact = exact_values(mdp, mdp.policy(name)).v
        z = np.abs(est - exact) / np.maximum(se, 1e-12)
        assert np.all(z[:4] <= 4), z[:4]  # root and depth 1, each within 4 SE
        assert np.mean(z <= 2) >= 0.9  # and about 95 % of all states within 2 SE
        leaves = states >= mdp.num_internal
        np.testing.assert_array_equal(est[leaves], exact[leaves])  # a leaf's rollout is its reward


def test_prover_values_by_name_and_bok():
    mdp = random_tree_mdp(2, 3, 0)
    base = exact_values(mdp, mdp.policy("pi"))
    np.testing.assert_allclose(prover_values(mdp, "mu", base).v, exact_values(mdp, mdp.policy("mu")).v)
    np.testing.assert_allclose(prover_values(mdp, "bok:3", base).v, 1 - (1 - base.v) ** 3)
    for bad in ("bok:0", "bok:x", "nobody"):
        with pytest.raises(SpecError):
            prover_values(mdp, bad, base)


def test_random_generator_controls():
    sparse = random_tree_mdp(4, 5, 0, reward_density=0.05)
    dense = random_tree_mdp(4, 5, 0, reward_density=0.9)
    assert sparse.terminal_reward.mean() < 0.1 < 0.8 < dense.terminal_reward.mean()
    assert set(np.unique(sparse.terminal_reward)) <= {0.0, 1.0}
    from pavkit.toy.mdp import entropy

    peaked = entropy(random_tree_mdp(3, 3, 0, concentration=0.1).policy("pi")).mean()
    flat = entropy(random_tree_mdp(3, 3, 0, concentration=50).policy("pi")).mean()
    assert peaked < 0.5 < 1.0 < flat <= np.log(3)
    assert random_tree_mdp(3, 3, 0, reward_scale=0.1).terminal_reward.max() == pytest.approx(0.1)
    np.testing.assert_array_equal(random_tree_mdp(3, 3, 9).policy("mu"), random_tree_mdp(3, 3, 9).policy("mu"))
