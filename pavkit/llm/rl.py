r"""Online RL on an LLM with dense PAV rewards (paper §5, PAPER.md §6); mirrors ``pavkit.toy.rl`` section by section.

Each iteration:

1. sample ``problems_per_iter`` training problems (a pure function of (seed, iteration)) and ``group`` responses
   to each from the current π_θ at temperature 1 (``HFEngine.complete``, which keeps the sampled token ids);
2. split every response into steps (the delimiter) and give every token the step it belongs to
   (``response_steps``); outcome r(y) by Rex (strict: a final "The answer is" line is required);
   V^μ at every prefix s_1 … s_{H+1} from the fixed verifiers: prover "bok:K" → 1 − (1 − V̂^π)^K with V̂^π the PQV
   (App. F.4), "model:DIR" → a trained Q^μ verifier of another policy (e.g. a weaker checkpoint);
3. per-step weight  w_h = Q^π(s_h, a_h) + α·A^μ(s_h, a_h) − b  (Eq. 5), Q^π := r(y), the sampled return (the
   textbook REINFORCE return; PAPER.md §10.4), b the leave-one-out mean of r over the problem's group
   ("loo"), or the paper's token-level value baseline ("value": a value model initialised from π_init,
   trained with squared loss to predict each token's weight Q^π + α·A^μ, used only as the baseline);
   α = 0 is outcome-only RL (the paper's ORM-RL with the true outcome reward);
4. every token of step h gets w_h (``losses.token_weights``); loss = REINFORCE + β·KL(π_θ ‖ π_init) (k3 per
   token); one Adam step with linear warm-up then cosine decay, gradients clipped.

Every ``eval_every`` iterations the accuracy of π on held-out problems is measured from ``eval_samples``
temperature-1 samples per problem, drawn with seeds of their own, so a resumed run is record-for-record identical
to an uninterrupted one. The last iteration draws ``final_samples`` per problem and records Pass@N and the
per-problem success counts (Fig. 8). ``iters = 0`` only evaluates the initial policy that way (SFT or RFT rows of
Fig. 7(a) and 8).

``rft`` is the paper's RL initialisation: rejection fine-tuning of the base on its own correct samples.
Library code only: ``pavkit.cli`` loads problems and owns the run directory.
"""

from __future__ import annotations

import bisect
import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pavkit.distributed import SINGLE, Process, all_reduce_gradients, all_sum, default_device, shard
from pavkit.estimators import effective_reward, mean_pass_at_n
from pavkit.llm import sampling
from pavkit.llm.data import Problem
from pavkit.llm.steps import DEFAULT_DELIMITER, split_steps
from pavkit.losses import kl_penalty, leave_one_out_baseline, reinforce_loss, rewards_to_go, token_weights
from pavkit.options import option
from pavkit.provers import RL_PROVERS, parse_prover
from pavkit.runs import derive_seed, warmup_cosine

BASELINES = ("loo", "loo-effective", "value", "none")
TERMINAL_VALUES = ("verifier", "outcome")
SHUFFLES = ("none", "response", "group")  # --shuffle-advantages: controls that permute the prover's A^μ


# ---------------------------------------------------------------------------------------------------------------
# Configuration.


