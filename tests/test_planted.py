"""Tests of the planted sub-sequence task and the prover family μ_γ (pavkit.toy.planted).

The reference below is written from the procedural definition of μ_γ (longest suffix of the prefix that is a
prefix of y*, γ vs 1 weights, EOS after EOS or after y*), independent of the KMP automaton in the module.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pavkit.toy.planted import (
    PlantedTask,
    ProverPolicy,
    match_automaton,
    prover_probs,
    prover_q_values,
    prover_value_table,
    prover_values,
    sample_prover,
)

# ---------------------------------------------------------------------------------------------------------
# Brute-force reference (small sizes only).


def _contains(seq: tuple[int, ...], planted: tuple[int, ...]) -> bool:
    L = len(planted)
    return any(tuple(seq[i : i + L]) == planted for i in range(len(seq) - L + 1))


def _ref_success(seq: tuple[int, ...], planted: tuple[int, ...], eos: int) -> bool:
    seq = tuple(seq)
    cut = seq.index(eos) if eos in seq else len(seq)
    return _contains(seq[:cut], planted)


def _ref_match(prefix: tuple[int, ...], planted: tuple[int, ...]) -> int:
    """Longest k < L with prefix ending in planted[:k] (k = 0 always qualifies)."""
    return max(
        k for k in range(len(planted)) if k <= len(prefix) and tuple(prefix[len(prefix) - k :]) == planted[:k]
    )


def _ref_next_probs(
    prefix: tuple[int, ...], planted: tuple[int, ...], vocab: int, gamma: float, reading: str = "per-token"
) -> np.ndarray:
    eos = vocab - 1
    if eos in prefix or _contains(prefix, planted):
        p = np.zeros(vocab)
        p[eos] = 1.0
        return p
    k = _ref_match(prefix, planted)
    other = 1.0 if reading == "per-token" else 1.0 / (vocab - 1)  # pooled: 1 shared by the vocab − 1 others
    w = np.array([gamma if t == planted[k] else other for t in range(vocab)])
    return w / w.sum()


def _brute_force(planted: tuple[int, ...], vocab: int, length: int, gamma: float, reading: str = "per-token"):
    """Enumerate all vocab**length sequences (lexicographic order).

    Returns (seqs (N, length), values: list over h of (vocab**h,) values of every length-h prefix).
    """
    seqs = np.array(list(itertools.product(range(vocab), repeat=length)), dtype=np.int64)
    probs = cache(lambda prefix: _ref_next_probs(prefix, planted, vocab, gamma, reading))
    cond = np.array([[probs(tuple(s[:i]))[s[i]] for i in range(length)] for s in seqs.tolist()])
    succ = np.array([_ref_success(tuple(s), planted, vocab - 1) for s in seqs.tolist()], dtype=float)
    # tail[:, h] = P(tokens h.. | first h tokens); sequences sharing a length-h prefix are contiguous blocks.
    tail = np.ones((len(seqs), length + 1))
    for h in range(length - 1, -1, -1):
        tail[:, h] = tail[:, h + 1] * cond[:, h]
    values = []
    for h in range(length + 1):
        block = tail[:, h].reshape(vocab**h, -1)
        np.testing.assert_allclose(
            block.sum(axis=1), 1.0, atol=1e-12
        )  # the reference itself is a distribution
        values.append((tail[:, h] * succ).reshape(vocab**h, -1).sum(axis=1))
    return seqs, values


SMALL = dict(vocab_size=5, length=5)  # EOS = 4


@pytest.mark.parametrize("planted", [(0, 1, 0), (0, 0, 1), (1, 2, 3)])  # self-overlaps, and none
@pytest.mark.parametrize("gamma", [0.0, 1.0, 3.7, 1e3])
@pytest.mark.parametrize("reading", ["per-token", "pooled"])
def test_exact_values_match_brute_force(planted, gamma, reading):
    task = PlantedTask(planted, **SMALL, mu_reading=reading)
    V, H, L = task.vocab_size, task.length, len(planted)
    seqs, ref = _brute_force(planted, V, H, gamma, reading)

    table = prover_value_table(task, gamma)
    assert table.shape == (H + 1, L + 1)
    np.testing.assert_array_equal(table[:, L], 1.0)
    np.testing.assert_array_equal(table[0, :L], 0.0)
    assert abs(table[H, 0] - ref[0][0]) < 1e-12

    # Every table entry reachable from some prefix (length h, not settled, match state k) → V[H-h, k].
    checked = set()
    for h in range(H + 1):
        for idx, prefix in enumerate(seqs[:: V ** (H - h), :h].tolist()):
            prefix = tuple(prefix)
            if task.eos in prefix or _contains(prefix, planted):
                continue
            k = _ref_match(prefix, planted)
            assert abs(table[H - h, k] - ref[h][idx]) < 1e-12, (prefix, k)
            checked.add((H - h, k))
    assert len(checked) >= 10

    # prover_values at every prefix of every sequence.
    v = prover_values(task, gamma, seqs)
    assert v.shape == (len(seqs), H + 1)
    for h in range(H + 1):
        np.testing.assert_allclose(v[:, h], ref[h][np.arange(len(seqs)) // V ** (H - h)], rtol=0, atol=1e-12)


def test_value_table_does_not_depend_on_length():
    short = prover_value_table(PlantedTask((0, 1, 0), **SMALL), 2.5)
    long = prover_value_table(PlantedTask((0, 1, 0), vocab_size=5, length=9), 2.5)
    np.testing.assert_allclose(long[: short.shape[0]], short, rtol=0, atol=1e-15)


def test_prover_probs():
    task = PlantedTask((0, 1, 0), **SMALL, mu_reading="per-token")
    p = prover_probs(task, 6.0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[1], np.array([1, 6, 1, 1, 1]) / 10)
    np.testing.assert_allclose(prover_probs(task, 1.0), 0.2)
    pooled = prover_probs(PlantedTask((0, 1, 0), **SMALL), 6.0)  # the default reading
    # γ = 6 against 1 shared by the 4 other tokens: 6/7 on y*[1] = 1, 1/28 on each other token
    np.testing.assert_allclose(pooled[1], np.array([1 / 28, 6 / 7, 1 / 28, 1 / 28, 1 / 28]))
    np.testing.assert_allclose(prover_probs(PlantedTask((0, 1, 0), **SMALL), 1.0)[:, 0], [0.5, 0.125, 0.5])
    with pytest.raises(ValueError, match="mu_reading"):
        PlantedTask((0, 1, 0), **SMALL, mu_reading="per-type")


def test_mu_gamma_success_rates_at_paper_size():
    """V^{μ_γ}(root) of the paper's task (y* = 3 6 0 3 5, length 10, 15 tokens) under both readings: the DP's
    values, checked against 20,000 simulated μ_γ samples each (4 SE)."""
    from pavkit.toy.planted import sample_prover

    expect = {"per-token": {5: 0.005, 10: 0.046, 15: 0.118, 100: 0.815},
              "pooled": {1: 0.102, 5: 0.712, 10: 0.883, 15: 0.934, 100: 0.995}}
    for reading, table in expect.items():
        task = PlantedTask((3, 6, 0, 3, 5), mu_reading=reading)
        for gamma, v in table.items():
            exact = prover_value_table(task, gamma)[-1, 0]
            assert exact == pytest.approx(v, abs=5e-4)
            hits = task.success(sample_prover(task, gamma, 20_000, seed=gamma))
            assert abs(hits.mean() - exact) < 4 * np.sqrt(exact * (1 - exact) / 20_000) + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    planted=st.lists(st.integers(0, 2), min_size=1, max_size=5).map(tuple),
    prefix=st.lists(st.integers(0, 3), max_size=8).map(tuple),
)
def test_match_automaton_is_longest_match(planted, prefix):
    delta = match_automaton(planted, 4)
    assert delta.shape == (len(planted), 4)
    assert np.all(delta[:, 3] == 0)  # token 3 is not in planted: no match survives it
    k = 0
    for i, t in enumerate(prefix):
        if k == len(planted):
            break
        k = delta[k, t]
        seen = prefix[: i + 1]
        if _contains(seen, planted):
            assert k == len(planted)
        else:
            assert k == _ref_match(seen, planted)


# ---------------------------------------------------------------------------------------------------------
# Q-values.


@settings(max_examples=60, deadline=None)
@given(
    planted=st.lists(st.integers(0, 3), min_size=1, max_size=4).map(tuple),
    seq=st.lists(st.integers(0, 4), min_size=6, max_size=6),
    h=st.integers(0, 6),
    gamma=st.sampled_from([0.0, 1.0, 4.0, 50.0]),
    reading=st.sampled_from(["pooled", "per-token"]),
)
def test_q_values_agree_with_values(planted, seq, h, gamma, reading):
    task = PlantedTask(planted, vocab_size=5, length=6, mu_reading=reading)
    prefix = np.array([seq[:h] + [-1] * (6 - h)])
    q = prover_q_values(task, gamma, prefix)[0]
    assert q.shape == (5,)
    v_here = prover_values(task, gamma, np.array([seq]))[0, h]
    if h == task.length:
        np.testing.assert_allclose(q, v_here, rtol=0, atol=1e-15)
        return
    longer = np.array([seq[:h] + [t] + [0] * (6 - h - 1) for t in range(5)])
    np.testing.assert_allclose(q, prover_values(task, gamma, longer)[:, h + 1], rtol=0, atol=1e-15)
    # V(s) = Σ_t μ_γ(t | s) Q(s, t), with μ_γ from the procedural definition.
    mu = _ref_next_probs(tuple(seq[:h]), planted, 5, gamma, reading)
    assert abs(mu @ q - v_here) < 1e-12


# ---------------------------------------------------------------------------------------------------------
# Monte Carlo against the exact values (paper size).


def _within(frac: float, exact: float, n: int, z: float = 4.0) -> bool:
    se = np.sqrt(exact * (1 - exact) / n)
    return abs(frac - exact) <= z * se + 1e-12


def test_sampling_matches_exact_root_value():
    task = PlantedTask.random(seed=7)
    assert len(task.planted) == 5 and task.eos == 14
    n = 20_000
    samples = sample_prover(task, 10.0, n, seed=123)
    assert samples.shape == (n, 10) and samples.dtype == np.int64
    exact = prover_value_table(task, 10.0)[task.length, 0]
    assert 0.01 < exact < 0.99  # about 0.045: a non-degenerate check
    assert _within(task.success(samples).mean(), exact, n)
    # First token follows μ_γ at match state 0.
    freq = np.bincount(samples[:, 0], minlength=15) / n
    p0 = prover_probs(task, 10.0)[0]
    assert np.all(np.abs(freq - p0) <= 4 * np.sqrt(p0 * (1 - p0) / n))
    _assert_padding(task, samples)


def _assert_padding(task: PlantedTask, samples: np.ndarray) -> None:
    """After an EOS, and after y* has appeared, every sampled token is EOS."""
    for h in range(1, task.length):
        first_h = np.where(np.arange(task.length) < h, samples, task.eos)  # masked after h tokens
        settled = (samples[:, :h] == task.eos).any(axis=1) | (task.success(first_h) == 1)
        assert np.all(samples[settled, h] == task.eos)


def test_sampling_continues_prefixes():
    task = PlantedTask.random(seed=3)
    y, eos, pad = list(task.planted), task.eos, -1
    other = next(t for t in range(14) if t != y[0])
    rows = [
        [pad] * 10,
        y[:3] + [pad] * 7,
        [other] + y[:2] + [pad] * 7,
        [eos] + [pad] * 9,
        y + [pad] * 5,
        [other] * 7 + [pad] * 3,  # match state 0 and 3 tokens left: a length-5 y* cannot fit
    ]
    prefixes = np.array(rows)
    n, gamma = 20_000, 10.0
    policy = ProverPolicy(task, gamma)
    comps = policy.complete(prefixes, n, seed=11)
    assert comps.shape == (len(rows), n, 10)
    h = (prefixes != pad).sum(axis=1)
    for i in range(len(rows)):
        np.testing.assert_array_equal(comps[i, :, : h[i]], np.broadcast_to(prefixes[i, : h[i]], (n, h[i])))
        _assert_padding(task, comps[i])
    rewards = task.reward(prefixes, comps)
    assert rewards.shape == (len(rows), n)
    # Exact value of each prefix: V[length - h, k] via prover_values of any full sequence extending it.
    filled = np.where(prefixes == pad, 0, prefixes)
    exact = prover_values(task, gamma, filled)[np.arange(len(rows)), h]
    assert exact[3] == 0.0 and exact[4] == 1.0 and exact[5] == 0.0
    for i in range(len(rows)):
        assert _within(rewards[i].mean(), exact[i], n), (i, rewards[i].mean(), exact[i])
    # Same seed, same samples.
    np.testing.assert_array_equal(policy.complete(prefixes, n, seed=11), comps)


def test_extend_appends_one_token():
    task = PlantedTask((0, 1, 0), **SMALL)
    prefixes = np.array([[0, 1, -1, -1, -1], [-1] * 5, [4, -1, -1, -1, -1]])
    kids = ProverPolicy(task, 3.0).extend(prefixes, 4, seed=0)
    assert kids.shape == (3, 4, 5)
    np.testing.assert_array_equal((kids != -1).sum(axis=2), [[3] * 4, [1] * 4, [2] * 4])
    np.testing.assert_array_equal(kids[2, :, 1], 4)  # after EOS only EOS
    with pytest.raises(ValueError):
        ProverPolicy(task, 3.0).extend(np.array([[0, 1, 2, 3, 3]]), 2, seed=0)


# ---------------------------------------------------------------------------------------------------------
# success / reward.


def test_success_hand_written():
    task = PlantedTask((3, 6, 0, 3, 5))
    seqs = [
        ([3, 6, 0, 3, 5, 14, 14, 14, 14, 14], 1),  # y* then EOS padding
        ([1, 3, 6, 0, 3, 5, 2, 2, 2, 2], 1),  # no EOS at all
        ([0, 0, 0, 0, 0, 3, 6, 0, 3, 5], 1),  # y* at the very end
        ([3, 6, 0, 3, 6, 0, 3, 5, 1, 1], 1),  # overlap: the failed 3 6 0 3 restarts at its last 3
        ([3, 6, 0, 3, 3, 6, 0, 3, 5, 0], 1),  # overlap through the first token
        ([3, 6, 0, 3, 14, 5, 0, 0, 0, 0], 0),  # EOS interrupts
        ([14, 3, 6, 0, 3, 5, 0, 0, 0, 0], 0),  # y* after EOS is masked
        ([0, 0, 0, 0, 0, 0, 3, 6, 0, 3], 0),  # runs out of length
        ([3, 6, 0, 1, 3, 5, 0, 0, 0, 0], 0),  # not contiguous
    ]
    np.testing.assert_array_equal(task.success(np.array([s for s, _ in seqs])), [r for _, r in seqs])
    small = PlantedTask((0, 1, 0), **SMALL)
    np.testing.assert_array_equal(
        small.success(np.array([[0, 1, 0, 1, 0], [0, 0, 1, 0, 4], [0, 1, 4, 0, 0], [0, 1, 1, 0, 0]])),
        [1, 1, 0, 0],
    )


@settings(max_examples=100, deadline=None)
@given(
    planted=st.lists(st.integers(0, 2), min_size=1, max_size=4).map(tuple),
    seqs=st.lists(st.lists(st.integers(0, 3), min_size=7, max_size=7), min_size=1, max_size=5),
)
def test_success_matches_naive(planted, seqs):
    task = PlantedTask(planted, vocab_size=4, length=7)
    got = task.success(np.array(seqs))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [float(_ref_success(tuple(s), planted, 3)) for s in seqs])


def test_reward_shape_and_prefix_check():
    task = PlantedTask((0, 1, 0), **SMALL)
    prefixes = np.array([[0, -1, -1, -1, -1], [-1] * 5])
    comps = np.array([[[0, 1, 0, 4, 4], [0, 0, 0, 0, 0]], [[2, 0, 1, 0, 3], [4, 0, 1, 0, 0]]])
    np.testing.assert_array_equal(task.reward(prefixes, comps), [[1, 0], [1, 0]])
    with pytest.raises(ValueError):
        task.reward(prefixes, comps[:, :, ::-1].copy())  # first completion no longer starts with 0
    with pytest.raises(ValueError):
        task.reward(prefixes, comps[:1])


def test_prefixes_of():
    task = PlantedTask((0, 1, 0), **SMALL)
    pre = task.prefixes_of(np.array([[0, 1, 2, 3, 4]]))
    assert pre.shape == (1, 6, 5)
    np.testing.assert_array_equal(pre[0, 0], -1)
    np.testing.assert_array_equal(pre[0, 2], [0, 1, -1, -1, -1])
    np.testing.assert_array_equal(pre[0, 5], [0, 1, 2, 3, 4])


# ---------------------------------------------------------------------------------------------------------
# Sanity and validation.


def test_root_value_increases_with_gamma():
    task = PlantedTask.random(seed=0)
    gammas = [0.0, 0.5, 1.0, 2.0, 5.0, 8.0, 10.0, 15.0, 50.0, 1e3]
    roots = np.array([prover_value_table(task, g)[task.length, 0] for g in gammas])
    assert np.all(np.diff(roots) > 0)
    assert prover_value_table(task, 1e7)[task.length, 0] > 0.999


def test_random_is_deterministic_and_valid():
    a, b = PlantedTask.random(seed=5), PlantedTask.random(seed=5)
    assert a == b and hash(a) == hash(b)
    assert all(0 <= t <= 13 for t in a.planted)
    assert PlantedTask([np.int64(1), 2]).planted == (1, 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(planted=(1, 14)),  # EOS in y*
        dict(planted=()),
        dict(planted=tuple(range(11))),  # longer than length
        dict(planted=(1, 15)),
        dict(planted=(-1,)),
        dict(planted=(1,), vocab_size=1),
        dict(planted=(1,), length=0),
        dict(planted=(1.5,)),
    ],
)
def test_bad_task_raises(kwargs):
    with pytest.raises(ValueError):
        PlantedTask(**kwargs)


def test_bad_inputs_raise():
    task = PlantedTask((0, 1, 0), **SMALL)
    with pytest.raises(ValueError):
        prover_value_table(task, -1.0)
    with pytest.raises(ValueError):
        prover_probs(task, float("nan"))
    with pytest.raises(ValueError):
        prover_q_values(task, 1.0, np.array([[0, -1, 1, -1, -1]]))  # gap in a prefix
    with pytest.raises(ValueError):
        prover_values(task, 1.0, np.array([[0, 1, 5, 0, 0]]))  # token out of range
    with pytest.raises(ValueError):
        task.success(np.zeros((2, 4), dtype=int))  # wrong length
    with pytest.raises(ValueError):
        task.success(np.zeros((2, 5)))  # floats
    with pytest.raises(ValueError):
        sample_prover(task, 1.0, 3, seed=0, prefixes=np.zeros((1, 6), dtype=int))
