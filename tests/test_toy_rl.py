"""The didactic RL stack (policies.py, rl.py): checked against exact enumeration on small tasks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from pavkit.estimators import bok
from pavkit.toy.planted import PAD, PlantedTask, prover_probs, prover_values
from pavkit.toy.policies import MadePolicy, SFTConfig, action_mask, made_masks, rollout_successes, sft
from pavkit.toy.rl import (
    RLConfig,
    checkpoint,
    init_state,
    mc_prefix_values,
    prover_prefix_values,
    prover_terms,
    restore,
    rl_iteration,
    train,
)

SMALL = PlantedTask((1, 2), vocab_size=4, length=4)  # EOS = 3


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small matrices: one thread avoids oversubscribing a busy CI machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _small_policy(seed: int = 0) -> MadePolicy:
    torch.manual_seed(seed)
    pol = MadePolicy(length=4, vocab_size=4, hidden=16, layers=2)
    with torch.no_grad():  # a peaked, non-uniform π so errors in the conditionals would show
        for lin in pol.linears:
            lin.weight.normal_(0, 1.0)
            lin.bias.normal_(0, 1.0)
    return pol


def _exact_episodes(pol: MadePolicy, task: PlantedTask, prefix: list[int]):
    """Every episode continuing ``prefix`` (tokens after the first EOS are EOS) with its exact probability."""
    out = []
    h, eos = len(prefix), task.eos
    for tail in itertools.product(range(task.vocab_size), repeat=task.length - h):
        seq = list(prefix) + list(tail)
        first = seq.index(eos) if eos in seq else None
        if first is not None and any(t != eos for t in seq[first:]):
            continue  # not an episode
        last = task.length if first is None else first + 1  # positions after the first EOS are padding
        logp = pol.log_probs(torch.tensor([seq]))[0]
        out.append((seq, torch.exp(logp[h:last].sum()).item() if h < last else 1.0))
    return out


def test_made_masks_are_autoregressive():
    pol = _small_policy()
    x = torch.randint(0, 4, (32, 4))
    base = pol.logits(x)
    for j in range(4):
        y = x.clone()
        y[:, j] = (y[:, j] + 1) % 4
        changed = (pol.logits(y) - base).abs().amax(dim=(0, 2))  # (length,)
        assert torch.all(changed[: j + 1] == 0), f"logits at positions <= {j} depend on token {j}"
    masks = made_masks(10, 15, 128, 3)
    assert [tuple(m.shape) for m in masks] == [(128, 150), (128, 128), (128, 128), (150, 128)]
    # Position 0's logits see no hidden unit: π(y_0) is the output bias alone.
    assert masks[-1][:15].sum() == 0


def test_episode_probabilities_sum_to_one_and_sampling_matches():
    pol = _small_policy(1)
    episodes = _exact_episodes(pol, SMALL, [])
    total = sum(p for _, p in episodes)
    assert total == pytest.approx(1.0, abs=1e-5)
    n = 40_000
    samples = pol.sample(n, torch.Generator().manual_seed(0)).numpy()
    counts = {}
    for row in map(tuple, samples):
        counts[row] = counts.get(row, 0) + 1
    assert set(counts) <= {tuple(s) for s, _ in episodes}, "sampled a non-episode (token after EOS)"
    for seq, p in episodes:
        if p > 0.01:
            freq = counts.get(tuple(seq), 0) / n
            assert abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n) + 1e-4, (seq, freq, p)


@pytest.mark.parametrize("prefix", [[], [1], [0, 1], [1, 2], [3], [2, 1, 0]])
def test_rollout_successes_match_exact_values(prefix):
    pol = _small_policy(2)
    exact = sum(p * SMALL.success(np.array([s]))[0] for s, p in _exact_episodes(pol, SMALL, prefix))
    row = np.full((1, 4), PAD)
    row[0, : len(prefix)] = prefix
    n = 20_000
    est = rollout_successes(pol, SMALL, row, n, torch.Generator().manual_seed(3))
    assert est.shape == (1, n)
    se = np.sqrt(exact * (1 - exact) / n)
    assert abs(est.mean() - exact) <= 4 * se + 1e-12, (prefix, est.mean(), exact)
    # The generic path (complete + reward) estimates the same value.
    ref = SMALL.reward(row, pol.complete(torch.as_tensor(row), n, torch.Generator().manual_seed(4)).numpy())
    assert abs(ref.mean() - exact) <= 4 * se + 1e-12


def test_rollout_successes_groups_by_prefix():
    pol = _small_policy(3)
    rows = np.array([[1, 2, PAD, PAD], [3, 3, 3, 3], [PAD] * 4, [0, 1, 2, 0]])
    r = rollout_successes(pol, SMALL, rows, 50, torch.Generator().manual_seed(0))
    assert r.shape == (4, 50)
    assert np.all(r[0] == 1) and np.all(r[1] == 0)  # settled: y* seen / EOS first
    assert np.all(r[3] == 1)


def test_action_mask_stops_after_the_settling_step():
    seqs = np.array([[1, 2, 0, 0], [0, 3, 3, 3], [0, 0, 0, 0], [1, 2, 3, 3]])
    expected = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(action_mask(SMALL, seqs), expected)


def test_mc_prefix_values_exact_where_settled_and_close_elsewhere():
    pol = _small_policy(4)
    seqs = np.array([[1, 2, 0, 0], [0, 3, 3, 3], [0, 0, 1, 0], [0, 1, 0, 0]])
    v, rollouts = mc_prefix_values(pol, SMALL, seqs, 4000, torch.Generator().manual_seed(0))
    assert v.shape == (4, 5)
    np.testing.assert_array_equal(v[0, 2:], 1.0)
    np.testing.assert_array_equal(v[1, 2:], 0.0)
    np.testing.assert_array_equal(v[:, -1], SMALL.success(seqs))
    assert np.all(v[:, 0] == v[0, 0]), "the empty prefix is one prefix: one estimate"
    # Distinct unsettled prefixes: [], [1], [0], [0,3]x, [0,0], [0,0,1], [0,1], [0,1,0] → 7 (prefix [0,3] is EOS).
    assert rollouts == 7 * 4000
    exact = sum(p * SMALL.success(np.array([s]))[0] for s, p in _exact_episodes(pol, SMALL, [0, 0, 1]))
    assert abs(v[2, 3] - exact) <= 4 * np.sqrt(exact * (1 - exact) / 4000) + 1e-12


def test_prover_prefix_values():
    seqs = np.array([[1, 2, 0, 0], [0, 1, 1, 0]])
    v_pi = np.linspace(0.1, 0.9, 10).reshape(2, 5)
    cfg = RLConfig(prover="gamma:4", planted=(1, 2), vocab_size=4, length=4)
    np.testing.assert_allclose(prover_prefix_values(cfg, SMALL, seqs, v_pi), prover_values(SMALL, 4, seqs))
    cfg = RLConfig(prover="bok:3", planted=(1, 2), vocab_size=4, length=4)
    np.testing.assert_allclose(prover_prefix_values(cfg, SMALL, seqs, v_pi), 1 - (1 - v_pi) ** 3)
    np.testing.assert_allclose(prover_prefix_values(cfg, SMALL, seqs, v_pi), bok(v_pi, 3))


def test_prover_terms_match_exact_enumeration():
    """Thm 3.1's terms at π's visited states: distinguishability exactly (π and A^μ are exact), alignment within
    Monte Carlo error, both against Q^π and V^μ recomputed here by enumerating π's episodes."""
    pol, task = _small_policy(1), SMALL
    seqs = pol.sample(6, torch.Generator().manual_seed(0)).numpy()
    got = prover_terms(pol, task, ["gamma:3", "bok:2"], seqs, 4000, torch.Generator().manual_seed(1))
    dist, align, n, eos = np.zeros(2), np.zeros(2), 0, 0.0
    for seq in seqs:
        for h in range(task.length):
            prefix = [int(t) for t in seq[:h]]
            if task.success(np.array([list(seq[:h]) + [task.eos] * (task.length - h)]))[0] or task.eos in prefix:
                break  # settled: y* seen or EOS
            children = [prefix + [t] for t in range(task.vocab_size)]
            pad = [c + [task.eos] * (task.length - len(c)) for c in children]
            pi = np.exp([pol.log_probs(torch.tensor([c]))[0, h].item() for c in pad])
            q_pi = np.array([sum(p * task.success(np.array([e]))[0] for e, p in _exact_episodes(pol, task, c))
                             for c in children])
            adv_pi = q_pi - pi @ q_pi
            eos += pi[task.eos]
            v_mu = prover_values(task, 3, np.array([pad[0]]))[0]
            q_g = np.array([prover_values(task, 3, np.array([c]))[0, h + 1] for c in pad])
            for i, adv_mu in enumerate((q_g - v_mu[h], bok(q_pi, 2) - bok(pi @ q_pi, 2))):
                dist[i] += pi @ (adv_mu - pi @ adv_mu) ** 2
                align[i] += pi @ (adv_mu * adv_pi)
            n += 1
    assert got["states"] == n
    assert got["pi_eos"] == pytest.approx(eos / n, rel=1e-6)
    np.testing.assert_allclose(got["distinguishability"][0], dist[0] / n, rtol=1e-6)  # float32 π
    np.testing.assert_allclose(got["distinguishability"][1], dist[1] / n, atol=5e-3)  # Bo2 uses MC Q^π
    np.testing.assert_allclose(got["alignment"], align / n, atol=5e-3)