@dataclass(frozen=True)
class RLConfig(sampling.SamplingConfig):
    """Everything an LLM RL run's records depend on (written as the run's config.json).

    Attributes:
        policy: folder of the initial policy π_init (e.g. the RFT model); also the KL reference.
        verifier: the PQV (Q̂^π model: a `pavkit llm train-verifier` run or model folder), or "organism-oracle"
            (``verifier.ORACLE``);
            "" when α = 0 or the prover is not bok:K (only Bo-K reads the PQV).
        prover: "bok:K" (V^μ = 1 − (1 − V̂^π)^K from the PQV), "model:DIR" (a Q^μ verifier) or the control
            "const:C" (A^μ = C at every step).
        alpha: α of Q^π + α·A^μ (paper: 5 for 2B, 3 for 9B); 0 is outcome-only RL.
        iters: RL iterations; 0 only evaluates the initial policy.
        train_problems, eval_problems: problem specs (as `--problems`), recorded for identity; the CLI loads them.
        problems_per_iter, group: problems per iteration and responses per problem (batch = their product;
            paper: batch 32). A group of >= 2 allows the leave-one-out baseline.
        lr, warmup: Adam learning rate, linear warm-up over this fraction of iters then cosine decay to 0
            (paper: 1e-7 for Gemma, 10 % warm-up).
        kl_coef: β of the KL penalty to π_init (paper: 0.001).
        baseline: "loo" (leave-one-out mean outcome of the group), "loo-effective" (leave-one-out group mean of
            each response's mean step weight r + α·A^μ: it centres the α·A^μ term too, as the paper's value
            baseline does, without a model), "value" (a learned token-level value model, the paper's; Adam at
            ``lr``, constant) or "none".
        rewards_to_go: weight step h by Σ_{h'≥h} α·A^μ instead of α·A^μ(s_h, a_h) (PAPER.md §10.5; off = Eq. 5).
        terminal_value: V^μ after a response's last step: "verifier" (the verifier's value of the whole response,
            the paper's A^μ from Q̂ on consecutive prefixes) or "outcome" (the graded r(y): exact, since a
            finished response is worth its reward under any prover; ``terminal_outcome_values``).
        shuffle_advantages: a control, not a method (``shuffled_values``): "response" permutes A^μ among the
            steps of each response (keeps its Σ_h A^μ, loses which step), "group" among all steps of the problem's
            group (keeps the problem's values, loses which response and step); "none" is Eq. 5.
        max_grad_norm: gradient clipping.
        eval_every, eval_samples: accuracy every that many iterations from that many samples per eval problem.
        final_samples, pass_ns: samples per eval problem at the last iteration, and the N of Pass@N (<= it).
        microbatch: sequences per forward/backward (gradients accumulate; the update is the same).
        symbolic: grade with math-verify when plain comparison does not decide (off for integer answers).
        seed, delimiter, prompt_format, temperature, max_new_tokens, batch_size, strict: sampling and grading
            (:class:`~pavkit.llm.sampling.SamplingConfig`; seed also draws the problems; paper: 512 new tokens).
    """

    policy: str
    verifier: str = ""
    prover: str = option(
        "bok:4",
        "μ: bok:K (V^μ = 1-(1-V̂^π)^K from the PQV), model:DIR (a --kind qmu verifier, e.g. trained on a weaker "
        "checkpoint's rollouts). Train DIR on labels at this --policy's own prefixes (`pavkit llm label --model "
        "POLICY --prover model:CKPT`): on the organism, Q^μ models labelled at another policy's prefixes were "
        "exploited until the policy collapsed (README, RL section). const:C is a control, not a prover: A^μ = C at "
        "every step.")
    alpha: float = option(3.0, 'α of the step weight Q^π + α·A^μ (paper: 3-5); 0 is outcome-only RL.', min=0)
    iters: int = option(
        200,
        "RL iterations; 0 only evaluates --policy (Pass@N with --final-samples: the SFT/RFT rows).", min=0)
    train_problems: str = option(
        "organism:train:1:20000",
        "Training problems: gsm8k, a problems JSONL file, or organism:SPLIT:SEED:COUNT.")
    eval_problems: str = option("organism:test:0:100", 'Held-out problems for accuracy and Pass@N (same forms).')
    problems_per_iter: int = option(16, 'Problems per iteration.', min=1)
    group: int = option(
        4,
        "Responses per problem (batch = problems × group); >= 2 for the leave-one-out baseline.", min=1)
    lr: float = option(1e-4, 'Adam peak learning rate (warm-up then cosine decay to 0).', min=0, min_open=True)
    warmup: float = option(0.1, 'Fraction of iterations with linear warm-up.', min=0, max=1, max_open=True)
    kl_coef: float = option(0.001, 'β of the KL penalty to the initial policy (paper: 0.001).', min=0)
    baseline: str = option(
        "loo",
        "loo: subtract the mean outcome of the other responses to the same problem; loo-effective: subtract the other "
        "responses' mean step weight r + α·A^μ (centres the PAV term too); value: the paper's learned token-level "
        "value model (initialised from --policy, squared loss, Adam at --lr); none: no baseline.",
        choices=BASELINES)
    rewards_to_go: bool = option(
        False,
        "Weight step h by Σ_{h'≥h} α·A^μ (rewards-to-go) instead of Eq. 5's α·A^μ(s_h, a_h).")
    terminal_value: str = option(
        "verifier",
        "V^μ after a response's last step: verifier (the verifier's value of the whole response, the paper's A^μ "
        "from Q on consecutive prefixes) or outcome (its graded reward r(y), exact for a finished response under "
        "any prover: a wrong response's advantages then sum to −V^μ(problem) ≤ 0, never to a gain).",
        choices=TERMINAL_VALUES)
    shuffle_advantages: str = option(
        "none",
        "A control, not a method: permute the prover's advantages A^μ among the steps of each response (response: "
        "keeps each response's sum, loses which step) or among all steps of a problem's group (group: keeps the "
        "problem's values, loses which response and step) before weighting; none is Eq. 5. Tells whether a gain "
        "comes from where A^μ falls or only from the values it takes.",
        choices=SHUFFLES)
    max_grad_norm: float = 1.0
    eval_every: int = option(10, 'Iterations between accuracy evaluations (and checkpoints).', min=0)
    eval_samples: int = option(2, 'Samples per held-out problem at each evaluation.', min=1)
    final_samples: int = option(
        32,
        "Samples per held-out problem at the last iteration (final accuracy, Pass@N, counts for Fig. 8).", min=1)
    pass_ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    microbatch: int = option(
        64,
        "Responses per forward/backward pass (gradients accumulate; lower it to save memory).", min=1)
    symbolic: bool = False
    # the organism's answers are short and always marked: larger batches, strict grading (paper: 512 tokens)
    max_new_tokens: int = sampling.default("max_new_tokens", 160)
    batch_size: int = sampling.default("batch_size", 128)
    strict: bool = sampling.default("strict", True)
    engine: str = sampling.engine_field("What samples the policy, in training and evaluation (vllm: the policy's "
                                        "weights are loaded into a colocated vLLM engine before each sampling)")
    verifier_engine: str = sampling.verifier_engine_field()
    vllm_options: dict = field(default_factory=dict)  # vllm.LLM keyword arguments of both vLLM engines

    def __post_init__(self) -> None:
        super().__post_init__()
        sampling.check_vllm_options(self.vllm_options, engine=self.engine, verifier_engine=self.verifier_engine)
        mu = parse_prover(self.prover, RL_PROVERS)
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.alpha > 0 and mu.kind == "bok" and not self.verifier:  # model: and const: provers never read it
            raise ValueError(f"alpha > 0 with prover {mu.spec} needs a verifier (the PQV, or organism-oracle)")
        for name in ("problems_per_iter", "group", "eval_samples", "final_samples", "microbatch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.iters < 0 or self.eval_every < 0:
            raise ValueError("iters and eval_every must be >= 0")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        if self.terminal_value not in TERMINAL_VALUES:
            raise ValueError(f"terminal_value must be one of {TERMINAL_VALUES}, got {self.terminal_value!r}")
        if self.shuffle_advantages not in SHUFFLES:
            raise ValueError(f"shuffle_advantages must be one of {SHUFFLES}, got {self.shuffle_advantages!r}")
        if not 0 <= self.warmup < 1 or self.lr <= 0 or self.kl_coef < 0:
            raise ValueError("need 0 <= warmup < 1, lr > 0 and kl_coef >= 0")
        if not self.pass_ns or max(self.pass_ns) > self.final_samples or min(self.pass_ns) < 1:
            raise ValueError(f"pass_ns must lie in [1, final_samples={self.final_samples}], got {self.pass_ns}")

    def to_dict(self) -> dict:
        return asdict(self)


# RLConfig fields added after runs were first written, with the value every older run had (runs.config_difference)
RL_ADDED_FIELDS = {"engine": "hf", "vllm_options": {}, "verifier_engine": "hf", "terminal_value": "verifier",
                   "shuffle_advantages": "none"}
# Fields a resume does not compare: the verifier engines give the same values to ~1e-8.
RL_NOT_COMPARED = frozenset({"verifier_engine"})


# ---------------------------------------------------------------------------------------------------------------
# State: policy, frozen reference, optimiser and schedule.


@dataclass
class RLState:
    """The mutable part of a run (what a checkpoint saves) and the frozen reference π_init."""

    policy: Any
    reference: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    iteration: int = 0
    value: Any = None  # baseline "value": AutoModelForTokenClassification(num_labels=1) from π_init
    value_optimizer: Any = None
    engine: Any = None  # engine "vllm": the colocated VLLMEngine that samples the policy
    engine_weights: int = -1  # the iteration whose policy weights the engine holds (-1: the folder's)
    process: Process = SINGLE  # under torchrun: this process (pavkit.distributed); it updates on its share of rows


def _lr_lambda(cfg: RLConfig) -> Callable[[int], float]:
    warm = max(1, round(cfg.warmup * cfg.iters))
    return lambda step: warmup_cosine(step, warm, cfg.iters)


def init_state(cfg: RLConfig, device: str | None = None, process: Process = SINGLE) -> RLState:
    """Load π_init from cfg.policy (local files only) twice: the trained policy and the frozen KL reference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = default_device(device)
    tokenizer = AutoTokenizer.from_pretrained(cfg.policy, local_files_only=True)
    policy = AutoModelForCausalLM.from_pretrained(cfg.policy, local_files_only=True, dtype=torch.float32).to(device)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    state = RLState(policy, reference, tokenizer, optimizer, scheduler, process=process)
    if cfg.engine == "vllm":
        from pavkit.llm.engines import VLLMEngine

        state.engine = VLLMEngine.from_path(cfg.policy, **{"dtype": "float32", **cfg.vllm_options},
                                            **cfg.engine_options())
    if cfg.baseline == "value":
        from pavkit.llm.verifier import init_verifier

        state.value, _ = init_verifier(cfg.policy, device)  # eval mode: no dropout before the head
        with torch.no_grad():  # a zero head: the baseline starts at 0 (plain REINFORCE) and is a pure function
            state.value.score.weight.zero_()  # of the config, not of torch's global RNG
            if state.value.score.bias is not None:
                state.value.score.bias.zero_()
        state.value_optimizer = torch.optim.Adam(state.value.parameters(), lr=cfg.lr)
    return state


def checkpoint(state: RLState) -> dict:
    """A deep copy of what a resume needs (state_dict tensors alias the live weights)."""
    ckpt = {"iteration": state.iteration, "policy": state.policy.state_dict(),
            "optimizer": state.optimizer.state_dict(), "scheduler": state.scheduler.state_dict()}
    if state.value is not None:
        ckpt.update(value=state.value.state_dict(), value_optimizer=state.value_optimizer.state_dict())
    return copy.deepcopy(ckpt)


def restore(cfg: RLConfig, ckpt: dict, device: str | None = None, process: Process = SINGLE) -> RLState:
    state = init_state(cfg, device, process)
    state.policy.load_state_dict(ckpt["policy"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    if state.value is not None:
        state.value.load_state_dict(ckpt["value"])
        state.value_optimizer.load_state_dict(ckpt["value_optimizer"])
    state.iteration = int(ckpt["iteration"])
    return state


# ---------------------------------------------------------------------------------------------------------------
# Verifiers: V^μ at every prefix.


def load_prover_values(cfg: RLConfig, device: str | None = None) -> Callable | None:
    """``f(prompts, steps) -> list of (H_b+1,) V^μ arrays`` from the fixed verifiers; None when α = 0."""
    if cfg.alpha == 0:
        return None
    return prover_values(cfg.verifier, cfg.prover, cfg.delimiter, device, engine=cfg.verifier_engine,
                         vllm_options=cfg.vllm_options)


def prover_values(verifier: str, prover: str, delimiter: str = DEFAULT_DELIMITER, device: str | None = None,
                  engine: str = "hf", vllm_options: dict | None = None) -> Callable:
    """``f(prompts, steps) -> list of (H_b+1,) V^μ arrays``: ``bok:K`` from the PQV ``verifier``
    (1 − (1 − V̂^π)^K), ``model:DIR`` from that Q^μ model (``verifier`` unused), or the control ``const:C``:
    V^μ(s_h) = C·(h − 1), so A^μ = C at every step (no model); scored by ``engine``
    (``pavkit.llm.verifier.load_verifier``; ValueError for what vLLM cannot serve)."""
    from pavkit.llm.verifier import load_verifier

    mu = parse_prover(prover, RL_PROVERS)
    if mu.kind == "const":
        return lambda prompts, steps: [mu.constant * np.arange(len(s) + 1, dtype=float) for s in steps]
    kw = {"delimiter": delimiter, "device": device, "engine": engine, "vllm_options": vllm_options}
    if mu.kind == "model":
        return load_verifier(mu.path, **kw).prefix_values
    pqv = load_verifier(verifier, **kw)
    return lambda prompts, steps: [mu.from_base(v) for v in pqv.prefix_values(prompts, steps)]


# ---------------------------------------------------------------------------------------------------------------
# Responses → steps → token weights.


def response_steps(token_texts: Sequence[str], delimiter: str = DEFAULT_DELIMITER) -> tuple[list[str], np.ndarray]:
    """The canonical steps of a response and the step each of its tokens belongs to.

    The response text is ``"".join(token_texts)``; its steps are ``split_steps(text)``. A token belongs to the
    piece (text between delimiters) holding its last character, so a delimiter belongs to the step it ends; a
    token with no characters (EOS) belongs to the piece before it. Pieces that hold no step (blank lines) give
    their tokens to the previous step (the next one at the start). A response with no step at all maps every
    token to 0, a pseudo-step that carries the outcome only.

    Returns:
        steps (H,) and token_steps (T,) int in [0, max(H, 1)).
    """
    lengths = np.array([len(t) for t in token_texts], dtype=int)
    text = "".join(token_texts)
    ends, pos = [], text.find(delimiter)
    while pos >= 0:
        ends.append(pos + len(delimiter))
        pos = text.find(delimiter, pos + len(delimiter))
    last_char = np.cumsum(lengths) - 1  # a 0-length token gets the index of the character before it
    pieces = text.split(delimiter)
    canonical, index = [], 0
    for piece in pieces:  # step index of each piece, -1 for blank ones
        canonical.append(index if piece.rstrip() else -1)
        index += bool(piece.rstrip())
    filled, prev = [], -1
    for c in canonical:
        prev = c if c >= 0 else prev
        filled.append(prev)
    first = next((c for c in canonical if c >= 0), 0)
    piece_step = np.array([c if c >= 0 else first for c in filled], dtype=int)
    token_piece = np.array([bisect.bisect_right(ends, e) for e in last_char], dtype=int)
    return split_steps(text, delimiter), piece_step[token_piece] if len(token_piece) else np.zeros(0, dtype=int)


def step_weights(outcomes: np.ndarray, v_mu: Sequence[np.ndarray] | None, num_steps: Sequence[int], alpha: float,
                 baseline: np.ndarray, to_go: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Per-step weights w_h = r − b + α·A^μ(s_h, a_h) (Eq. 5 with Q^π := r(y)), padded to the longest response.

    Args:
        outcomes: (N,) r(y) ∈ {0, 1}.
        v_mu: N arrays (H_b+1,) of V^μ on s_1 … s_{H_b+1}, or None (α = 0).
        num_steps: (N,) H_b; a response with no step gets one pseudo-step with A^μ = 0.
        baseline: (N,) b, constant over the response's steps.
        to_go: use Σ_{h'≥h} α·A^μ (rewards-to-go) instead of the immediate α·A^μ.
    Returns:
        weights (N, H) and mask (N, H) bool, with H = max(max(num_steps), 1).
    """
    n = len(outcomes)
    h_max = max(max(num_steps, default=1), 1)
    v_pi = np.repeat(np.asarray(outcomes, dtype=float)[:, None], h_max + 1, axis=1)
    v = np.zeros((n, h_max + 1))
    for b in range(n):
        if v_mu is not None and len(v_mu[b]):
            row = np.asarray(v_mu[b], dtype=float)
            v[b, :len(row)], v[b, len(row):] = row, row[-1]  # padding repeats the last value: A^μ = 0 there
    mask = np.arange(h_max)[None, :] < np.maximum(np.asarray(num_steps), 1)[:, None]
    if to_go:
        w = effective_reward(v_pi, v, 0.0, mask) + alpha * rewards_to_go(np.diff(v, axis=1), mask)
    else:
        w = effective_reward(v_pi, v, alpha, mask)
    return np.where(mask, w - np.asarray(baseline, dtype=float)[:, None], 0.0), mask


def terminal_outcome_values(v_mu: Sequence[np.ndarray], outcomes: np.ndarray) -> list[np.ndarray]:
    """V^μ on s_1 … s_{H_b+1} with the value after the last step replaced by the outcome r(y) (``--terminal-value
    outcome``): a finished response is worth its reward under any prover, so this value needs no estimate. The
    advantages of a response then telescope to Σ_h A^μ = r(y) − V^μ(s_1), and a verifier that overrates wrong
    final answers cannot make a wrong response's steps sum to a gain. A response with no step (H_b = 0) keeps its
    single value (its pseudo-step has A^μ = 0).

    Args:
        v_mu: N arrays (H_b+1,); outcomes: (N,) r(y) ∈ {0, 1}.
    """
    return [np.append(v[:-1], r) if len(v) >= 2 else np.asarray(v, dtype=float)
            for v, r in zip(v_mu, np.asarray(outcomes, dtype=float), strict=True)]


def shuffled_values(v_mu: Sequence[np.ndarray], groups: np.ndarray, within: str,
                    rng: np.random.Generator) -> list[np.ndarray]:
    """The control ``--shuffle-advantages``: V^μ arrays whose advantages A^μ_h = V^μ(s_{h+1}) − V^μ(s_h) are the
    same values permuted among the steps of each response (``within="response"``: every Σ_h A^μ is kept) or
    among all steps of each group (``"group"``: each problem keeps its multiset of A^μ, spread over its responses
    in their step counts), each array rebuilt from its own V^μ(s_1) by a cumulative sum; ``"none"``: unchanged.

    Args:
        v_mu: N arrays (H_b+1,); groups: (N,) the problem of each response; rng: draws the permutations.
    """
    if within == "none":
        return list(v_mu)
    v_mu = [np.asarray(v, dtype=float) for v in v_mu]
    adv = [np.diff(v) for v in v_mu]
    units = [[b] for b in range(len(v_mu))] if within == "response" else \
        [np.flatnonzero(groups == g).tolist() for g in np.unique(groups)]
    for members in units:
        pooled = rng.permutation(np.concatenate([adv[b] for b in members]))
        cuts = np.cumsum([len(adv[b]) for b in members])[:-1]
        for b, a in zip(members, np.split(pooled, cuts), strict=True):
            adv[b] = a
    return [np.concatenate([v[:1], v[0] + np.cumsum(a)]) if len(v) else v for v, a in zip(v_mu, adv, strict=True)]


def baselined_step_weights(outcomes: np.ndarray, v_mu: Sequence[np.ndarray] | None, num_steps: Sequence[int],
                           alpha: float, groups: np.ndarray, baseline: str,
                           to_go: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``step_weights`` minus the group baseline b_i of ``baseline`` (one of BASELINES):

    - "loo": b_i = mean outcome of the other responses of i's group;
    - "loo-effective": b_i = mean over the other responses j of i's group of their mean step weight
      r_j + α·mean_h A^μ_j (it centres the α·A^μ term as well, which under a weak π is mostly negative);
    - "value", "none": b_i = 0 ("value" is subtracted per token in `update`: these weights are its targets).

    Each b_i skips response i, so the policy gradient stays unbiased. Shapes as ``step_weights``; groups (N,).
    """
    base = leave_one_out_baseline(outcomes, groups) if baseline == "loo" else np.zeros(len(outcomes))
    weights, mask = step_weights(outcomes, v_mu, num_steps, alpha, base, to_go)
    if baseline == "loo-effective":
        per_response = (weights * mask).sum(axis=1) / mask.sum(axis=1)
        weights = np.where(mask, weights - leave_one_out_baseline(per_response, groups)[:, None], 0.0)
    return weights, mask


# ---------------------------------------------------------------------------------------------------------------
# Sampling and log-probabilities.


# The helpers below take an RLConfig or an RFTConfig: they read only the sampling and grading fields (those of
# SamplingConfig, and symbolic).


def sampler(model: Any, tokenizer: Any, cfg: RLConfig | RFTConfig):
    """An ``HFEngine`` over ``model`` with the config's sampling settings."""
    from pavkit.llm.engines import HFEngine

    return HFEngine(model, tokenizer, **cfg.engine_options())


def policy_sampler(state: RLState, cfg: RLConfig):
    """The engine that samples the current policy: an HFEngine over it, or (engine "vllm") the colocated vLLM
    engine, given the policy's weights first when they changed since it last sampled (TRL's colocate mode:
    ``load_weights`` in vLLM's process, then the prefix cache dropped, since it holds keys and values of the
    old weights)."""
    if state.engine is None:
        return sampler(state.policy, state.tokenizer, cfg)
    if state.engine_weights != state.iteration:
        state.engine.load_weights(state.policy.state_dict().items())
        state.engine_weights = state.iteration
    return state.engine


def prompts_of(problems: Sequence[Problem], tokenizer: Any, cfg: RLConfig | RFTConfig) -> list[str]:
    from pavkit.llm.label import build_prompt

    return [build_prompt(p.problem, tokenizer, prompt_format=cfg.prompt_format, delimiter=cfg.delimiter)
            for p in problems]


def grade(texts: Sequence[str], golds: Sequence[str], cfg: RLConfig | RFTConfig) -> np.ndarray:
    """(N,) bool outcomes under Rex."""
    from pavkit.llm.grading import grade_batch

    return grade_batch(list(texts), list(golds), strict=cfg.strict, symbolic=cfg.symbolic)[0]


LOGPROB_ROWS = 16  # responses per forward of `token_logprobs`: sorted by length, so a batch pads little


def _rows(model: Any, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]], pad_id: int):
    """Right-padded ``prompt + response`` rows on the model's device: (ids, attention mask, response mask)."""
    import torch

    rows = [list(p) + list(r) for p, r in zip(prompt_ids, response_ids, strict=True)]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(rows), width), dtype=torch.long)
    resp = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (row, p) in enumerate(zip(rows, prompt_ids, strict=True)):
        ids[i, :len(row)] = torch.tensor(row)
        attn[i, :len(row)] = 1
        resp[i, len(p):len(row)] = True
    device = next(model.parameters()).device
    return ids.to(device), attn.to(device), resp.to(device)


