r"""Didactic RL on the planted sub-sequence task with the effective reward (paper §3.3, Fig. 3).

One readable loop (CleanRL style). Each iteration:

1. sample a batch of B sequences y ~ π_θ (temperature 1);
2. values at every prefix s_1 … s_{H+1} of each sequence (``v`` of shape (B, H+1)):
   - V^π by Monte Carlo: ``n_mc`` rollouts of the current π from every distinct unsettled prefix
     (settled prefixes — y* seen, EOS, full length — have their exact reward);
   - V^μ exact from the μ_γ automaton DP (prover "gamma:G"), or Best-of-K(π) from the Monte Carlo V^π
     (prover "bok:K": V^μ = 1 − (1 − V^π)^K, App. F.4);
3. per-step weight  w_h = Q^π(s_h, a_h) + α·A^μ(s_h, a_h)   (Eq. 5; α = 0 is outcome-only RL);
4. REINFORCE:  loss = −(1/B) Σ_b Σ_h mask_bh · w_bh · log π_θ(a_h | s_h),  one Adam (or plain SGD) step.

Steps after the reward is settled are masked (``policies.action_mask``): their weight would be 1 + α·0
whatever the action, a zero-mean term that only adds variance.

Every ``eval_every`` iterations the accuracy of π (the fraction of fresh temperature-1 samples that contain
y*) is measured on ``eval_samples`` sequences drawn from a generator of their own, so evaluation never changes
the training stream and a resumed run reproduces an uninterrupted one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from pavkit.estimators import effective_reward, pass_at_k
from pavkit.losses import reinforce_loss
from pavkit.provers import PLANTED_PROVERS, parse_prover
from pavkit.toy import planted as _planted
from pavkit.toy.config import RLConfig, SFTConfig  # noqa: F401 (re-exported: RLConfig is this loop's config)
from pavkit.toy.planted import PlantedTask
from pavkit.toy.policies import MadePolicy, action_mask, rollout_successes, sft


@dataclass
class RLState:
    """The mutable part of a run: what a checkpoint saves."""

    task: PlantedTask
    policy: MadePolicy
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # training stream: batches and rollouts
    iteration: int = 0


def _task_and_policy(cfg: RLConfig) -> tuple[PlantedTask, MadePolicy]:
    torch.manual_seed(cfg.seed)  # the policy's initial weights
    task = cfg.task()
    return task, MadePolicy(cfg.length, cfg.vocab_size, cfg.hidden, cfg.layers)


def _optimizer(cfg: RLConfig, policy: MadePolicy) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(policy.parameters(), lr=cfg.lr)
    return torch.optim.Adam(policy.parameters(), lr=cfg.lr)


def init_state(cfg: RLConfig) -> RLState:
    """Build the task, initialise π by SFT on μ_γ samples (cfg.sft), and a fresh optimiser."""
    task, policy = _task_and_policy(cfg)
    sft(policy, task, cfg.sft, cfg.seed)
    return RLState(task, policy, _optimizer(cfg, policy), torch.Generator().manual_seed(cfg.seed + 1))


def checkpoint(state: RLState) -> dict:
    """Everything needed to continue the run bit-for-bit (torch.save-able)."""
    return {"iteration": state.iteration, "policy": state.policy.state_dict(),
            "optimizer": state.optimizer.state_dict(), "generator": state.generator.get_state()}


def restore(cfg: RLConfig, ckpt: dict) -> RLState:
    """Inverse of ``checkpoint`` for the same config."""
    task, policy = _task_and_policy(cfg)
    policy.load_state_dict(ckpt["policy"])
    optimizer = _optimizer(cfg, policy)
    optimizer.load_state_dict(ckpt["optimizer"])
    generator = torch.Generator()
    generator.set_state(ckpt["generator"])
    return RLState(task, policy, optimizer, generator, int(ckpt["iteration"]))


def mc_prefix_values(policy: MadePolicy, task: PlantedTask, sequences: np.ndarray, n_mc: int,
                     generator: torch.Generator) -> tuple[np.ndarray, int]:
    """Monte Carlo V^π at every prefix s_1 … s_{H+1} of each sequence; exact where the reward is settled.

    Every distinct unsettled prefix (the empty one included) gets ``n_mc`` rollouts, all in one batched call.

    Args:
        sequences: (B, length) int.
    Returns:
        v_pi (B, length+1) float64, and the number of rollouts run.
    """
    states = _planted._run_states(task, sequences)  # (B, H+1) extended automaton states
    L = len(task.planted)
    v = (states == L).astype(np.float64)  # settled prefixes: 1 if y* seen, 0 after EOS
    prefixes = task.prefixes_of(sequences)  # (B, H+1, H)
    todo = states < L
    todo[:, -1] = False  # a full-length prefix is settled: its value is its reward (0 here)
    if todo.any():
        unique, inverse = np.unique(prefixes[todo], axis=0, return_inverse=True)
        outcomes = rollout_successes(policy, task, unique, n_mc, generator)  # (U, n_mc)
        v[todo] = outcomes.mean(axis=1)[inverse.ravel()]
        return v, outcomes.size
    return v, 0


def prover_prefix_values(cfg: RLConfig, task: PlantedTask, sequences: np.ndarray, v_pi: np.ndarray,
                         seed: int = 0) -> np.ndarray:
    """V^μ at every prefix (B, H+1).

    "gamma:G": exact from the μ_γ automaton DP, or (cfg.prover_mc > 0) the mean of cfg.prover_mc rollouts of
    μ_γ from every distinct prefix (numpy stream ``seed``). "bok:K": Best-of-K of the Monte Carlo V^π.
    """
    prover = parse_prover(cfg.prover, PLANTED_PROVERS)
    if prover.kind == "bok":
        return prover.from_base(v_pi)
    value = prover.gamma
    if not cfg.prover_mc:
        return _planted.prover_values(task, value, sequences)
    prefixes = task.prefixes_of(sequences)  # (B, H+1, H)
    unique, inverse = np.unique(prefixes.reshape(-1, task.length), axis=0, return_inverse=True)
    rollouts = _planted.sample_prover(task, value, cfg.prover_mc, seed, prefixes=unique)  # (U, n, H)
    means = task.success(rollouts.reshape(-1, task.length)).reshape(len(unique), -1).mean(axis=1)
    return means[inverse.ravel()].reshape(prefixes.shape[:2])


def prover_terms(policy: MadePolicy, task: PlantedTask, provers: list[str], sequences: np.ndarray, n_mc: int,
                 generator: torch.Generator) -> dict:
    r"""Theorem 3.1's two terms for each prover at the states π visits, the paper's account of Fig. 3(b).

        distinguishability = E_s Var_{a~π(·|s)}[A^μ(s, a)]
        alignment          = E_s E_{a~π(·|s)}[A^μ(s, a) · A^π(s, a)]

    s runs over every unsettled prefix of ``sequences`` (samples of π; the steps ``action_mask`` keeps), so E_s
    is π's occupancy summed over depths. π(·|s) is exact (the MADE conditionals); A^{μ_γ} is exact (the DP);
    Q^π(s, a) is the mean of ``n_mc`` rollouts of π from every distinct child s·a (one batched call),
    V^π(s) = Σ_a π(a|s) Q^π(s, a), and a Best-of-K prover uses 1 − (1 − Q^π)^K of those. The paper's reading:
    outside γ ∈ [8, 15], A^μ ≈ 0 on most states, so distinguishability is small.

    Args:
        provers: "gamma:G" or "bok:K" specs.
        sequences: (B, length) int, samples of π.
    Returns:
        {"provers": [...], "distinguishability": [...], "alignment": [...], "mean_abs_adv_mu": [...] (one float
         per prover), "states": S, "pi_eos": E_s π(EOS | s) (a strong μ's A^μ(s, EOS) = −V^μ(s) ≈ −1)}.
    """
    from pavkit.estimators import complementarity

    seqs = np.asarray(sequences)
    b, h = np.nonzero(action_mask(task, seqs))  # the S visited states, as (sequence, depth)
    states = task.prefixes_of(seqs)[b, h]  # (S, H)
    with torch.no_grad():
        pi = torch.softmax(policy.logits(torch.as_tensor(states))[np.arange(len(h)), h], -1).double().numpy()
    children = np.repeat(states, task.vocab_size, axis=0)  # (S·V, H): s·a for every token a
    children[np.arange(len(children)), np.repeat(h, task.vocab_size)] = np.tile(np.arange(task.vocab_size), len(h))
    unique, inverse = np.unique(children, axis=0, return_inverse=True)
    q_pi = rollout_successes(policy, task, unique, n_mc, generator).mean(axis=1)[inverse.ravel()]
    q_pi = q_pi.reshape(len(h), task.vocab_size)  # (S, V)
    v_pi = (pi * q_pi).sum(axis=1)  # (S,)
    adv_pi = q_pi - v_pi[:, None]
    out: dict = {"provers": list(provers), "distinguishability": [], "alignment": [], "mean_abs_adv_mu": [],
                 "states": int(len(h)), "pi_eos": float(pi[:, task.eos].mean())}
    for spec in provers:
        prover = parse_prover(spec, PLANTED_PROVERS)
        if prover.kind == "bok":
            q_mu, v_mu = prover.from_base(q_pi), prover.from_base(v_pi)
        else:
            g = prover.gamma
            q_mu, v_mu = _planted.prover_q_values(task, g, states), _planted.prover_values(task, g, seqs)[b, h]
        adv_mu = q_mu - v_mu[:, None]  # (S, V)
        terms = complementarity(pi, adv_mu, adv_pi)
        out["distinguishability"].append(terms.distinguishability)
        out["alignment"].append(terms.alignment)
        out["mean_abs_adv_mu"].append(float((pi * np.abs(adv_mu)).sum(axis=1).mean()))
    return out


def sft_prover_terms(cfg: RLConfig, provers: list[str], samples: int = 64, n_mc: int = 100) -> dict:
    """:func:`prover_terms` at ``samples`` sequences of cfg's SFT policy (before any RL step), seeded by cfg.seed."""
    state = init_state(cfg)
    seqs = state.policy.sample(samples, torch.Generator().manual_seed(cfg.seed + 20_000)).numpy()
    return prover_terms(state.policy, state.task, provers, seqs, n_mc, torch.Generator().manual_seed(cfg.seed + 20_001))


def rl_iteration(state: RLState, cfg: RLConfig) -> dict:
    """One REINFORCE update with the effective reward; returns the iteration's record."""
    task, policy = state.task, state.policy
    seqs = policy.sample(cfg.batch, state.generator).numpy()  # (B, H)
    if cfg.n_mc:
        v_pi, rollouts = mc_prefix_values(policy, task, seqs, cfg.n_mc, state.generator)
    else:  # Q^π(s_h, a_h) := r(y), the sampled return
        v_pi, rollouts = np.repeat(task.success(seqs)[:, None], cfg.length + 1, axis=1), 0
    prover_seed = int(torch.randint(2**31 - 1, (1,), generator=state.generator)) if cfg.prover_mc else 0
    v_mu = prover_prefix_values(cfg, task, seqs, v_pi, prover_seed)
    mask = action_mask(task, seqs)  # (B, H)
    weights = effective_reward(v_pi, v_mu, cfg.alpha, mask)  # (B, H): Q^π + α·A^μ, 0 on masked steps
    logp = policy.log_probs(torch.as_tensor(seqs))
    loss = reinforce_loss(logp, weights, mask)  # −(1/B) Σ mask·w·log π
    state.optimizer.zero_grad()
    loss.backward()
    state.optimizer.step()
    state.iteration += 1
    adv_mu = np.diff(v_mu, axis=1)[mask]
    return {"iteration": state.iteration, "loss": loss.item(), "batch_accuracy": float(task.success(seqs).mean()),
            "mean_weight": float(weights[mask].mean()), "mean_abs_adv_mu": float(np.abs(adv_mu).mean()),
            "rollouts": rollouts}


def accuracy(policy: MadePolicy, task: PlantedTask, n: int, seed: int) -> float:
    """Fraction of n fresh temperature-1 samples of π that contain y* (a generator of its own)."""
    seqs = policy.sample(n, torch.Generator().manual_seed(seed)).numpy()
    return float(task.success(seqs).mean())


def pass_at_n(policy: MadePolicy, task: PlantedTask, ns: tuple[int, ...], samples: int, seed: int) -> np.ndarray:
    """Pass@N of π for each N in ``ns`` by the unbiased estimator on ``samples`` fresh samples: (len(ns),)."""
    correct = int(task.success(policy.sample(samples, torch.Generator().manual_seed(seed)).numpy()).sum())
    return np.array([float(pass_at_k(samples, correct, n)) for n in ns])


def train(cfg: RLConfig, state: RLState) -> Iterator[dict]:
    """Run iterations state.iteration+1 … cfg.iters, yielding one record per iteration.

    Records carry "accuracy" on evaluation iterations (every ``eval_every``, and the last, which uses
    ``final_samples``), and "pass_at_n" ({"n": [...], "values": [...]}) at iterations 0 and ``pass_at_iter``.
    Iteration 0 (the SFT policy) is yielded first when starting from scratch.
    """
    eval_seed = cfg.seed + 10_000  # evaluation samples never touch the training generator

    def evaluation(it: int) -> dict:
        n = cfg.final_samples if it == cfg.iters else cfg.eval_samples
        return {"accuracy": accuracy(state.policy, state.task, n, eval_seed + it), "eval_samples": n}

    def pass_record(it: int) -> dict:
        values = pass_at_n(state.policy, state.task, cfg.pass_at_ns, cfg.pass_samples, eval_seed + 7 * it + 3)
        return {"pass_at_n": {"n": list(cfg.pass_at_ns), "values": values.tolist()}}

    if state.iteration == 0:
        t0 = time.perf_counter()
        yield {"iteration": 0, **evaluation(0), **pass_record(0), "seconds": time.perf_counter() - t0}
    while state.iteration < cfg.iters:
        t0 = time.perf_counter()
        record = rl_iteration(state, cfg)
        it = state.iteration
        if it == cfg.iters or (cfg.eval_every and it % cfg.eval_every == 0):
            record.update(evaluation(it))
        if it == cfg.pass_at_iter:
            record.update(pass_record(it))
        record["seconds"] = time.perf_counter() - t0  # the update and any evaluation
        yield record


def run_metrics(cfg: RLConfig, records: list[dict], wall_seconds: float) -> dict:
    """metrics.json of a run from its records: final, initial and mean accuracy (over the evaluations after
    iteration 0), Pass@N at ``cfg.pass_at_iter``, seconds (summed over sessions), rollouts."""
    evals = [r for r in records if "accuracy" in r]
    pass_n = [r["pass_at_n"] for r in records if "pass_at_n" in r and r["iteration"] == cfg.pass_at_iter]
    return {"final_accuracy": evals[-1]["accuracy"], "iterations": records[-1]["iteration"],
            "seconds": round(sum(r.get("seconds", 0.0) for r in records), 3),
            "wall_seconds_this_session": round(wall_seconds, 3),
            "mean_accuracy": float(sum(r["accuracy"] for r in evals[1:]) / max(len(evals) - 1, 1)),
            "initial_accuracy": evals[0]["accuracy"],
            "pass_at_n": pass_n[0] if pass_n else None,
            "rollouts": sum(r.get("rollouts", 0) for r in records)}
