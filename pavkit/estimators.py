r"""The paper's estimators as small pure numpy functions, shared by the toy and LLM backends.

Array convention (DESIGN.md): a trajectory of H steps has H+1 prefixes s_1 … s_{H+1} (s_1 = the problem
alone). The values of one policy on those prefixes form ``v`` of shape (B, H+1); everything else derives from
it, because the dynamics are deterministic (a step is appended to the prefix):

    Q(s_h, a_h) = V(s_{h+1})                          q_values(v)   = v[:, 1:]
    A(s_h, a_h) = Q(s_h, a_h) - V(s_h)                advantages(v) = v[:, 1:] - v[:, :-1]    (Eq. 2)

Ragged trajectories are padded; a boolean ``mask`` of shape (B, H) marks real steps, and a padded step gets
weight 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pavkit.types import Policy, Task


def mc_estimate(successes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Monte Carlo value estimate and its standard error from binary rollout outcomes.

    \hat Q(s) = (1/n) Σ_j r_j,   se = sqrt(\hat Q (1 - \hat Q) / n)   (the binomial standard error).

    Args:
        successes: (P, n) outcomes in {0, 1} (or [0, 1]) of n rollouts from each of P prefixes.
    Returns:
        values (P,), stderrs (P,).
    """
    r = np.asarray(successes, dtype=float)
    if r.ndim != 2 or r.shape[1] == 0:
        raise ValueError(f"successes must have shape (P, n) with n >= 1, got {r.shape}")
    values = r.mean(axis=1)
    stderrs = np.sqrt(values * (1.0 - values) / r.shape[1])
    return values, stderrs