def token_logprobs(model: Any, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]],
                   pad_id: int):
    """log π(y_t | x, y_<t) of every response token: (logp (N, R) tensor, response mask (N, R) bool tensor).

    Position t of row b is response token t (R = the longest response). Each distinct prompt runs forward once
    and serves all its responses (``pavkit.llm.prefix``: a group shares its prompt, on the organism half the
    tokens), which run in batches of ``LOGPROB_ROWS``. Gradients flow through both passes when grad is enabled.
    """
    import torch

    from pavkit.llm.prefix import distinct_prompts, prompt_cache, tail_batches

    prompts, which = distinct_prompts(prompt_ids)
    cache = prompt_cache(model, prompts, pad_id)
    device = cache.mask.device
    n, width = len(response_ids), max(1, max(map(len, response_ids)))
    logp = torch.zeros((n, width), device=device)
    resp = torch.zeros((n, width), dtype=torch.bool, device=device)
    # input t is the token before response token t: the prompt's last token, then the response but its last
    tails = [[prompts[w][-1], *list(r)[:-1]] for w, r in zip(which, response_ids, strict=True)]
    for rows, ids, _, kwargs in tail_batches(cache, which, tails, pad_id, LOGPROB_ROWS):
        target = torch.zeros_like(ids)
        for k, i in enumerate(rows):
            target[k, :len(response_ids[i])] = torch.as_tensor(list(response_ids[i]), dtype=torch.long)
            resp[i, :len(response_ids[i])] = True
        logits = model(input_ids=ids, **kwargs).logits.float()
        picked = torch.log_softmax(logits, -1).gather(-1, target[..., None])[..., 0]
        logp[torch.tensor(rows, device=device), :ids.shape[1]] = picked
    return logp * resp, resp  # 0 past the end of a response


