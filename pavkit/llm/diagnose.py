r"""Prover diagnostics on a real policy: Theorem 3.1's distinguishability and alignment, estimated by rollouts.

The toy lab computes both terms exactly (``pavkit.toy.theory``); here they are Monte Carlo estimates at states of
an LLM policy π, so a user can rank candidate provers μ before training a PAV for any of them:

1. **States.** One response of π per problem; the state is its prefix at a step h drawn uniformly from
   0 … H−1 (h = 0: the prompt alone).
2. **Actions.** C next steps a ~ π(·|s) (``engine.extend``).
3. **Values.** ``rollouts`` completions of each child (s, a) by π, graded, split into two independent halves
   A and B: Q̂^π = the half's success rate. Per prover: ``bok:K`` → the unbiased Best-of-K value of the same
   half, 1 − C(m−c, K)/C(m, K) (``estimators.pass_at_k``; K ≤ m = rollouts/2); ``pi`` → Q̂^π; ``temp:T`` and
   ``model:DIR`` (another policy) → the success rate of their own rollouts from the child, split the same way.
   A child whose step ended the response is graded once: all its values are its outcome.
4. **Terms.** ``estimators.sampled_complementarity`` per state (unbiased: covariances across the halves), then
   the mean over states with its standard error.

Cost: P·C·rollouts completions by π, and as many by each rollout prover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pavkit.estimators import pass_at_k, sampled_complementarity
from pavkit.llm import sampling
from pavkit.llm.sampling import SamplingConfig
from pavkit.llm.steps import prefix_text, split_steps
from pavkit.options import option
from pavkit.provers import LABEL_PROVERS, parse_prover
from pavkit.runs import derive_seed


@dataclass(frozen=True, kw_only=True)
class DiagnoseConfig(SamplingConfig):
    """config.json of `pavkit llm diagnose-provers` (sampling defaults: the organism's, as RL)."""

    policy: str
    problems: str
    provers: tuple[str, ...] = ("bok:2", "bok:4", "bok:8")
    children: int = option(4, "Next steps a ~ π(·|s) drawn at each state (C).", min=2)
    rollouts: int = option(16, "Completions of each child (s, a), split into two independent halves.", min=2)
    max_step_tokens: int = option(64, "Token cap of one sampled step.", min=1)
    max_new_tokens: int = sampling.default("max_new_tokens", 160)
    batch_size: int = sampling.default("batch_size", 128)
    strict: bool = sampling.default("strict", True)
    engine: str = sampling.engine_field("What samples π's states, next steps and rollouts, and the model: provers'")
    vllm_options: dict = field(default_factory=dict)  # vllm.LLM keyword arguments (engine "vllm")

    def __post_init__(self) -> None:
        super().__post_init__()
        sampling.check_vllm_options(self.vllm_options, engine=self.engine)
        if self.rollouts % 2:
            raise ValueError(f"rollouts must be even (two halves), got {self.rollouts}")
        if not self.provers:
            raise ValueError("give at least one prover")
        for spec in self.provers:
            mu = parse_prover(spec, LABEL_PROVERS)
            if mu.kind == "bok" and mu.k > self.rollouts // 2:
                raise ValueError(f"prover {spec}: K = {mu.k} needs rollouts >= {2 * mu.k} (K <= each half)")

    def to_json(self) -> dict:
        return {**asdict(self), "provers": list(self.provers)}


# DiagnoseConfig fields added after runs were first written, with the value every older run had
DIAGNOSE_ADDED_FIELDS = {"engine": "hf", "vllm_options": {}}


def sample_states(engine: Any, prompts: Sequence[str], seed: int) -> list[tuple[list[str], bool]]:
    """One response of π per prompt → (the steps of the state, whether the response had any step), the state's
    step h drawn uniformly from 0 … H−1 with a generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for row in engine.complete(list(prompts), 1, seed):
        steps = split_steps(row[0].text, engine.delimiter)
        h = int(rng.integers(len(steps))) if steps else 0
        out.append((steps[:h], bool(steps)))
    return out


def _halves(correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, n) successes → success counts of the halves A, B (C,) each."""
    m = correct.shape[1] // 2
    return correct[:, :m].sum(axis=1), correct[:, m:].sum(axis=1)


def state_terms(engines: dict[str, Any], problem: Any, prompt: str, steps: list[str], cfg: DiagnoseConfig,
                index: int) -> dict:
    """One state's record: its children and, per prover, Q̂^μ of both halves and the two terms.

    ``engines``: "pi" → π's engine, and each rollout prover's spec (``temp:T``, ``model:DIR``) → its engine.
    """
    from pavkit.llm.grading import CORRECT, grade_outcomes
    from pavkit.llm.label import rollouts

    d, n, m = cfg.delimiter, cfg.rollouts, cfg.rollouts // 2
    kids = engines["pi"].extend([prefix_text(prompt, steps, d)], cfg.children, derive_seed(cfg.seed, index, 1))[0]
    child_steps = [steps + ([k.text] if k.text.strip() else []) for k in kids]
    done = np.array([k.finished for k in kids])
    # a child that ended the response: its outcome, exactly (every value of every prover)
    graded = grade_outcomes([prefix_text("", s, d) for s in child_steps], [problem.answer] * len(kids),
                            strict=cfg.strict)
    outcome = np.array([o == CORRECT for o in graded], dtype=float)

    def values(engine: Any, stream: int) -> tuple[np.ndarray, np.ndarray]:
        correct = np.zeros((cfg.children, n), dtype=bool)
        live = np.flatnonzero(~done)
        correct[live] = rollouts(engine, prompt, [child_steps[i] for i in live], n,
                                 derive_seed(cfg.seed, index, 2, stream), problem.answer, d, cfg.strict)[0]
        return _halves(correct)

    c_a, c_b = values(engines["pi"], 0)
    q_pi = [np.where(done, outcome, c / m) for c in (c_a, c_b)]
    record: dict[str, Any] = {"index": index, "problem_id": problem.id, "h": len(steps), "state": list(steps),
                              "children": [k.text for k in kids], "finished": done.tolist(),
                              "q_pi": [q.tolist() for q in q_pi], "provers": {}}
    for j, spec in enumerate(cfg.provers):
        mu = parse_prover(spec, LABEL_PROVERS)
        if mu.from_base_values:
            halves = (pass_at_k(m, c_a, mu.k), pass_at_k(m, c_b, mu.k))
        else:
            halves = tuple(c / m for c in values(engines[spec], 1 + j))
        q_mu = [np.where(done, outcome, q) for q in halves]
        dist, align = sampled_complementarity(*(q[None] for q in (*q_mu, *q_pi)))
        record["provers"][spec] = {"q_mu": [q.tolist() for q in q_mu], "distinguishability": float(dist[0]),
                                   "alignment": float(align[0])}
    return record


def _mean_se(x: np.ndarray) -> tuple[float | None, float | None]:
    return (float(x.mean()) if x.size else None), (float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else None)


def summarize(records: Sequence[dict], provers: Sequence[str]) -> list[dict]:
    """Per prover: the mean over states of each term and its standard error (std / √S, ddof 1), and its
    difference to the first prover's term with the paired standard error (the same states and children serve
    every prover, so differences are far more precise than the terms): ``{term}_vs_first``, ``…_se``."""
    rows = []
    for spec in provers:
        row: dict[str, Any] = {"prover": spec, "states": len(records)}
        for term in ("distinguishability", "alignment"):
            x = np.array([r["provers"][spec][term] for r in records])
            first = np.array([r["provers"][provers[0]][term] for r in records])
            row[term], row[f"{term}_se"] = _mean_se(x)
            row[f"{term}_vs_first"], row[f"{term}_vs_first_se"] = _mean_se(x - first)
        rows.append(row)
    return rows


def _demean(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """x (N,) minus the mean of its group (groups (N,) ints ≥ 0)."""
    return x - (np.bincount(groups, weights=x) / np.maximum(np.bincount(groups), 1))[groups]


def fit_to_rollouts(learned: np.ndarray, half_a: np.ndarray, half_b: np.ndarray, states: np.ndarray,
                    off_track: np.ndarray | None = None) -> dict:
    """How well a learned Q̂^μ (a Q^μ model, or Bo-K from a PQV) agrees with rollout values at the same children.

    learned, half_a, half_b: (N,) the learned Q̂^μ(s, a) of N children and the two independent halves' rollout
    estimates (``state_terms``); states: (N,) ints, the state of each child; off_track: (N,) 1 where the child
    cannot succeed (an exact checker says so), or None. With Q̄ = (half_a + half_b) / 2 and x̃ = x minus its
    state's mean (the advantage up to V^μ(s): all that ranks π's next steps at s):

    - ``corr`` = corr(learned, Q̄) over children; ``within_corr`` = corr(learned~, Q̄~);
    - ``within_ceiling`` = √(2r / (1 + r)), r = corr(half_a~, half_b~): the within_corr a perfect model would
      reach against the noisy Q̄ (the Spearman-Brown reliability of two halves; 0 when r ≤ 0);
    - ``spread`` / ``spread_rollout`` = mean over states of the children's variance (ddof 1) of learned and of Q̄
      (the latter includes rollout noise); ``mean_q`` / ``mean_q_rollout`` = their means;
    - with off_track: ``off_track_auc`` / ``off_track_auc_rollout`` = P(an off-track child scores below an
      on-track child of the same state), the mean over the ``off_track_states`` states with both
      (``verifier.within_problem_auc``).
    """
    from pavkit.llm.verifier import within_problem_auc

    learned, a, b = (np.asarray(x, dtype=float) for x in (learned, half_a, half_b))
    states = np.unique(np.asarray(states), return_inverse=True)[1]
    mc = (a + b) / 2
    r = float(np.corrcoef(_demean(a, states), _demean(b, states))[0, 1])

    def spread(x: np.ndarray) -> float:
        return float(np.mean([x[states == i].var(ddof=1) for i in np.unique(states) if (states == i).sum() > 1]))

    out = {"children": int(learned.size), "corr": float(np.corrcoef(learned, mc)[0, 1]),
           "within_corr": float(np.corrcoef(_demean(learned, states), _demean(mc, states))[0, 1]),
           "within_ceiling": float(np.sqrt(2 * r / (1 + r))) if r > 0 else 0.0,
           "spread": spread(learned), "spread_rollout": spread(mc),
           "mean_q": float(learned.mean()), "mean_q_rollout": float(mc.mean())}
    if off_track is not None:
        by_learned = within_problem_auc(-learned, off_track, states)
        out.update(off_track_auc=by_learned["auc"], off_track_states=by_learned["problems"],
                   off_track_auc_rollout=within_problem_auc(-mc, off_track, states)["auc"])
    return out