def mc_values(
    policy: Policy, task: Task, prefixes: Any, n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""Monte Carlo estimate of V^policy at each prefix: the fraction of ``n`` completions that succeed.

    \hat V^μ(s) = (1/n) Σ_{j=1}^{n} Rex(y_j),  y_j ~ μ(·|s)   (paper §4.2, Q̂_mc). Works for any backend
    that implements the ``Policy`` and ``Task`` protocols; all ``n·P`` completions are drawn in one call.

    Returns:
        values (P,), stderrs (P,) — see ``mc_estimate``.
    """
    completions = policy.complete(prefixes, n, seed)
    return mc_estimate(task.reward(prefixes, completions))


def q_values(v: np.ndarray) -> np.ndarray:
    r"""Q(s_h, a_h) = V(s_{h+1}) for deterministic concatenation (paper Eq. 1 and 9).

    Args:
        v: (B, H+1) values of one policy on the prefixes s_1 … s_{H+1}.
    Returns:
        (B, H).
    """
    v = np.asarray(v, dtype=float)
    return v[..., 1:]


def advantages(v: np.ndarray) -> np.ndarray:
    r"""Progress of each step: A(s_h, a_h) = Q(s_h, a_h) - V(s_h) = V(s_{h+1}) - V(s_h)  (paper Eq. 2).

    The advantages of a trajectory telescope: Σ_h A(s_h, a_h) = V(s_{H+1}) - V(s_1).

    Args:
        v: (B, H+1) values on prefixes s_1 … s_{H+1}.
    Returns:
        (B, H).
    """
    v = np.asarray(v, dtype=float)
    return v[..., 1:] - v[..., :-1]


def bok(v: np.ndarray, k: int | np.ndarray) -> np.ndarray:
    r"""Values of the Best-of-K(π) prover from π's values: V^{BoK(π)} = 1 - (1 - V^π)^K  (App. F.4, Eq. 30).

    With binary outcomes this is the probability that at least one of K independent rollouts of π
    succeeds (Pass@K); the paper applies the identity per prefix. K = 1 is the identity. Works elementwise
    on any shape (V, Q, or a (B, H+1) trajectory array); ``k`` broadcasts.
    """
    v = np.asarray(v, dtype=float)
    k = np.asarray(k)
    if np.any(k < 1):
        raise ValueError(f"K must be >= 1, got {k}")
    return 1.0 - (1.0 - v) ** k


def effective_reward_qa(q_pi: np.ndarray | float, adv_mu: np.ndarray | float, alpha: float) -> np.ndarray:
    r"""Q^π(s, a) + α·A^μ(s, a) (paper Eq. 5) from Q^π and A^μ of the same (s, a) pairs, any (equal) shapes.

    The one place Eq. 5 is written: :func:`effective_reward` applies it along trajectories, the toy NPG step
    (``toy.theory.npg_update``) to (S, A) tables.
    """
    return np.asarray(q_pi, dtype=float) + alpha * np.asarray(adv_mu, dtype=float)


def effective_reward(
    v_pi: np.ndarray, v_mu: np.ndarray, alpha: float, mask: np.ndarray | None = None
) -> np.ndarray:
    r"""Effective reward of each step: Q^π(s_h, a_h) + α·A^μ(s_h, a_h)  (paper Eq. 5).

    The per-step weight of the policy gradient and the beam-search score. α = 0 is outcome-only (Q^π).

    Args:
        v_pi: (B, H+1) values of the base policy π on the prefixes.
        v_mu: (B, H+1) values of the prover μ on the same prefixes.
        alpha: weight of the prover's advantage.
        mask: optional (B, H) bool, True on real steps; padded steps get 0.
    Returns:
        (B, H).
    """
    v_pi = np.asarray(v_pi, dtype=float)
    v_mu = np.asarray(v_mu, dtype=float)
    if v_pi.shape != v_mu.shape:
        raise ValueError(f"v_pi {v_pi.shape} and v_mu {v_mu.shape} must have the same shape")
    reward = effective_reward_qa(q_values(v_pi), advantages(v_mu), alpha)
    return reward if mask is None else np.where(mask, reward, 0.0)


def step_mask(num_steps: Sequence[int] | np.ndarray, horizon: int) -> np.ndarray:
    """(B, horizon) bool mask, True on the first ``num_steps[b]`` steps of trajectory b."""
    num_steps = np.asarray(num_steps)
    if np.any(num_steps < 0) or np.any(num_steps > horizon):
        raise ValueError(f"num_steps must lie in [0, {horizon}]")
    return np.arange(horizon)[None, :] < num_steps[:, None]


def first_pit(q: np.ndarray, threshold: float = 0.0, mask: np.ndarray | None = None) -> np.ndarray:
    r"""Index of the first step whose Q^π drops to (at most) ``threshold``: the "first pit" (App. D).

    First-pit seeding keeps every prefix up to and including the first step a_h with Q^π(s_h, a_h) <=
    threshold (default 0: the step after which π never succeeds), so a trajectory contributes
    ``first_pit + 1`` step labels.

    Args:
        q: (B, H) Q^π of each step (e.g. ``q_values(v)``), usually Monte Carlo estimates.
        threshold: a step is a pit when q <= threshold.
        mask: optional (B, H) bool, True on real steps; padded steps are never pits.
    Returns:
        (B,) int: the step index in 0..H-1, or H where the trajectory has no pit.
    """
    q = np.asarray(q, dtype=float)
    pit = q <= threshold
    if mask is not None:
        pit &= mask
    return np.where(pit.any(axis=-1), pit.argmax(axis=-1), q.shape[-1])


def pass_at_k(n: int | np.ndarray, c: int | np.ndarray, k: int) -> np.ndarray:
    r"""Unbiased estimator of Pass@k from n samples of which c are correct (Chen et al. 2021).

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - Π_{i=n-c+1}^{n} (1 - k / i),

    computed in log space from one cumulative sum, so it is exact-to-rounding for large n and vectorised
    over any shape of ``n`` and ``c``.

    Args:
        n: number of samples (>= k), any shape.
        c: number of correct samples (0 <= c <= n), same shape as n (or broadcastable).
        k: the k of pass@k.
    Returns:
        float array of the broadcast shape of n and c.
    """
    n, c = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(c, dtype=np.int64))
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if np.any(n < k):
        raise ValueError(f"pass_at_k needs n >= k = {k}, got n = {n.min()}")
    if np.any((c < 0) | (c > n)):
        raise ValueError("pass_at_k needs 0 <= c <= n")
    # cum[i] = Σ_{j=k+1}^{i} log(1 - k/j) for i >= k (and 0 below), so the product over (n-c, n] is
    # cum[n] - cum[n-c] whenever n - c >= k; when n - c < k every k-subset has a correct sample.
    top = int(n.max())
    j = np.arange(top + 1, dtype=float)
    terms = np.zeros(top + 1)
    terms[k + 1 :] = np.log1p(-k / j[k + 1 :])
    cum = np.cumsum(terms)
    fail = n - c
    log_ratio = cum[n] - cum[np.maximum(fail, k)]
    return np.where(fail < k, 1.0, 1.0 - np.exp(log_ratio))


def mean_pass_at_n(counts: Sequence[int], samples: int, ns: Sequence[int]) -> np.ndarray:
    """Mean over problems of the unbiased Pass@N from per-problem success counts out of ``samples`` each.

    Args:
        counts: (P,) successes per problem.
    Returns:
        (len(ns),).
    """
    counts = np.asarray(counts)
    return np.array([float(np.mean(pass_at_k(samples, counts, int(n)))) for n in ns])


def pass_at_n_matrix(correct: np.ndarray, ns: Sequence[int]) -> np.ndarray:
    """Pass@N per problem from one pool (unbiased, closed form, ``pass_at_k``): (len(ns), P)."""
    correct = np.asarray(correct, dtype=float)
    m, hits = correct.shape[1], correct.sum(axis=1).astype(int)
    if min(ns) < 1 or max(ns) > m:
        raise ValueError(f"every N must lie in [1, M = {m}], got {list(ns)}")
    return np.stack([pass_at_k(np.full_like(hits, m), hits, int(n)) for n in ns])


@dataclass(frozen=True)
class Complementarity:
    """The two terms of Theorem 3.1, each summed over states with weights ρ(s)."""

    distinguishability: float  # Σ_s ρ(s) Var_{a~π}[A^μ(s, a)]
    alignment: float  # Σ_s ρ(s) E_{a~π}[A^μ(s, a) · A^π(s, a)]


def complementarity(
    pi: np.ndarray, adv_mu: np.ndarray, adv_pi: np.ndarray, rho: np.ndarray | None = None
) -> Complementarity:
    r"""Distinguishability and alignment of a prover μ for a base policy π (paper Thm. 3.1).

        distinguishability = Σ_s ρ(s) · Var_{a~π(·|s)}[A^μ(s, a)]
        alignment          = Σ_s ρ(s) · E_{a~π(·|s)}[A^μ(s, a) · A^π(s, a)]

    Good provers have large distinguishability and alignment that is not too negative.

    Args:
        pi: (S, A) action probabilities of π at S states.
        adv_mu: (S, A) prover advantages A^μ(s, a).
        adv_pi: (S, A) base advantages A^π(s, a).
        rho: (S,) state weights (e.g. π's occupancy summed over depths); default uniform 1/S.
    """
    pi, adv_mu, adv_pi = (np.asarray(x, dtype=float) for x in (pi, adv_mu, adv_pi))
    if not (pi.shape == adv_mu.shape == adv_pi.shape) or pi.ndim != 2:
        raise ValueError(f"pi, adv_mu, adv_pi must share one (S, A) shape, got {pi.shape}, "
                         f"{adv_mu.shape}, {adv_pi.shape}")
    rho = np.full(pi.shape[0], 1.0 / pi.shape[0]) if rho is None else np.asarray(rho, dtype=float)
    mean_mu = (pi * adv_mu).sum(axis=1, keepdims=True)
    var_mu = (pi * (adv_mu - mean_mu) ** 2).sum(axis=1)
    cross = (pi * adv_mu * adv_pi).sum(axis=1)
    return Complementarity(float(rho @ var_mu), float(rho @ cross))


def sampled_complementarity(q_mu_a: np.ndarray, q_mu_b: np.ndarray, q_pi_a: np.ndarray,
                            q_pi_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-state distinguishability and alignment (Thm. 3.1's terms) from C actions sampled from π at each of S
    states, each action's Q^μ and Q^π estimated twice from independent halves A and B of its rollouts.

        dist(s)  = Cov_c(Q̂^μ_A, Q̂^μ_B)                         → Var_{a~π}[A^μ(s, a)]
        align(s) = ½ [Cov_c(Q̂^μ_A, Q̂^π_B) + Cov_c(Q̂^μ_B, Q̂^π_A)] → E_{a~π}[A^μ(s, a) · A^π(s, a)]

    Cov_c is the sample covariance over the C actions (ddof 1). Both are unbiased: a variance or covariance
    under π does not depend on the baselines V^μ(s), V^π(s) (E_π[A^π] = 0), and the rollout noise of two
    independent halves does not covary, whereas the plain sample variance of one noisy estimate would add the
    noise's variance to dist. They can come out negative at a state. All inputs (S, C), C >= 2; returns two
    (S,) arrays (mean over states and its standard error: the terms with ρ = the sampled states' distribution).
    """
    arrays = [np.asarray(x, dtype=float) for x in (q_mu_a, q_mu_b, q_pi_a, q_pi_b)]
    if len({x.shape for x in arrays}) != 1 or arrays[0].ndim != 2 or arrays[0].shape[1] < 2:
        raise ValueError(f"the four estimates must share one (S, C) shape with C >= 2, got {[x.shape for x in arrays]}")
    mu_a, mu_b, pi_a, pi_b = (x - x.mean(axis=1, keepdims=True) for x in arrays)
    c = arrays[0].shape[1]
    dist = (mu_a * mu_b).sum(axis=1) / (c - 1)
    align = ((mu_a * pi_b).sum(axis=1) + (mu_b * pi_a).sum(axis=1)) / (2 * (c - 1))
    return dist, align