@pytest.mark.parametrize("bad", ["gamma", "gamma:-1", "bok:0", "bok:2.5", "mu:3", "gamma:nan", ""])
def test_parse_prover_rejects_bad_specs(bad):
    from pavkit.provers import PLANTED_PROVERS, parse_prover

    with pytest.raises(ValueError, match="prover must be"):
        parse_prover(bad, PLANTED_PROVERS)
    gamma, k = parse_prover("gamma:10", PLANTED_PROVERS), parse_prover("bok:4", PLANTED_PROVERS)
    assert (gamma.kind, gamma.gamma) == ("gamma", 10.0) and (k.kind, k.k) == ("bok", 4)


def test_sft_moves_pi_towards_the_prover():
    task = PlantedTask((1, 2), vocab_size=5, length=5)
    torch.manual_seed(0)
    pol = MadePolicy(length=5, vocab_size=5, hidden=32, layers=2)
    losses = sft(pol, task, SFTConfig(gamma=20, samples=3200, iters=150, batch=128, lr=3e-2), seed=0)
    assert losses[-1] < losses[0] - 0.2
    first = torch.softmax(pol.logits(torch.full((1, 5), PAD))[0, 0], -1).detach().numpy()
    np.testing.assert_allclose(first, prover_probs(task, 20)[0], atol=0.05)