def token_values(value: Any, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]],
                 pad_id: int):
    """The value model's prediction for every response token, read at the state before the token: (N, R) tensor.

    Position t holds the head's output at the token before response token t (the context x, y_<t that token t is
    chosen in), aligned with :func:`token_logprobs`; 0 past the end of a response.
    """
    import torch

    ids, attn, _ = _rows(value, prompt_ids, response_ids, pad_id)
    out = value(input_ids=ids, attention_mask=attn).logits[..., 0].float()
    width = max(1, max(map(len, response_ids)))
    at = torch.tensor([[len(p) - 1 + min(t, max(len(r) - 1, 0)) for t in range(width)]
                       for p, r in zip(prompt_ids, response_ids, strict=True)], device=out.device)
    inside = torch.tensor([[t < len(r) for t in range(width)] for r in response_ids], device=out.device)
    return out.gather(1, at) * inside


# ---------------------------------------------------------------------------------------------------------------
# One iteration.


@dataclass
class Batch:
    """One iteration's samples, scored. N = problems × group responses, problem-major; H the most steps.

    prompt_ids: N token-id lists; token_ids: N sampled responses (ids); token_steps: N arrays, the step of each
    sampled token; outcomes (N,) r(y); weights, mask (N, H) step weights (baseline "loo" already subtracted);
    v_mu: N arrays (H_b+1,) of V^μ, or None when α = 0; num_steps: N.
    """

    prompt_ids: list
    token_ids: list
    token_steps: list
    outcomes: np.ndarray
    weights: np.ndarray
    mask: np.ndarray
    v_mu: list | None
    num_steps: list


