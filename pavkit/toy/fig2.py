r"""The paper's Fig. 2(a): why beam search should rank steps by progress, not by Q^π alone.

Beam width 2, C = 3 proposals from each of two states. Values as read off the figure (PAPER.md §1.3):

    state  V^π    actions          Q^π               A^π = Q^π - V^π
    s1     0.60   a11, a12, a13    0.55, 0.50, 0.70   -0.05, -0.10, +0.10
    s2     0.30   a21, a22, a23    0.50, 0.35, 0.25   +0.20, +0.05, -0.05

Top-2 by Q^π keeps a13 and a11, both children of s1, and drops a21 (advantage +0.20); the effective reward
Q^π + α·A^μ, here with the prover μ = π as in the figure, keeps a13 and a21.
"""

from __future__ import annotations

import numpy as np

from pavkit.estimators import effective_reward
from pavkit.search import BeamResult, beam_search

STATE_VALUES = {"s1": 0.60, "s2": 0.30}
ACTION_Q = {
    "s1": {"a11": 0.55, "a12": 0.50, "a13": 0.70},
    "s2": {"a21": 0.50, "a22": 0.35, "a23": 0.25},
}


def fig2a_rows() -> list[dict]:
    """One row per action: state, V^π(state), action, Q^π, A^π."""
    return [
        {"state": s, "V": STATE_VALUES[s], "action": a, "Q": q, "A": round(q - STATE_VALUES[s], 10)}
        for s, actions in ACTION_Q.items()
        for a, q in actions.items()
    ]


def fig2a_search(alpha: float, width: int = 2) -> BeamResult:
    """One round of beam search from {s1, s2} scoring children by Q^π + α·A^π (α = 0: Q^π only)."""
    def expand(state: str) -> list[str]:
        return list(ACTION_Q[state])

    def score(parents: list[str], children: list[str]) -> np.ndarray:
        # each (parent, child) pair is a one-step trajectory with values (V^π(s), Q^π(s, a))
        v = np.array([[STATE_VALUES[p], ACTION_Q[p][c]] for p, c in zip(parents, children, strict=True)])
        return effective_reward(v, v, alpha)[:, 0]

    return beam_search(["s1", "s2"], expand, score, width=width, max_steps=1)