def _small_cfg(**kw) -> RLConfig:
    base = dict(prover="gamma:8", alpha=1.0, iters=40, batch=32, lr=3e-3, n_mc=16, eval_every=10,
                eval_samples=500, final_samples=2000, pass_at_iter=10, pass_at_ns=(1, 4, 16), pass_samples=256,
                planted=(1, 2, 0), vocab_size=5, length=6, hidden=32, layers=2,
                sft=SFTConfig(gamma=3, samples=640, iters=20, batch=32), seed=0)
    base.update(kw)
    return RLConfig(**base)


def test_effective_reward_rl_learns_the_planted_sequence():
    cfg = _small_cfg(lr=1e-2)
    state = init_state(cfg)
    records = list(train(cfg, state))
    assert [r["iteration"] for r in records] == list(range(41))
    acc = [r["accuracy"] for r in records if "accuracy" in r]
    assert len(acc) == 5 and records[-1]["eval_samples"] == 2000
    assert acc[-1] > acc[0] + 0.5, acc
    p0, p10 = records[0]["pass_at_n"]["values"], records[10]["pass_at_n"]["values"]
    assert p0 == sorted(p0) and p10[-1] >= p10[0]


def _hand_built_loss(state, cfg: RLConfig):
    """A twin of ``state`` and −(1/B) Σ mask·w·log π of the batch rl_iteration(state) will draw, rebuilt by hand
    (the prover is gamma:8, as in _small_cfg)."""
    twin = restore(cfg, checkpoint(state))
    gen = torch.Generator()
    gen.set_state(state.generator.get_state())
    seqs = twin.policy.sample(cfg.batch, gen).numpy()
    v_pi, _ = mc_prefix_values(twin.policy, twin.task, seqs, cfg.n_mc, gen)
    w = v_pi[:, 1:] + cfg.alpha * np.diff(prover_values(twin.task, 8, seqs), axis=1)
    w = np.where(action_mask(twin.task, seqs), w, 0.0)
    logp = twin.policy.log_probs(torch.as_tensor(seqs))
    return twin, -(torch.as_tensor(w, dtype=torch.float32) * logp).sum() / cfg.batch