def sample_batch(state: RLState, cfg: RLConfig, problems: Sequence[Problem], prover_values: Callable | None) -> Batch:
    """Steps 1–3 of an iteration: choose problems, sample responses, grade them, split steps, weight the steps."""
    tok, it = state.tokenizer, state.iteration
    rng = np.random.default_rng(derive_seed(cfg.seed, it, 0, bits=32))
    chosen = [problems[i] for i in rng.choice(len(problems), size=min(cfg.problems_per_iter, len(problems)),
                                              replace=False)]
    prompts = prompts_of(chosen, tok, cfg)
    conts = policy_sampler(state, cfg).complete(prompts, cfg.group, derive_seed(cfg.seed, it, 0, bits=32))
    flat = [c for row in conts for c in row]  # problem-major: N = P·G
    groups = np.repeat(np.arange(len(chosen)), cfg.group)
    outcomes = grade([c.text for c in flat], [chosen[g].answer for g in groups], cfg).astype(float)
    # Steps and the step of every sampled token (texts of single tokens, special tokens dropped).
    parsed = [response_steps(tok.batch_decode([[t] for t in c.token_ids], skip_special_tokens=True), cfg.delimiter)
              for c in flat]
    steps = [s for s, _ in parsed]
    v_mu = prover_values([prompts[g] for g in groups], steps) if prover_values is not None and cfg.alpha else None
    if v_mu is not None and cfg.terminal_value == "outcome":
        v_mu = terminal_outcome_values(v_mu, outcomes)
    if v_mu is not None and cfg.shuffle_advantages != "none":  # the control: same values, other steps
        v_mu = shuffled_values(v_mu, groups, cfg.shuffle_advantages,
                               np.random.default_rng(derive_seed(cfg.seed, it, 3, bits=32)))
    weights, mask = baselined_step_weights(outcomes, v_mu, [len(s) for s in steps], cfg.alpha, groups, cfg.baseline,
                                           cfg.rewards_to_go)
    prompt_ids = tok(prompts, add_special_tokens=True)["input_ids"]
    return Batch([prompt_ids[g] for g in groups], [c.token_ids for c in flat], [t for _, t in parsed], outcomes,
                 weights, mask, v_mu, [len(s) for s in steps])


