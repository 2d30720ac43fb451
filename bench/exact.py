"""Exact V/Q/A of one policy on a random tree MDP (A = 4, H = 10, ~10^6 leaves): vectorised vs naive.

Prints one JSON line: {"leaves", "seconds", "naive_seconds", "ratio", "max_abs_diff"}.
Run: python bench/exact.py [--num-actions 4] [--horizon 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from pavkit.toy.exact import exact_values
from pavkit.toy.mdp import random_tree_mdp


def naive_values(num_actions: int, horizon: int, reward: list[float], policy: list[list[float]]):
    """Plain recursive Python: V, Q, A state by state (the reference the vectorised code must beat)."""
    n_internal = (num_actions**horizon - 1) // (num_actions - 1)
    v = [0.0] * (n_internal + num_actions**horizon)
    q = [[0.0] * num_actions for _ in range(n_internal)]
    adv = [[0.0] * num_actions for _ in range(n_internal)]

    def visit(state: int, depth: int) -> float:
        if depth == horizon:
            v[state] = reward[state - n_internal]
            return v[state]
        total = 0.0
        for a in range(num_actions):
            q[state][a] = visit(state * num_actions + a + 1, depth + 1)
            total += policy[state][a] * q[state][a]
        v[state] = total
        for a in range(num_actions):
            adv[state][a] = q[state][a] - total
        return total

    visit(0, 0)
    return v, q, adv


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-actions", type=int, default=4)
    p.add_argument("--horizon", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="best of this many timings of the fast path")
    args = p.parse_args()
    sys.setrecursionlimit(10_000)
    mdp = random_tree_mdp(args.num_actions, args.horizon, seed=0, reward_density=0.3)
    pi = mdp.policy("pi")

    fast = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        vals = exact_values(mdp, pi)
        _ = vals.a  # advantages are part of the job
        fast = min(fast, time.perf_counter() - t0)

    reward, policy = mdp.terminal_reward.tolist(), pi.tolist()
    t0 = time.perf_counter()
    v, _, adv = naive_values(args.num_actions, args.horizon, reward, policy)
    naive = time.perf_counter() - t0
    diff = max(float(np.max(np.abs(np.asarray(v) - vals.v))), float(np.max(np.abs(np.asarray(adv) - vals.a))))
    print(json.dumps({"leaves": args.num_actions**args.horizon, "seconds": round(fast, 4),
                      "naive_seconds": round(naive, 3), "ratio": round(naive / fast, 1),
                      "max_abs_diff": diff}))


if __name__ == "__main__":
    main()
