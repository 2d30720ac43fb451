r"""Policy-gradient pieces shared by the toy and the LLM RL loops (paper Eq. 5, PAPER.md §6 and §10.5).

Shapes: B sequences, H steps, T tokens. Step quantities are numpy arrays (they come from verifiers and
estimators); token quantities that carry gradients are torch tensors.

The REINFORCE estimate of the gradient of E_π[Σ_h w_h] with per-step weights w_h is

    ∇J ≈ (1/B) Σ_b Σ_t mask_bt · (w_bt − b_bt) · ∇log π(y_bt | y_b<t)

where w_bt is the weight of the step that token t belongs to (every token of step h gets step h's weight:
``token_weights``) and b_bt a baseline that does not depend on y_bt (a learned value, or the leave-one-out
mean of a group: ``leave_one_out_baseline``). ``reinforce_loss`` is the negated objective; adding
``kl_penalty``·β keeps π near the initial iterate (paper: β = 0.001).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def token_weights(step_weights: np.ndarray, token_steps: np.ndarray) -> np.ndarray:
    """Spread step weights over tokens: out[b, t] = step_weights[b, token_steps[b, t]], 0 where token_steps < 0.

    Args:
        step_weights: (B, H) weight of each step.
        token_steps: (B, T) int, the step each token belongs to; -1 for prompt, padding and tokens of no step.
    Returns:
        (B, T) float64.
    """
    w = np.asarray(step_weights, dtype=float)
    idx = np.asarray(token_steps)
    if w.ndim != 2 or idx.ndim != 2 or w.shape[0] != idx.shape[0]:
        raise ValueError(f"need step_weights (B, H) and token_steps (B, T), got {w.shape} and {idx.shape}")
    if idx.size and idx.max() >= w.shape[1]:
        raise ValueError(f"token_steps refers to step {idx.max()} but there are only {w.shape[1]} steps")
    out = np.take_along_axis(w, np.maximum(idx, 0), axis=1) if w.shape[1] else np.zeros(idx.shape)
    return np.where(idx >= 0, out, 0.0)


def rewards_to_go(rewards: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    r"""G_h = Σ_{h' ≥ h} r_{h'} over the real steps (mask True), 0 on padded steps.

    Summing advantages this way telescopes: Σ_{h'≥h} A^μ(s_h', a_h') = V^μ(s_{H+1}) − V^μ(s_h) (PAPER.md §10.5),
    a different estimator from Eq. 5's immediate per-step A^μ.

    Args:
        rewards: (B, H); mask: (B, H) bool.
    Returns:
        (B, H).
    """
    r = np.asarray(rewards, dtype=float)
    if mask is not None:
        r = np.where(mask, r, 0.0)
    g = np.cumsum(r[:, ::-1], axis=1)[:, ::-1]
    return g if mask is None else np.where(mask, g, 0.0)


def leave_one_out_baseline(returns: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Baseline of sample i = mean return of the OTHER samples of its group (0 for a group of one).

    It does not depend on sample i, so subtracting it keeps the gradient unbiased.

    Args:
        returns: (B,) e.g. the outcome r(y) of each sample.
        groups: (B,) int, samples of one problem share a group id.
    Returns:
        (B,) float64.
    """
    r = np.asarray(returns, dtype=float)
    g = np.asarray(groups)
    if r.shape != g.shape or r.ndim != 1:
        raise ValueError(f"returns and groups must both be (B,), got {r.shape} and {g.shape}")
    _, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=r)
    n = counts[inverse]
    return np.where(n > 1, (sums[inverse] - r) / np.maximum(n - 1, 1), 0.0)


def reinforce_loss(logp: torch.Tensor, weights, mask, baseline=None) -> torch.Tensor:
    r"""−(1/B) Σ_b Σ_t mask_bt · (w_bt − b_bt) · log π(y_bt | y_b<t): minimising it is one REINFORCE ascent step.

    Args:
        logp: (B, T) log-probabilities of the sampled tokens under π_θ (carries the gradient).
        weights: (B, T) per-token weights (``token_weights``), array or tensor, no gradient.
        mask: (B, T) bool, True on the tokens π chose.
        baseline: optional (B, T), or (B,) broadcast over tokens; no gradient.
    Returns:
        scalar tensor.
    """
    import torch  # here, so that importing the losses (and llm.rl's configs) stays torch-free

    w = torch.as_tensor(np.asarray(weights, dtype=np.float32) if not torch.is_tensor(weights) else weights,
                        dtype=logp.dtype, device=logp.device)
    if baseline is not None:
        b = torch.as_tensor(np.asarray(baseline, dtype=np.float32) if not torch.is_tensor(baseline) else baseline,
                            dtype=logp.dtype, device=logp.device)
        w = w - (b[:, None] if b.dim() == 1 else b)
    m = torch.as_tensor(mask, device=logp.device).to(logp.dtype)
    if w.shape != logp.shape or m.shape != logp.shape:
        raise ValueError(f"logp {tuple(logp.shape)}, weights {tuple(w.shape)} and mask {tuple(m.shape)} must match")
    return -(m * w.detach() * logp).sum() / logp.shape[0]


def kl_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, mask) -> torch.Tensor:
    r"""(1/B) Σ_b Σ_t mask_bt · k3_bt,  k3 = exp(d) − d − 1 with d = log π_ref − log π_θ (tokens sampled from π_θ).

    k3 is a non-negative, unbiased per-token estimate of KL(π_θ ‖ π_ref) (Schulman's "approximating KL"); summed
    over a sequence it estimates the sequence-level KL. Gradient flows through ``logp`` only.

    Args:
        logp, ref_logp: (B, T); mask: (B, T) bool.
    """
    import torch  # here, so that importing the losses (and llm.rl's configs) stays torch-free

    d = ref_logp.detach() - logp
    m = torch.as_tensor(mask, device=logp.device).to(logp.dtype)
    return (m * (torch.exp(d) - d - 1)).sum() / logp.shape[0]