def test_one_iteration_gradient_is_the_weighted_log_prob_gradient():
    """rl_iteration's update equals an Adam step on −(1/B) Σ mask·w·log π, recomputed here by hand."""
    cfg = _small_cfg(batch=8, n_mc=8)
    state = init_state(cfg)
    twin, loss = _hand_built_loss(state, cfg)
    twin.optimizer.zero_grad()
    loss.backward()
    twin.optimizer.step()
    record = rl_iteration(state, cfg)
    assert record["loss"] == pytest.approx(loss.item(), rel=1e-5)
    for a, b in zip(state.policy.parameters(), twin.policy.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_sgd_iteration_is_a_plain_gradient_step():
    """optimizer="sgd": θ ← θ − lr·∇θ loss exactly (no momentum, no normalisation), from the same loss as Adam's."""
    cfg = _small_cfg(batch=8, n_mc=8, optimizer="sgd", lr=0.5)
    state = init_state(cfg)
    assert isinstance(state.optimizer, torch.optim.SGD)
    before = [p.detach().clone() for p in state.policy.parameters()]
    twin, loss = _hand_built_loss(state, cfg)
    grads = torch.autograd.grad(loss, list(twin.policy.parameters()))
    rl_iteration(state, cfg)
    for p0, g, p1 in zip(before, grads, state.policy.parameters(), strict=True):
        torch.testing.assert_close(p1.detach(), p0 - 0.5 * g)
    with pytest.raises(ValueError, match="optimizer"):
        _small_cfg(optimizer="rmsprop")


def test_checkpoint_restore_reproduces_an_uninterrupted_run():
    cfg = _small_cfg(iters=12, eval_every=4)
    full = [r for r in train(cfg, init_state(cfg))]
    state = init_state(cfg)
    head = []
    for r in train(cfg, state):
        head.append(r)
        if r["iteration"] == 5:
            break
    resumed = restore(cfg, checkpoint(state))
    tail = list(train(cfg, resumed))
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in head + tail]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in full]


def test_rl_config_round_trips_and_validates():
    cfg = _small_cfg()
    assert RLConfig.from_dict(cfg.to_dict()) == cfg
    old = {k: v for k, v in _small_cfg(mu_reading="pooled").to_dict().items() if k not in ("mu_reading", "optimizer")}
    assert (RLConfig.from_dict(old).mu_reading, RLConfig.from_dict(old).optimizer) == ("per-token", "adam")
    with pytest.raises(ValueError, match="pass_samples"):
        _small_cfg(pass_samples=8)
    with pytest.raises(ValueError, match="prover"):
        _small_cfg(prover="gamma")
