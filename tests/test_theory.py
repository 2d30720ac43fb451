"""Theorem 3.1 quantities: a hand-computed one-step tree, finite differences, and NPG monotonicity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pavkit.toy.exact import exact_values
from pavkit.toy.mdp import TreeMDP, random_tree_mdp
from pavkit.toy.theory import BoundConfig, bound_records, npg_update, summarize_bound, theorem_terms


def one_step_tree():
    """H = 1, rewards (1, 0), π uniform, μ = (0.9, 0.1): V^μ = 0.9, A^μ = (0.1, −0.9), A^π = (0.5, −0.5)."""
    policies = {"pi": np.array([[0.5, 0.5]]), "mu": np.array([[0.9, 0.1]])}
    return TreeMDP(2, 1, np.array([1.0, 0.0]), policies)


@pytest.mark.parametrize("lr,alpha", [(0.05, 1.0), (0.3, 0.5), (1.0, 2.0)])
def test_one_step_tree_by_hand(lr, alpha):
    t = theorem_terms(one_step_tree(), "pi", "mu", alpha=alpha, lr=lr)
    assert t.distinguishability == pytest.approx(0.25)  # Var of (0.1, −0.9) under (½, ½)
    assert t.alignment == pytest.approx(0.25)  # ½(0.1·0.5 + 0.9·0.5)
    assert t.first_order == pytest.approx(lr * (0.25 + alpha * 0.25))  # η(Var A^π + α·align)
    # π'(a1) ∝ ½·exp(η(1 + 0.1α)), π'(a2) ∝ ½·exp(η(0 − 0.9α)): a logistic in η(1 + α)
    assert t.improvement == pytest.approx(1 / (1 + np.exp(-lr * (1 + alpha))) - 0.5)
    assert t.bound_plus == pytest.approx(lr * alpha * 0.5)
    assert t.bound_minus == pytest.approx(0.0, abs=1e-15)
    assert t.v_root == 0.5


def test_npg_update_rows_and_zero_step():
    rng = np.random.default_rng(0)
    pi = rng.dirichlet(np.ones(4), size=5)
    pi[0] = [0.0, 0.5, 0.5, 0.0]
    q, adv = rng.random((5, 4)), rng.normal(size=(5, 4))
    new = npg_update(pi, q, adv, lr=0.7, alpha=2.0)
    np.testing.assert_allclose(new.sum(axis=1), 1.0)
    assert new[0, 0] == 0.0 and new[0, 3] == 0.0  # unsupported actions stay unsupported
    np.testing.assert_allclose(npg_update(pi, q, adv, lr=0.0, alpha=2.0), pi)
    big = npg_update(pi, 1000 * q, adv, lr=1.0, alpha=0.0)  # no overflow for large scores
    assert np.all(np.isfinite(big))


@pytest.mark.parametrize("prover", ["mu", "bok:1", "bok:4"])
@pytest.mark.parametrize("seed", [0, 1])
def test_first_order_term_is_the_derivative(prover, seed):
    """The closed form equals the central finite difference of the exact improvement at η = 0."""
    mdp = random_tree_mdp(3, 3, seed, reward_density=0.4)
    lr, eps, alpha = 0.05, 1e-5, 1.5
    plus = theorem_terms(mdp, "pi", prover, alpha, eps).improvement
    minus = theorem_terms(mdp, "pi", prover, alpha, -eps).improvement
    derivative = (plus - minus) / (2 * eps)
    assert theorem_terms(mdp, "pi", prover, alpha, lr).first_order == pytest.approx(lr * derivative, rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.01, 3.0))
def test_npg_on_q_alone_never_hurts(seed, lr):
    """α = 0 is NPG on Q^π, which improves monotonically (Agarwal et al. 2021)."""
    mdp = random_tree_mdp(3, 3, seed, reward_density=0.3, binary=False)
    assert theorem_terms(mdp, "pi", "mu", alpha=0.0, lr=lr).improvement >= -1e-12


def test_self_prover_terms_coincide():
    mdp = random_tree_mdp(3, 4, 3)
    t = theorem_terms(mdp, "pi", "bok:1", alpha=1.0, lr=0.1)
    assert t.distinguishability == pytest.approx(t.alignment)  # μ = π: both are E_ρ Var_π A^π
    assert t.first_order == pytest.approx(2 * 0.1 * t.alignment)
    q = exact_values(mdp, mdp.policy("pi")).q
    assert 0 < t.max_q <= q.max()
    small = theorem_terms(random_tree_mdp(3, 4, 3, reward_scale=0.05), "pi", "mu", alpha=1.0, lr=0.1)
    assert 0 < small.max_q <= 0.05


def test_bound_sweep_summary():
    cfg = BoundConfig(instances=20, seed=1, ks=(1, 2, 4), num_actions=3, horizon=3, reward_scale=0.05,
                      reward_density=0.3)
    records = list(bound_records(cfg))
    assert len(records) == 20 * 4
    assert {r["prover"] for r in records} == {"mu", "bok:1", "bok:2", "bok:4"}
    s = summarize_bound(records, cfg)
    assert s["pairs"] == 80 and set(s["per_prover"]) == {"mu", "bok:1", "bok:2", "bok:4"}
    for key in ("improvement_nonnegative", "bound_plus_held", "bound_minus_held"):
        assert 0.0 <= s[key] <= 1.0
    rem = s["remark_3_1"]
    assert rem["K"] == [1, 2, 4] and rem["distinguishability_ratio"][0] == pytest.approx(1.0)
    # with every Q^π <= 0.05, Best-of-K multiplies advantages by about K: distinguishability by about K²
    assert 0.8 * 4 < rem["distinguishability_ratio"][1] <= 4.0 + 1e-9
    assert 0.8 * 16 < rem["distinguishability_ratio"][2] <= 16.0 + 1e-9
    assert s["held_more_often"] in {"plus", "minus", "tie"}