def update(state: RLState, cfg: RLConfig, batch: Batch) -> dict:
    """Step 4: REINFORCE (+ value model) + β·KL on the sampled tokens, in micro-batches whose gradients add up to
    the full-batch gradient; one optimiser step. Returns the losses and the number of response tokens.

    Under torchrun every process has sampled the same batch (same policy, same seeds) and runs every world-th
    row of it; each micro-batch's loss keeps its share of the whole batch (len / N), so the gradients summed over
    the processes (``distributed.all_reduce_gradients``) are the one-process gradient, and so is the step. The
    value model's token-mean loss is taken per micro-batch, whose rows differ under sharding: with
    ``baseline="value"`` the update is the same in expectation, not in numbers."""
    import torch

    pad = int(state.tokenizer.pad_token_id or 0)
    state.policy.train()
    state.optimizer.zero_grad(set_to_none=True)
    if state.value is not None:
        state.value_optimizer.zero_grad(set_to_none=True)
    n, out = len(batch.token_ids), {"loss": 0.0, "kl": 0.0, "value_loss": 0.0, "response_tokens": 0}
    mine = shard(np.arange(n), state.process).tolist()
    for start in range(0, len(mine), cfg.microbatch):
        idx = mine[start:start + cfg.microbatch]
        p_ids, r_ids = [batch.prompt_ids[i] for i in idx], [batch.token_ids[i] for i in idx]
        logp, resp = token_logprobs(state.policy, p_ids, r_ids, pad)
        tsteps = np.full(tuple(logp.shape), -1)
        for row, i in enumerate(idx):
            tsteps[row, :len(r_ids[row])] = batch.token_steps[i]
        w_tok = token_weights(batch.weights[idx], tsteps)
        scale = len(idx) / n  # each micro-batch loss is a mean over its rows
        b_tok = None
        if state.value is not None:  # squared loss towards each token's weight; only its detached output is b
            pred = token_values(state.value, p_ids, r_ids, pad)
            target = torch.as_tensor(w_tok, dtype=pred.dtype, device=pred.device)
            v_loss = ((pred - target) ** 2 * resp).sum() / resp.sum().clamp(min=1) * scale
            v_loss.backward()
            out["value_loss"] += float(v_loss.detach())
            b_tok = pred.detach()
        loss = reinforce_loss(logp, w_tok, resp, baseline=b_tok) * scale
        if cfg.kl_coef:
            with torch.no_grad():
                ref_logp, _ = token_logprobs(state.reference, p_ids, r_ids, pad)
            kl = kl_penalty(logp, ref_logp, resp) * scale
            loss = loss + cfg.kl_coef * kl
            out["kl"] += float(kl.detach())
        loss.backward()
        out["loss"] += float(loss.detach())
        out["response_tokens"] += int(resp.sum())
    all_reduce_gradients(list(state.policy.parameters()), state.process)
    if state.value is not None:
        all_reduce_gradients(list(state.value.parameters()), state.process)
    out = dict(zip(out, all_sum(list(out.values()), state.process), strict=True))
    out["response_tokens"] = int(out["response_tokens"])
    torch.nn.utils.clip_grad_norm_(state.policy.parameters(), cfg.max_grad_norm)
    state.optimizer.step()
    state.scheduler.step()
    if state.value is not None:
        torch.nn.utils.clip_grad_norm_(state.value.parameters(), cfg.max_grad_norm)
        state.value_optimizer.step()
    else:
        del out["value_loss"]
    state.policy.eval()
    return out


