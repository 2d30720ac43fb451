"""pavkit.losses against hand-computed arrays, and the REINFORCE estimator against an exact gradient."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pavkit.losses import kl_penalty, leave_one_out_baseline, reinforce_loss, rewards_to_go, token_weights


def test_token_weights_spread_step_weights_by_hand():
    w = np.array([[0.5, -1.0, 2.0], [3.0, 0.0, 0.0]])
    steps = np.array([[-1, -1, 0, 0, 1, 2, 2], [-1, 0, 0, 0, -1, -1, -1]])
    expected = np.array([[0, 0, 0.5, 0.5, -1.0, 2.0, 2.0], [0, 3.0, 3.0, 3.0, 0, 0, 0]])
    np.testing.assert_array_equal(token_weights(w, steps), expected)
    with pytest.raises(ValueError, match="step 3"):
        token_weights(w, np.array([[3], [0]]))


def test_rewards_to_go_by_hand():
    r = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    mask = np.array([[True, True, True], [True, False, False]])
    np.testing.assert_array_equal(rewards_to_go(r, mask), [[6.0, 5.0, 3.0], [4.0, 0.0, 0.0]])
    # telescoping: summed advantages to go = V(end) − V(s_h)
    v = np.array([[0.2, 0.5, 0.4, 0.9]])
    np.testing.assert_allclose(rewards_to_go(np.diff(v, axis=1)), [[0.7, 0.4, 0.5]])


def test_leave_one_out_baseline_by_hand():
    r = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    g = np.array([0, 0, 0, 1, 1, 2])
    np.testing.assert_allclose(leave_one_out_baseline(r, g), [0.5, 1.0, 0.5, 0.0, 1.0, 0.0])


def test_reinforce_loss_value_and_gradient_by_hand():
    logp = torch.tensor([[-0.5, -1.0, -2.0], [-0.1, -0.2, -0.3]], requires_grad=True)
    w = np.array([[1.0, 2.0, 0.0], [-1.0, -1.0, -1.0]])
    mask = np.array([[True, True, False], [True, True, True]])
    b = np.array([0.5, -0.5])
    loss = reinforce_loss(logp, w, mask, baseline=b)
    # −(1/2)·[(0.5)(−0.5) + (1.5)(−1.0) + (−0.5)(−0.1 − 0.2 − 0.3)]
    assert loss.item() == pytest.approx(-0.5 * (-0.25 - 1.5 + 0.3))
    loss.backward()
    expected = -np.where(mask, w - b[:, None], 0.0) / 2
    np.testing.assert_allclose(logp.grad.numpy(), expected, rtol=1e-6)


def test_kl_penalty_by_hand():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, -2.0]])
    mask = np.array([[True, True]])
    d = -0.5
    k = kl_penalty(logp, ref, mask)
    assert k.item() == pytest.approx(np.exp(d) - d - 1)
    k.backward()
    np.testing.assert_allclose(logp.grad.numpy(), [[1 - np.exp(d), 0.0]], rtol=1e-6)
    assert kl_penalty(ref.clone(), ref, mask).item() == 0.0


def test_reinforce_with_group_baseline_is_unbiased():
    """Mean gradient over many sampled groups = the exact ∇_θ E_{a~softmax(θ)}[r(a)], within 4 standard errors."""
    theta = np.array([0.3, -0.2, 0.5, 0.0])
    r = np.array([1.0, 0.0, 0.3, 0.7])
    p = np.exp(theta) / np.exp(theta).sum()
    exact = p * (r - p @ r)  # ∂/∂θ_j Σ_a p_a r_a
    rng = np.random.default_rng(0)
    groups, size = 4000, 4
    grads = np.empty((groups, len(theta)))
    for i in range(groups):
        t = torch.tensor(theta, requires_grad=True)
        a = rng.choice(len(theta), size=size, p=p)
        logp = torch.log_softmax(t, 0)[torch.as_tensor(a)][:, None]  # (B, 1): one token per "sequence"
        base = leave_one_out_baseline(r[a], np.zeros(size, dtype=int))
        (-reinforce_loss(logp, r[a][:, None], np.ones((size, 1), bool), baseline=base)).backward()
        grads[i] = t.grad.numpy()
    mean, se = grads.mean(axis=0), grads.std(axis=0, ddof=1) / np.sqrt(groups)
    assert np.all(np.abs(mean - exact) < 4 * se + 1e-12), (mean, exact, se)
