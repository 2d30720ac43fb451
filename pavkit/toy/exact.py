r"""Exact V, Q, A of any policy on a tree MDP, and the provers of the paper.

Backward induction, one vectorised numpy operation per depth (no Python loop over states):

    V(leaf) = r(leaf),   Q(s, a) = V(s ⊕ a),   V(s) = Σ_a π(a|s) Q(s, a),   A(s, a) = Q(s, a) - V(s)

Provers (paper §3.2, App. F.4): any named policy of the spec, or ``bok:K`` = Best-of-K(π), whose values are
V^μ(s) = 1 - (1 - V^π(s))^K and Q^μ(s, a) = 1 - (1 - Q^π(s, a))^K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pavkit.estimators import bok
from pavkit.provers import TREE_PROVERS, parse_prover
from pavkit.toy.mdp import SpecError, TreeMDP


@dataclass(frozen=True)
class Values:
    """Exact values of one policy on every state of a tree MDP.

    Attributes:
        v: (num_states,) V in breadth-first order: internal states, then leaves (= their rewards).
        q: (num_internal, A) Q(s, a) = V of child a of s; a view into ``v``.
    """

    v: np.ndarray
    q: np.ndarray

    @property
    def a(self) -> np.ndarray:
        """(num_internal, A) advantages A(s, a) = Q(s, a) - V(s)."""
        return self.q - self.v[: self.q.shape[0], None]


def _from_v(mdp: TreeMDP, v: np.ndarray) -> Values:
    # children of state i are A·i+1 … A·i+A, so Q over all internal states is one reshape of v[1:]
    return Values(v, v[1:].reshape(mdp.num_internal, mdp.num_actions))


def exact_values(mdp: TreeMDP, policy: np.ndarray) -> Values:
    """V/Q/A of ``policy`` ((num_internal, A) probabilities) by backward induction, vectorised per depth."""
    if policy.shape != (mdp.num_internal, mdp.num_actions):
        raise ValueError(f"policy must have shape {(mdp.num_internal, mdp.num_actions)}, got {policy.shape}")
    v = np.empty(mdp.num_states)
    v[mdp.depth(mdp.horizon)] = mdp.terminal_reward
    for d in range(mdp.horizon - 1, -1, -1):
        here, below = mdp.depth(d), mdp.depth(d + 1)
        children = v[below].reshape(-1, mdp.num_actions)
        v[here] = np.einsum("sa,sa->s", policy[here], children)
    return _from_v(mdp, v)


def bok_values(base: Values, k: int) -> Values:
    """Best-of-K(π) prover values from π's: 1 - (1 - V^π)^K on every state (App. F.4, Eq. 30).

    Q^μ(s, a) = V^μ(s ⊕ a) = 1 - (1 - Q^π(s, a))^K, consistent with deterministic concatenation. Leaves get
    1 - (1 - r)^K, which equals r for binary rewards.
    """
    v = bok(base.v, k)
    return Values(v, v[1:].reshape(base.q.shape))


def prover_values(mdp: TreeMDP, prover: str, base: Values) -> Values:
    """Values of a prover given as a policy name of the spec or as ``bok:K`` (Best-of-K of the base).
    Raises SpecError (field "prover") for a malformed spec."""
    try:
        p = parse_prover(prover, TREE_PROVERS)
    except ValueError as e:
        raise SpecError(str(e), field="prover") from None
    if p.kind == "bok":
        return bok_values(base, p.k)
    return exact_values(mdp, mdp.policy(p.name))


def occupancy(mdp: TreeMDP, policy: np.ndarray) -> np.ndarray:
    r"""π's state occupancy ρ(s) = Σ_{h=0}^{H-1} d_h^π(s) over internal states, (num_internal,).

    d_h^π is the probability that π visits s at depth h, so each depth's slice sums to 1 and ρ sums to H.
    """
    rho = np.empty(mdp.num_internal)
    rho[0] = 1.0
    for d in range(mdp.horizon - 1):
        here, below = mdp.depth(d), mdp.depth(d + 1)
        rho[below] = (rho[here, None] * policy[here]).ravel()
    return rho