def rl_iteration(state: RLState, cfg: RLConfig, problems: Sequence[Problem], prover_values: Callable | None) -> dict:
    """One REINFORCE update with per-step weights Q^π + α·A^μ − b; returns the iteration's record."""
    batch = sample_batch(state, cfg, problems, prover_values)
    losses = update(state, cfg, batch)
    state.iteration += 1
    adv = [np.abs(np.diff(v)) for v in batch.v_mu] if batch.v_mu is not None else []
    return {"iteration": state.iteration, **losses, "batch_accuracy": float(batch.outcomes.mean()),
            "mean_weight": float(batch.weights[batch.mask].mean()),
            "mean_abs_adv_mu": float(np.concatenate(adv).mean()) if any(len(a) for a in adv) else 0.0,
            "mean_steps": float(np.mean(batch.num_steps)), "lr": float(state.scheduler.get_last_lr()[0])}


# ---------------------------------------------------------------------------------------------------------------
# Evaluation.


def correct_counts(engine: Any, tokenizer: Any, problems: Sequence[Problem], samples: int, seed: int,
                   cfg: RLConfig) -> np.ndarray:
    """(P,) number of correct responses among ``samples`` temperature-``cfg.temperature`` samples per problem
    from ``engine`` (:func:`policy_sampler`)."""
    outs = engine.complete(prompts_of(problems, tokenizer, cfg), samples, seed)
    texts = [c.text for row in outs for c in row]
    golds = [p.answer for p in problems for _ in range(samples)]
    return grade(texts, golds, cfg).reshape(len(problems), samples).sum(axis=1)


def train(cfg: RLConfig, state: RLState, train_problems: Sequence[Problem], eval_problems: Sequence[Problem],
          prover_values: Callable | None) -> Iterator[dict]:
    """Run iterations state.iteration+1 … cfg.iters, yielding one record per iteration.

    Records carry "accuracy" on evaluation iterations (iteration 0, every ``eval_every``, the last). The last
    record (iteration cfg.iters, which is 0 for an evaluation-only run) uses ``final_samples`` per problem and
    adds "pass_at_n" ({"n", "values"}) and "correct_counts" (per eval problem, out of "eval_samples").
    """

    def evaluation(it: int) -> dict:
        final = it == cfg.iters
        k = cfg.final_samples if final else cfg.eval_samples
        seed = derive_seed(cfg.seed, it, 1, bits=32)
        if not state.process.main:  # the main process evaluates and writes; evaluation draws no training RNG
            return {}
        counts = correct_counts(policy_sampler(state, cfg), state.tokenizer, eval_problems, k, seed, cfg)
        out = {"accuracy": float(counts.sum() / (k * len(eval_problems))), "eval_samples": k}
        if final:
            values = mean_pass_at_n(counts, k, cfg.pass_ns).tolist()
            out["pass_at_n"] = {"n": list(cfg.pass_ns), "values": values}
            out["correct_counts"] = counts.tolist()
        return out

    if state.iteration == 0:
        t0 = time.perf_counter()
        yield {"iteration": 0, **evaluation(0), "seconds": time.perf_counter() - t0}
    while state.iteration < cfg.iters:
        t0 = time.perf_counter()
        record = rl_iteration(state, cfg, train_problems, prover_values)
        it = state.iteration
        if it == cfg.iters or (cfg.eval_every and it % cfg.eval_every == 0):
            record.update(evaluation(it))
        record["seconds"] = time.perf_counter() - t0
        yield record


