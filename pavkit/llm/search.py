r"""Test-time search on an LLM with trained verifiers (paper §4, PAPER.md §5 and §8).

Methods (the names used in records, plots and the CLI):

- ``bon-orm``   best-of-N: N i.i.d. responses, pick the one with the highest ORM value.
- ``bon-pav``   best-of-N with PAV-as-ORM: pick by the PQV's value Q̂^π of the whole response.
- ``bon-likelihood``  best-of-N by π's own mean token log-probability of the response: the strongest signal that
  costs no training, so every learned verifier is also compared with it.
- ``majority``  majority vote over the N extracted final answers (ties: the answer seen first).
- ``pass``      Pass@N, the oracle ceiling: is any of the N responses correct.
- ``beam-q``    beam search of width N, C proposals per unfinished beam, score = Q̂^π(child)        (α = 0).
- ``beam-pav``  beam search with the effective reward of the new step (Eq. 5):

      score(s_h ⊕ a_h) = Q̂^π(s_h ⊕ a_h) + α·( Q̂^μ(s_h ⊕ a_h) − Q̂^μ(s_h) )

  with the prover ``bok:K`` (Q̂^μ = 1 − (1 − Q̂^π)^K from the PQV itself, App. F.4; no second model) or
  ``model:DIR`` (a trained ``qmu`` verifier of another policy).

Both beam methods run the generic loop :func:`pavkit.search.beam_search` (the one the toy uses) with a batched
``expand_all``: at each depth ONE ``engine.extend`` call samples the C next steps of every unfinished beam, and
ONE call per verifier model scores every new child. A child's values are cached by its steps, so a parent's
Q̂^π/Q̂^μ (computed when it was a child) is never scored again. A child that hits EOS is finished: it is not
expanded and stays in the beam, competing with its score; ``max_steps`` caps the depth. The final answer is the
finished kept beam (or, when none finished, any kept beam) with the highest Q̂^π: the PQV used as an ORM.
``any_correct`` records whether any of those final candidates is correct (Pass@N of search, Fig. 6(a)).

The pool methods come from ONE pool of M i.i.d. responses per problem, scored once by the ORM and the PQV
(``pool.jsonl``); accuracy at N < M is computed in :mod:`pavkit.analysis.metrics` by subsampling (or exactly).
Beam methods run once per width N (``search.jsonl``, one :class:`pavkit.types.SearchResult` per line).

Compute accounting (every record): see :func:`verifier_cost`. Sampling seeds derive from (base seed, problem
index, stage, N, depth) (:func:`pavkit.runs.derive_seed`; beam-q and beam-pav share (STAGE_BEAM, N, depth), so
both see the same first proposals), so a problem's records depend only on the config and a rerun skips the
(problem_index, method, n) keys already written. Library code only: ``pavkit.cli`` owns the files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from pavkit import __version__, runs
from pavkit.estimators import effective_reward
from pavkit.llm import sampling
from pavkit.llm.sampling import SamplingConfig
from pavkit.llm.steps import DEFAULT_DELIMITER, clean_step, join_steps, prefix_text, split_steps
from pavkit.options import option
from pavkit.provers import VERIFIER_PROVERS, parse_prover
from pavkit.search import beam_search
from pavkit.types import SearchResult, Verifier

POOL_METHODS = ("bon-orm", "bon-pav", "bon-likelihood", "majority", "pass")
BEAM_METHODS = ("beam-q", "beam-pav")
METHODS = POOL_METHODS + BEAM_METHODS

# Stages of one problem's sampling; each gets its own seed (runs.derive_seed).
STAGE_POOL, STAGE_BEAM = 0, 1


# ---------------------------------------------------------------------------------------------------------------
# Configuration.


@dataclass(frozen=True)
class SearchConfig(SamplingConfig):
    """Everything a search run's records depend on; written as ``config.json`` beside the records.

    ``methods`` and ``ns`` are not compared on resume (:data:`NOT_COMPARED`): a rerun may add methods or widths
    and only computes the missing (problem_index, method, n) keys. Paper values in comments (§4, App. C). The
    sampling fields come from :class:`~pavkit.llm.sampling.SamplingConfig` (max_new_tokens caps a pool response).
    """

    policy: str                       # π: a local HF model folder
    orm: str                          # ORM verifier folder (kind "orm")
    pqv: str                          # PQV verifier folder (kind "pqv"): Q̂^π, also the final pick of beam search
    problems: str = ""                # the problem source, for people (not compared)
    problems_sha256: str = ""         # what a resume compares (pavkit.llm.label.problems_digest)
    # prover: the paper's default prover: Bo4(π)
    prover: str = option(
        "bok:4",
        "μ of beam-pav: bok:K (Q̂^μ = 1-(1-Q̂^π)^K from the PQV) or model:DIR (a --kind qmu verifier).")
    methods: tuple[str, ...] = METHODS
    ns: tuple[int, ...] = (2, 4, 8, 16)  # paper: 2 … 128 (beam width = N)
    # pool: M i.i.d. responses per problem for the pool methods (paper: up to 128)
    pool: int = option(
        128,
        "M i.i.d. responses per problem for the pool methods (accuracy at N <= M by subsampling).",
        min=1)
    # alpha: paper: 0.5 for Gemma 2B/9B, 0.2 for 27B
    alpha: float = option(0.5, "α of beam-pav's score Q̂^π + α·(Q̂^μ(child) − Q̂^μ(parent)) (paper: 0.5).", min=0)
    # c: paper: C = 3 proposals per beam element
    c: int = option(3, "Proposals sampled per unfinished beam per step (paper: 3).", min=1)
    # max_steps: depth cap (horizon H)
    max_steps: int = option(10, "Depth cap of beam search (steps per response).", min=1)
    max_step_tokens: int = option(64, "Token cap of one beam-search step.", min=1)
    engine: str = sampling.engine_field("What samples responses and steps (bon-likelihood needs hf)")
    verifier_engine: str = sampling.verifier_engine_field()
    vllm_options: dict = field(default_factory=dict)  # vllm.LLM keyword arguments of both vLLM engines
    pavkit_version: str = field(default=__version__)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "ns", tuple(int(n) for n in self.ns))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be among {', '.join(METHODS)}, got {list(self.methods)}")
        if not self.ns or min(self.ns) < 1:
            raise ValueError(f"every N must be >= 1, got {list(self.ns)}")
        if self.pool < 1 or self.c < 1 or self.max_steps < 1 or self.max_step_tokens < 1:
            raise ValueError("pool, c, max_steps and max_step_tokens must be >= 1")
        if self.pool_methods and max(self.ns) > self.pool:
            raise ValueError(f"pool methods need N <= pool = {self.pool}, got N = {max(self.ns)}")
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        parse_prover(self.prover, VERIFIER_PROVERS)
        if self.engine == "vllm" and "bon-likelihood" in self.methods:
            raise ValueError("bon-likelihood scores π's log-probabilities with transformers: use --engine hf, or "
                             "leave it out of --methods")
        sampling.check_vllm_options(self.vllm_options, engine=self.engine, verifier_engine=self.verifier_engine)

    @property
    def pool_methods(self) -> tuple[str, ...]:
        return tuple(m for m in self.methods if m in POOL_METHODS)

    @property
    def beam_methods(self) -> tuple[str, ...]:
        return tuple(m for m in self.methods if m in BEAM_METHODS)

    def to_json(self) -> dict:
        out = asdict(self)
        out["methods"], out["ns"] = list(self.methods), list(self.ns)
        return out


# Fields a resume does not compare: more methods / widths only add records; the rest is informational.
NOT_COMPARED = frozenset({"methods", "ns", "problems", "pavkit_version", "verifier_engine"})
# SearchConfig fields added after search runs were first written, with the value every older run had
ADDED_FIELDS = {"engine": "hf", "vllm_options": {}}


# ---------------------------------------------------------------------------------------------------------------
# Compute accounting.


def verifier_cost(prompt_tokens: int, new_tokens: Iterable[int], models: int = 1) -> int:
    r"""Verifier compute in tokens, the accounting unit of every record: what a verifier with a prefix KV cache
    processes.

        verifier_tokens = models · ( prompt_tokens + Σ_i new_tokens_i )

    - best-of-N: a verifier reads the shared prompt once and each sampled response's tokens once
      (``new_tokens`` = the responses' token counts); ``models`` = 1 (the ORM, or the PQV for PAV-as-ORM).
    - beam search: each newly scored child costs only its new step's tokens (its parent's prefix is cached),
      plus the prompt once per problem; children met before (cached values) cost nothing; ``models`` = 1 with a
      ``bok:K`` prover or for beam-q (the PQV alone), 2 with a ``model:DIR`` prover (PQV and Q̂^μ model). The
      final pick reuses the PQV values already computed.

    Total compute of a method = generated_tokens (policy tokens sampled) + verifier_tokens. ``forward_tokens``
    (recorded beside it) is what this implementation actually ran, with no KV reuse across calls.
    """
    if models < 0 or prompt_tokens < 0:
        raise ValueError("models and prompt_tokens must be >= 0")
    return int(models * (int(prompt_tokens) + sum(int(t) for t in new_tokens)))


class TokenCounter:
    """Token counts as a verifier reads a state ("segments" tokenization, see ``pavkit.llm.steps``): the prompt
    alone with special tokens, then each ``step + delimiter`` alone. Counts of step texts are cached.

    ``tokenizer(text, add_special_tokens=...)`` must return a mapping with ``input_ids`` (any HF tokenizer).
    """

    def __init__(self, tokenizer: Any, delimiter: str = DEFAULT_DELIMITER):
        self.tokenizer, self.delimiter = tokenizer, delimiter
        self._steps: dict[str, int] = {}

    def prompt(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def step(self, text: str) -> int:
        if text not in self._steps:
            self._steps[text] = len(self.tokenizer(text + self.delimiter, add_special_tokens=False)["input_ids"])
        return self._steps[text]

    def steps(self, steps: Sequence[str]) -> int:
        return sum(self.step(s) for s in steps)


@dataclass
class Verifiers:
    """The verifier models of a search, each a :class:`pavkit.types.Verifier` (its ``values`` and
    ``stats.forward_tokens`` are used here).

    orm: the ORM (bon-orm); pqv: Q̂^π (bon-pav, beam scores, the final pick of beam search); qmu: the Q̂^μ model
    of a ``model:DIR`` prover, else None; counter: token counts for :func:`verifier_cost` (default: the PQV's
    tokenizer); likelihood: π itself, scoring pool responses for ``bon-likelihood``.
    """

    orm: Verifier
    pqv: Verifier
    qmu: Verifier | None = None
    counter: TokenCounter | None = None
    likelihood: PolicyLikelihood | None = None  # π's log-probabilities for bon-likelihood (None: not recorded)

    def token_counter(self, delimiter: str) -> TokenCounter:
        if self.counter is None:
            self.counter = TokenCounter(self.pqv.tokenizer, delimiter)
        return self.counter

    def forward_tokens(self) -> int:
        return sum(int(v.stats.forward_tokens) for v in {id(v): v for v in (self.orm, self.pqv, self.qmu)
                                                         if v is not None}.values())


class PolicyLikelihood:
    """π's log-probabilities of its own sampled responses, read in one forward pass per pool (no training).

    ``model``: the causal LM that sampled the responses; ``tokenizer``: its tokenizer (prompts are encoded the
    way the engine encodes them, special tokens included); ``batch_size`` rows per forward pass.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 32):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, int(batch_size)

    def mean_logprobs(self, prompt: str, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """(M,) mean over each response's sampled tokens (the stopping token included) of log π(y_t | x, y_<t)."""
        import torch

        from pavkit.llm.rl import token_logprobs

        prompt_ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out = []
        with torch.inference_mode():
            for s in range(0, len(token_ids), self.batch_size):
                part = [list(t) for t in token_ids[s:s + self.batch_size]]
                logp, resp = token_logprobs(self.model, [prompt_ids] * len(part), part, pad)
                out += ((logp * resp).sum(1) / resp.sum(1).clamp(min=1)).double().cpu().tolist()
        return np.asarray(out, dtype=float)


# ---------------------------------------------------------------------------------------------------------------
# Grading helpers.


def vote_key(answer: str | None) -> str | None:
    """The key majority voting groups answers by: exact rational value for plain numbers ("1,000" = "1000.0"),
    else the answer without whitespace, lower-cased; None (no answer) never votes."""
    if answer is None or not answer.strip():
        return None
    from pavkit.llm.grading import plain_number

    num = plain_number(answer)
    if num is not None:
        return f"num:{Fraction(num)}"
    return "str:" + "".join(answer.split()).lower()


def _grade(responses: Sequence[str], gold: str, strict: bool) -> list[bool]:
    from pavkit.llm.grading import CORRECT, grade_outcomes

    if not responses:
        return []
    return [o == CORRECT for o in grade_outcomes(list(responses), [gold] * len(responses), strict=strict)]


def majority_pick(keys: Sequence[str | None]) -> int | None:
    """Index of the first response carrying the most frequent non-None key (ties: the key seen first)."""
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k is not None:
            counts[k] = counts.get(k, 0) + 1
            first.setdefault(k, i)
    if not counts:
        return None
    best = max(counts.values())
    return min(first[k] for k, c in counts.items() if c == best)


# ---------------------------------------------------------------------------------------------------------------
# The pool: M i.i.d. responses, scored once by each verifier.


def pool_problem(problem: Any, index: int, prompt: str, engine: Any, verifiers: Verifiers,
                 cfg: SearchConfig) -> dict:
    """Sample M = ``cfg.pool`` responses in one ``engine.complete`` call; grade; ORM and PQV values of each.

    Returns the ``pool.jsonl`` record: problem_index, problem_id, answer, responses (M,), extracted (M,) final
    answers (None when none), vote_keys (M,) (:func:`vote_key`), correct (M,), num_tokens (M,) policy tokens,
    orm (M,), pqv (M,), pqv_steps (M lists of H_m+1 values: Q̂^π of every prefix, read in the same forward pass;
    Fig. 10), logprob_mean (M,) (π's mean token log-probability, :class:`PolicyLikelihood`; only with
    ``verifiers.likelihood``), prompt_tokens (the verifier's tokens of the prompt, read once per problem),
    verifier_tokens (M,) (each response's tokens as the verifier reads them, see :func:`verifier_cost`),
    generated_tokens (Σ num_tokens), forward_tokens (what the two verifiers actually ran), seed.
    """
    from pavkit.llm.grading import extract_answer

    d = cfg.delimiter
    seed = runs.derive_seed(cfg.seed, index, STAGE_POOL)
    (conts,) = engine.complete([prompt], cfg.pool, seed)
    responses = [c.text for c in conts]
    steps = [split_steps(r, d) for r in responses]
    before = verifiers.forward_tokens()
    orm = np.asarray(verifiers.orm.values([prompt] * len(steps), steps), dtype=float)
    pqv_steps = verifiers.pqv.prefix_values([prompt] * len(steps), steps)
    counter = verifiers.token_counter(d)
    extracted = [extract_answer(r, strict=cfg.strict) for r in responses]
    likelihood = {} if verifiers.likelihood is None else {"logprob_mean": [
        float(x) for x in verifiers.likelihood.mean_logprobs(prompt, [c.token_ids for c in conts])]}
    return {
        "problem_index": index, "problem_id": problem.id, "answer": problem.answer, "responses": responses,
        "extracted": extracted, "vote_keys": [vote_key(a) for a in extracted],
        "correct": _grade(responses, problem.answer, cfg.strict),
        "num_tokens": [int(c.num_tokens) for c in conts], "finished": [bool(c.finished) for c in conts],
        "orm": [float(x) for x in orm], "pqv": [float(v[-1]) for v in pqv_steps],
        "pqv_steps": [[float(x) for x in v] for v in pqv_steps], **likelihood,
        "prompt_tokens": counter.prompt(prompt), "verifier_tokens": [counter.steps(s) for s in steps],
        "generated_tokens": int(sum(c.num_tokens for c in conts)),
        "forward_tokens": verifiers.forward_tokens() - before, "seed": seed,
    }


# ---------------------------------------------------------------------------------------------------------------
# Beam search.


@dataclass(frozen=True)
class BeamState:
    """A search state: the steps taken so far, and whether the response is over (EOS)."""

    steps: tuple[str, ...]
    finished: bool = False


class BeamScorer:
    r"""Scores children by Q̂^π(child) + α·(Q̂^μ(child) − Q̂^μ(parent)), caching every state's values by its steps.

    ``values(states)`` scores the not-yet-seen states in ONE call per verifier model; a state seen before (a
    parent, or a finished child whose text equals its parent's) is read from the cache and costs nothing.
    ``new_tokens`` collects the verifier tokens of each newly scored state's last step (:func:`verifier_cost`).
    """

    def __init__(self, prompt: str, verifiers: Verifiers, *, alpha: float, prover: str, counter: TokenCounter):
        self.prompt, self.verifiers, self.alpha, self.counter = prompt, verifiers, float(alpha), counter
        self.prover = parse_prover(prover if alpha > 0 else "bok:1", VERIFIER_PROVERS)
        if self.prover.kind == "model" and verifiers.qmu is None:
            raise ValueError(f"prover {prover!r} needs a qmu verifier")
        self.cache: dict[tuple[str, ...], tuple[float, float]] = {}
        self.new_tokens: list[int] = []

    @property
    def models(self) -> int:
        """Verifier models run per scored state: the PQV, plus the Q̂^μ model of a ``model:DIR`` prover."""
        return 2 if (self.alpha > 0 and self.prover.kind == "model") else 1

    def values(self, states: Sequence[BeamState]) -> np.ndarray:
        """(len(states), 2): [Q̂^π, Q̂^μ] of each state (Q̂^μ = Q̂^π when α = 0)."""
        todo = list(dict.fromkeys(s.steps for s in states if s.steps not in self.cache))
        if todo:
            prompts, steps = [self.prompt] * len(todo), [list(t) for t in todo]
            q_pi = np.asarray(self.verifiers.pqv.values(prompts, steps), dtype=float)
            if self.alpha == 0:
                q_mu = q_pi
            elif self.prover.from_base_values:
                q_mu = self.prover.from_base(q_pi)
            else:
                q_mu = np.asarray(self.verifiers.qmu.values(prompts, steps), dtype=float)
            for t, a, b in zip(todo, q_pi, q_mu, strict=True):
                self.cache[t] = (float(a), float(b))
                # the root (prompt alone) is covered by verifier_cost's prompt term
                self.new_tokens.append(self.counter.step(t[-1]) if t else 0)
        return np.array([self.cache[s.steps] for s in states], dtype=float).reshape(len(states), 2)

    def score(self, parents: list[BeamState], children: list[BeamState]) -> np.ndarray:
        """(n,) effective reward of each child (Eq. 5 with the prover's advantage); α = 0: Q̂^π(child)."""
        child = self.values(children)
        if self.alpha == 0:
            return child[:, 0]
        parent = self.values(parents)  # cached: every parent was scored as a child (or is the root)
        # Eq. 5 on the one-step trajectories parent → child: Q̂^π(child) + α·(Q̂^μ(child) − Q̂^μ(parent))
        v_pi, v_mu = np.stack([parent[:, 0], child[:, 0]], axis=1), np.stack([parent[:, 1], child[:, 1]], axis=1)
        return effective_reward(v_pi, v_mu, self.alpha)[:, 0]


@dataclass
class BeamOutcome:
    """What one beam search kept: the final candidates (best Q̂^π first), their Q̂^π, the pick and the cost."""

    beams: list[BeamState]
    candidates: list[BeamState]
    q_pi: np.ndarray
    pick: BeamState | None
    generated_tokens: int
    verifier_tokens: int
    forward_tokens: int
    proposals: int


def run_beam(prompt: str, engine: Any, verifiers: Verifiers, *, width: int, c: int, max_steps: int, alpha: float,
             prover: str, seed_of: Callable[[int], int], delimiter: str = DEFAULT_DELIMITER) -> BeamOutcome:
    """Beam search of width ``width`` from the prompt alone, through :func:`pavkit.search.beam_search`.

    Each depth d (1, 2, …) calls ``engine.extend`` ONCE for all unfinished beams with ``c`` proposals each and
    seed ``seed_of(d)``. A proposal is cut at the delimiter and made canonical (``clean_step``); an empty
    proposal that did not finish is dropped (its tokens still count), an empty one that finished is the parent's
    response, now over. Scores: :class:`BeamScorer`. Final candidates: the finished kept beams, or every kept
    beam when none finished; the pick is the candidate with the highest Q̂^π (first on ties).
    """
    counter = verifiers.token_counter(delimiter)
    scorer = BeamScorer(prompt, verifiers, alpha=alpha, prover=prover, counter=counter)
    forward_before = verifiers.forward_tokens()
    root = BeamState(())
    if alpha > 0:
        scorer.values([root])  # V^μ(s_1) of the prompt alone: the parent value of every depth-1 child
    generated, depth = 0, 0

    def expand_all(states: list[BeamState]) -> list[list[BeamState]]:
        nonlocal generated, depth
        depth += 1
        groups = engine.extend([prefix_text(prompt, s.steps, delimiter) for s in states], c, seed_of(depth))
        if len(groups) != len(states):
            raise RuntimeError(f"engine.extend returned {len(groups)} groups for {len(states)} prefixes")
        out = []
        for s, conts in zip(states, groups, strict=True):
            kids = []
            for cont in conts:
                generated += int(cont.num_tokens)
                step = clean_step(cont.text, delimiter)
                if step:
                    kids.append(BeamState(s.steps + (step,), bool(cont.finished)))
                elif cont.finished:
                    kids.append(BeamState(s.steps, True))
            out.append(kids)
        return out

    result = beam_search([root], None, scorer.score, width=width, max_steps=max_steps,
                         is_done=lambda s: s.finished, expand_all=expand_all)
    finished = [b for b in result.beams if b.finished]
    candidates = finished or list(result.beams)
    q_pi = scorer.values(candidates)[:, 0] if candidates else np.zeros(0)
    order = np.argsort(-q_pi, kind="stable")
    candidates, q_pi = [candidates[i] for i in order], q_pi[order]
    return BeamOutcome(beams=list(result.beams), candidates=candidates, q_pi=q_pi,
                       pick=candidates[0] if candidates else None, generated_tokens=generated,
                       verifier_tokens=verifier_cost(counter.prompt(prompt), scorer.new_tokens, scorer.models),
                       forward_tokens=verifiers.forward_tokens() - forward_before, proposals=result.proposals)


def beam_problem(problem: Any, index: int, prompt: str, engine: Any, verifiers: Verifiers, cfg: SearchConfig,
                 method: str, n: int) -> SearchResult:
    """One beam method at width ``n`` on one problem → its ``search.jsonl`` record."""
    if method not in BEAM_METHODS:
        raise ValueError(f"not a beam method: {method!r}")
    alpha = cfg.alpha if method == "beam-pav" else 0.0
    prover = cfg.prover if method == "beam-pav" else ""
    out = run_beam(prompt, engine, verifiers, width=n, c=cfg.c, max_steps=cfg.max_steps, alpha=alpha,
                   prover=cfg.prover, seed_of=lambda d: runs.derive_seed(cfg.seed, index, STAGE_BEAM, n, d),
                   delimiter=cfg.delimiter)
    texts = [join_steps(s.steps, cfg.delimiter) for s in out.candidates]
    correct = _grade(texts, problem.answer, cfg.strict)
    return SearchResult(problem_index=index, problem_id=str(problem.id), method=method, n=n, alpha=alpha,
                        prover=prover, c=cfg.c, response=texts[0] if texts else "",
                        correct=bool(correct[0]) if correct else False, any_correct=any(correct),
                        generated_tokens=out.generated_tokens, verifier_tokens=out.verifier_tokens,
                        forward_tokens=out.forward_tokens, steps=out.pick.steps if out.pick else ())


# ---------------------------------------------------------------------------------------------------------------
# A whole run.


def search_prompt(problem: Any, engine: Any, cfg: SearchConfig) -> str:
    """The prompt s_1, built exactly as labelling builds it (``pavkit.llm.label.build_prompt``)."""
    from pavkit.llm.label import build_prompt, engine_tokenizer

    return build_prompt(problem.problem, engine_tokenizer(engine), prompt_format=cfg.prompt_format,
                        delimiter=cfg.delimiter)


def pending_units(num_problems: int, cfg: SearchConfig, done_pool: Iterable[int],
                  done_search: Iterable[tuple[int, str, int]]) -> list[tuple[int, str, int]]:
    """The (problem_index, method, n) units still to compute, in order; the pool is ("pool", M), once per problem."""
    done_pool, done_search = set(done_pool), set(done_search)
    units = []
    for i in range(num_problems):
        if cfg.pool_methods and i not in done_pool:
            units.append((i, "pool", cfg.pool))
        units += [(i, m, n) for m in cfg.beam_methods for n in cfg.ns if (i, m, n) not in done_search]
    return units


def iter_search(problems: Sequence[Any], engine: Any, verifiers: Verifiers, cfg: SearchConfig, *,
                done_pool: Iterable[int] = (), done_search: Iterable[tuple[int, str, int]] = ()
                ) -> Iterator[tuple[str, dict]]:
    """Compute every pending unit in order; yields ("pool", pool record) or ("search", SearchResult JSON).

    Keys already done are skipped (resume); every record is a pure function of the config and the problem.
    """
    prompts: dict[int, str] = {}
    for i, method, n in pending_units(len(problems), cfg, done_pool, done_search):
        prompt = prompts.setdefault(i, search_prompt(problems[i], engine, cfg))
        if method == "pool":
            yield "pool", pool_problem(problems[i], i, prompt, engine, verifiers, cfg)
        else:
            yield "search", beam_problem(problems[i], i, prompt, engine, verifiers, cfg, method, n).to_json()


__all__ = ["ADDED_FIELDS", "BEAM_METHODS", "METHODS", "NOT_COMPARED", "POOL_METHODS", "BeamOutcome", "BeamScorer",
           "BeamState",
           "PolicyLikelihood", "SearchConfig", "TokenCounter", "Verifiers", "beam_problem", "iter_search",
           "majority_pick", "pending_units", "pool_problem", "run_beam", "search_prompt",
           "verifier_cost", "vote_key"]