def run_metrics(records: list[dict], wall_seconds: float, policy_dir: Any) -> dict:
    """metrics.json of a run from its records: final and initial accuracy, Pass@N of the last evaluation,
    seconds (summed over sessions), and where the final policy is."""
    evals = [r for r in records if "accuracy" in r]
    return {"final_accuracy": evals[-1]["accuracy"], "initial_accuracy": evals[0]["accuracy"],
            "iterations": records[-1]["iteration"], "pass_at_n": evals[-1].get("pass_at_n"),
            "seconds": round(sum(r.get("seconds", 0.0) for r in records), 3),
            "wall_seconds_this_session": round(wall_seconds, 3), "policy": str(policy_dir)}


# ---------------------------------------------------------------------------------------------------------------
# Rejection fine-tuning: the RL initialisation.


# RFTConfig fields added after runs were first written, with the value every older run had (runs.config_difference):
# RFT sampled at temperature 1 before it shared SamplingConfig.
RFT_ADDED_FIELDS = {"temperature": 1.0, "engine": "hf", "vllm_options": {}}


@dataclass(frozen=True)
class RFTConfig(sampling.SamplingConfig):
    """Rejection fine-tuning of π on its own correct samples (paper §5: RFT with the SFT hyper-parameters).

    Attributes:
        policy: the base (SFT) model folder.
        problems: problem spec the samples are drawn on (recorded; the CLI loads it).
        samples: samples per problem; the correct ones, de-duplicated per problem, are the data.
        epochs, batch, lr, warmup: AdamW over the kept responses, linear warm-up (fraction) then cosine to lr/10.
        symbolic: grade with math-verify when plain comparison does not decide.
        seed, delimiter, prompt_format, temperature, max_new_tokens, batch_size, strict: sampling and grading
            (:class:`~pavkit.llm.sampling.SamplingConfig`; seed also orders the data).
    """

    policy: str
    problems: str = option(
        "organism:train:2:1000",
        "Problems to sample on: gsm8k, a problems JSONL file, or organism:SPLIT:SEED:COUNT.")
    samples: int = option(
        4,
        "Temperature-1 samples per problem; the correct, distinct ones are the fine-tuning data.", min=1)
    epochs: int = option(2, 'Passes over the kept samples.', min=1)
    batch: int = option(32, 'Responses per AdamW step.', min=1)
    lr: float = option(
        3e-4,
        "Peak learning rate (warm-up over 10 % of steps, then cosine decay to a tenth).", min=0, min_open=True)
    warmup: float = 0.1
    symbolic: bool = False
    max_new_tokens: int = sampling.default("max_new_tokens", 160)  # as RLConfig
    batch_size: int = sampling.default("batch_size", 128)
    strict: bool = sampling.default("strict", True)
    engine: str = sampling.engine_field("What samples the base policy")
    vllm_options: dict = field(default_factory=dict)  # vllm.LLM keyword arguments (engine "vllm")

    def __post_init__(self) -> None:
        super().__post_init__()
        sampling.check_vllm_options(self.vllm_options, engine=self.engine)
        for name in ("samples", "epochs", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.warmup < 1:
            raise ValueError("need lr > 0 and 0 <= warmup < 1")

    def to_dict(self) -> dict:
        return asdict(self)


def rft_data(model: Any, tokenizer: Any, problems: Sequence[Problem], cfg: RFTConfig,
             engine: Any = None) -> tuple[list[tuple[str, str]], int]:
    """(prompt, response) pairs: the correct samples of π (``cfg.samples`` per problem), without repeating a
    response within a problem (correct solutions of one problem are often the same text); and how many of the
    samples were correct before that de-duplication. ``engine`` samples (default: an HFEngine over ``model``)."""
    prompts = prompts_of(problems, tokenizer, cfg)
    engine = engine or sampler(model, tokenizer, cfg)
    outs = engine.complete(prompts, cfg.samples, derive_seed(cfg.seed, 0, 2, bits=32))
    texts = [c.text for row in outs for c in row]
    ok = grade(texts, [p.answer for p in problems for _ in range(cfg.samples)], cfg)
    pairs, seen = [], set()
    for i, (text, good) in enumerate(zip(texts, ok, strict=True)):
        key = (i // cfg.samples, text)
        if good and key not in seen:
            seen.add(key)
            pairs.append((prompts[i // cfg.samples], text))
    return pairs, int(ok.sum())


def rft(model: Any, tokenizer: Any, pairs: Sequence[tuple[str, str]], cfg: RFTConfig) -> Iterator[dict]:
    """SFT on (prompt, response) pairs, loss on the response and EOS; yields one record per step."""
    import torch

    eos = tokenizer.eos_token_id
    rows = []
    for prompt, response in pairs:
        p = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        r = tokenizer(response, add_special_tokens=False)["input_ids"] + [eos]
        rows.append((p + r, [-100] * len(p) + r))
    steps_per_epoch = -(-len(rows) // cfg.batch)
    total = steps_per_epoch * cfg.epochs
    warm = max(1, round(cfg.warmup * total))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warm, total, floor=0.1))
    rng = np.random.default_rng(cfg.seed)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)
    model.train()
    step = 0
    for epoch in range(cfg.epochs):
        for batch in np.array_split(rng.permutation(len(rows)), steps_per_epoch):
            width = max(len(rows[i][0]) for i in batch)
            ids = torch.tensor([rows[i][0] + [pad] * (width - len(rows[i][0])) for i in batch])
            labels = torch.tensor([rows[i][1] + [-100] * (width - len(rows[i][1])) for i in batch])
            mask = torch.tensor([[1] * len(rows[i][0]) + [0] * (width - len(rows[i][0])) for i in batch])
            device = next(model.parameters()).device
            loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            yield {"step": step, "epoch": epoch, "loss": float(loss.detach())}
    model.eval()
