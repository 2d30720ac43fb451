r"""Monte Carlo progress labels on real models (paper §2 "Training PAVs", §4.2, App. D).

For every problem x:

1. **Seed rollouts.** ``n_cov`` responses y ~ π(·|x) (one ``engine.complete`` call), split into canonical steps
   by :func:`pavkit.llm.steps.split_steps` and graded with Rex (:func:`pavkit.llm.grading.grade_outcomes`).
   App. D says the seeds are i.i.d. from π (PAPER.md §10.6); that is the reading taken here, for every prover.
2. **Prefixes.** A seed of H steps has H+1 states s_1 … s_{H+1} (s_1 = the prompt alone), with texts
   ``prefix_text(prompt, steps[:h])``.
3. **Monte Carlo values.** ``n_mc`` completions from π of every prefix, graded against the gold answer:
   Q̂^π = fraction correct, se = sqrt(Q̂(1-Q̂)/n_mc) (:func:`pavkit.estimators.mc_estimate`). All prefixes of all
   seeds of one problem go into ONE ``engine.complete`` call (the engine batches them and reuses each prefix's
   KV cache for its n_mc continuations); identical prefix texts (s_1 is shared by every seed) are rolled out
   once and their estimate is shared. The last state of a seed that *finished* (hit EOS) is the whole
   response: its value under any policy is its outcome, recorded exactly with 0 rollouts and se 0.
4. **Prover values** on the same prefixes, by the prover SPEC (:func:`pavkit.provers.parse_prover`):

   - ``bok:K``  Best-of-K(π), analytic, no rollouts: Q̂^μ = 1 − (1 − Q̂^π)^K (App. F.4, Eq. 30,
     :func:`pavkit.estimators.bok`), with the first-order delta-method standard error
     se^μ = K (1 − Q̂^π)^{K−1} · se^π (0 where Q̂^π ∈ {0, 1}, like the binomial se it scales). ``n_mu`` then
     repeats ``n_pi``: the estimate rests on the same rollouts.
   - ``pi``     μ = π: the π estimates are reused (the paper's α-tuning prover; useless for RL, §1.3).
   - ``temp:T`` π sampled at temperature T: separate ``n_mc`` rollouts per prefix, one call per problem.
   - ``model:PATH`` another checkpoint: separate ``n_mc`` rollouts per prefix, one call per problem.

**First-pit seeding (App. D; optional).** The paper gives the recipe but not its thresholds (PAPER.md §10.7).
The choices here: every prefix of a seed is first *screened* with ``pit_screen`` rollouts (default 4) from π,
all in one call. For a seed whose outcome is wrong, the first pit is the first step a_h whose screened
Q̂^π(s_h, a_h) = V̂(s_{h+1}) is ``<= pit_threshold`` (default 0: none of the screening rollouts succeeded, the
paper's "drops to 0"; :func:`pavkit.estimators.first_pit`). Only the prefixes up to and including the pit
(s_1 … s_{pit+2}, i.e. the steps ``steps[:pit+1]``) are kept and get the full ``n_mc`` rollouts, which are
fresh (the screening rollouts chose the pit, so pooling them would bias the kept values towards 0). Correct
seeds and wrong seeds without a pit keep every prefix. The paper's first stage, finding high-value states to
branch from, reduces to the screening values here because seeds start at the root; they are recorded
(``screen``) so a later stage can branch from them.

**Determinism and resumability.** The sampling seed of each engine call is derived from (base seed, problem
index, stage) by :func:`pavkit.runs.derive_seed`, so a problem's records depend on nothing but the config. A run appends
one JSON line per seed trajectory; a resumed run (see :func:`scan_labels`) recomputes a partly written problem
in full (same calls, same seeds, same outputs) and writes only its missing records, so the resumed file equals
an uninterrupted run's. Records hold no wall-clock data for the same reason.

Records (one per seed trajectory, JSON): see :func:`label_problem`. Library code here takes and returns data;
``pavkit.cli`` owns the files.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pavkit import __version__, runs
from pavkit.estimators import bok, first_pit, mc_estimate
from pavkit.llm import sampling
from pavkit.llm.sampling import PROMPT_FORMATS, SamplingConfig
from pavkit.llm.steps import DEFAULT_DELIMITER, prefix_text, split_steps
from pavkit.options import option
from pavkit.provers import LABEL_PROVERS, parse_prover

# Stages of one problem's computation; each gets its own sampling seed (runs.derive_seed).
STAGE_SEEDS, STAGE_SCREEN, STAGE_MC_PI, STAGE_MC_MU = 0, 1, 2, 3

INSTRUCTION = (
    "Solve the following math problem step by step. Write each step on its own line{blank}. "
    "Finish with a final line of the form 'The answer is: N'."
)


# ---------------------------------------------------------------------------------------------------------------
# Prover specs and the run configuration.


@dataclass(frozen=True)
class LabelConfig(SamplingConfig):
    """Everything a labelling run's records depend on; written as ``config.json`` beside ``labels.jsonl``.

    ``problems`` names the source (``gsm8k`` or a file path) for people; ``problems_sha256`` (of the problems'
    ids, texts and answers, :func:`problems_digest`) is what a resume compares, so a moved file still resumes
    and an edited one does not. The sampling fields (seed, delimiter, prompt_format, temperature, max_new_tokens,
    batch_size, strict) come from :class:`~pavkit.llm.sampling.SamplingConfig`.
    """

    model: str
    prover: str
    problems: str
    problems_sha256: str
    n_cov: int = option(4, "Seed rollouts from π per problem (coverage); one record per seed.", min=1)
    n_mc: int = option(20, "Monte Carlo completions per prefix (the paper uses 20).", min=1)
    engine: str = sampling.engine_field("Generation engine")
    first_pit: bool = False
    pit_screen: int = option(4, "Screening rollouts per prefix for --first-pit.", min=1)
    pit_threshold: float = option(
        0.0,
        "A step is a pit when its screened Q̂^π <= this (0: no screening rollout succeeded).",
        min=0, max=1)
    vllm_options: dict = field(default_factory=dict)
    pavkit_version: str = field(default=__version__)

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_prover(self.prover, LABEL_PROVERS)
        if self.n_cov < 1 or self.n_mc < 1 or self.pit_screen < 1:
            raise ValueError("n_cov, n_mc and pit_screen must be >= 1")
        sampling.check_vllm_options(self.vllm_options, engine=self.engine)

    def to_json(self) -> dict:
        """The config.json dict; ``vllm_options`` only when set (so runs without them keep their config.json)."""
        out = asdict(self)
        if not out["vllm_options"]:
            del out["vllm_options"]
        return out


# Fields a resume does not compare: informational only (a changed path string with the same content is fine).
NOT_COMPARED = frozenset({"pavkit_version", "problems"})


def config_mismatch(saved: Mapping[str, Any], current: LabelConfig) -> str | None:
    """The first field whose saved value differs from ``current`` (as a one-line message), or None.

    Fields in ``NOT_COMPARED`` are skipped; a field missing from ``saved`` counts as a difference.
    """
    from pavkit.runs import config_difference

    return config_difference(dict(saved), current.to_json(), ignore=NOT_COMPARED)


def problems_digest(problems: Sequence[Any]) -> str:
    """sha256 of the problems' (id, problem, answer) in order: a problem index means the same problem."""
    payload = json.dumps([[p.id, p.problem, p.answer] for p in problems], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def load_engines(cfg: LabelConfig, **load_kw: Any) -> tuple[Any, Any | None]:
    """π's engine from ``cfg.model`` and, when the prover needs rollouts, μ's engine.

    ``temp:T`` shares π's weights (a second engine object over the same model at temperature T);
    ``model:PATH`` loads that checkpoint with the same settings. ``cfg.vllm_options`` and then ``load_kw`` go to
    ``from_path`` (e.g. ``device``, ``dtype`` for HF; ``max_model_len`` … for vLLM).
    """
    from pavkit.llm.engines import at_temperature, engine_from_path

    kw = cfg.engine_options()
    load_kw = {**cfg.vllm_options, **load_kw}
    engine = engine_from_path(cfg.engine, cfg.model, **kw, **load_kw)
    prover = parse_prover(cfg.prover, LABEL_PROVERS)
    if prover.kind == "temp":
        return engine, at_temperature(engine, prover.temperature)
    if prover.kind == "model":
        return engine, engine_from_path(cfg.engine, prover.path, **kw, **load_kw)
    return engine, None


def engine_tokenizer(engine: Any) -> Any:
    """The tokenizer behind an engine (HFEngine.tokenizer, or vllm.LLM.get_tokenizer()), or None."""
    tok = getattr(engine, "tokenizer", None)
    if tok is None and hasattr(engine, "llm"):
        tok = engine.llm.get_tokenizer()
    return tok


# ---------------------------------------------------------------------------------------------------------------
# Prompts.


def build_prompt(problem_text: str, tokenizer: Any = None, *, prompt_format: str = "auto",
                 delimiter: str = DEFAULT_DELIMITER) -> str:
    """The text of s_1 for a problem.

    ``chat``: the tokenizer's chat template with one user turn (``INSTRUCTION`` + the problem) and the
    generation prompt, so the first step starts right after it. ``plain``: the problem text followed by the
    delimiter, for base models (and problem texts that carry their own format). ``auto``: chat when the
    tokenizer has a chat template.
    """
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"prompt_format must be one of {PROMPT_FORMATS}, got {prompt_format!r}")
    has_template = tokenizer is not None and getattr(tokenizer, "chat_template", None)
    if prompt_format == "chat" and not has_template:
        raise ValueError("prompt_format 'chat' needs a tokenizer with a chat template")
    if prompt_format == "plain" or (prompt_format == "auto" and not has_template):
        return problem_text + delimiter
    blank = " and leave a blank line between steps" if delimiter == "\n\n" else ""
    content = INSTRUCTION.format(blank=blank) + "\n\n" + problem_text
    return tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)


# ---------------------------------------------------------------------------------------------------------------
# Labelling one problem.


@dataclass
class _Seed:
    index: int
    response: str
    finished: bool
    outcome: bool
    steps: list[str]
    kept: int  # number of steps kept (first-pit may cut); prefixes s_1 … s_{kept+1}
    pit: int | None = None
    screen_v: list[float] | None = None
    screen_n: list[int] | None = None

    def terminal(self, h: int) -> bool:
        """Is s_{h+1} (h steps) the finished response itself? Then its value is the outcome, exactly."""
        return self.finished and h == len(self.steps)


@dataclass
class _Estimates:
    """Values of a set of unique prefix texts: value, se, rollout count, ungradable count (each (U,))."""

    v: np.ndarray
    se: np.ndarray
    n: np.ndarray
    ungradable: np.ndarray


def _grade(responses: Sequence[str], gold: str, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rex of each response: (correct (N,) bool, ungradable (N,) bool). Ungradable counts as not correct."""
    from pavkit.llm.grading import CORRECT, UNGRADABLE, grade_outcomes

    outcomes = grade_outcomes(list(responses), [gold] * len(responses), strict=strict)
    return (np.array([o == CORRECT for o in outcomes], dtype=bool),
            np.array([o == UNGRADABLE for o in outcomes], dtype=bool))


def rollouts(engine: Any, prompt: str, prefixes: Sequence[Sequence[str]], n: int, seed: int, gold: str,
             delimiter: str, strict: bool) -> tuple[np.ndarray, np.ndarray]:
    """n completions of every prefix (step lists) in ONE ``engine.complete`` call, graded under Rex:
    (correct (U, n) bool, ungradable (U, n) bool). The graded response is the steps so far, each with its
    delimiter, followed by the completion."""
    u = len(prefixes)
    if u == 0:
        return np.zeros((0, n), dtype=bool), np.zeros((0, n), dtype=bool)
    groups = engine.complete([prefix_text(prompt, s, delimiter) for s in prefixes], n, seed)
    if len(groups) != u or any(len(g) != n for g in groups):
        raise RuntimeError(f"engine.complete returned {[len(g) for g in groups]} continuations, expected {u}×{n}")
    responses = [prefix_text("", s, delimiter) + c.text for s, g in zip(prefixes, groups, strict=True) for c in g]
    correct, ungradable = _grade(responses, gold, strict)
    return correct.reshape(u, n), ungradable.reshape(u, n)


def _estimate(engine: Any, prompt: str, prefixes: Sequence[tuple[str, ...]], n: int, seed: int, gold: str,
              delimiter: str, strict: bool) -> _Estimates:
    """The Monte Carlo values of every prefix from :func:`rollouts`; (U,) arrays."""
    correct, ungradable = rollouts(engine, prompt, prefixes, n, seed, gold, delimiter, strict)
    if not len(prefixes):
        z = np.zeros(0)
        return _Estimates(z, z, np.zeros(0, dtype=int), np.zeros(0, dtype=int))
    v, se = mc_estimate(correct)
    return _Estimates(v, se, np.full(len(prefixes), n), ungradable.sum(axis=1))


def _unique_prefixes(seeds: Sequence[_Seed], all_steps: bool) -> list[tuple[str, ...]]:
    """Distinct non-terminal prefixes of the seeds (kept ones, or all when ``all_steps``), first-seen order."""
    out: dict[tuple[str, ...], None] = {}
    for s in seeds:
        for h in range((len(s.steps) if all_steps else s.kept) + 1):
            if not s.terminal(h):
                out.setdefault(tuple(s.steps[:h]), None)
    return list(out)


def _per_seed(seed: _Seed, upto: int, table: dict[tuple[str, ...], int], est: _Estimates) -> dict[str, list]:
    """Arrays of one seed's prefixes s_1 … s_{upto+1} from the unique-prefix estimates (terminal: exact)."""
    v, se, n, ung = [], [], [], []
    for h in range(upto + 1):
        if seed.terminal(h):
            v.append(float(seed.outcome)), se.append(0.0), n.append(0), ung.append(0)
        else:
            i = table[tuple(seed.steps[:h])]
            v.append(float(est.v[i])), se.append(float(est.se[i])), n.append(int(est.n[i]))
            ung.append(int(est.ungradable[i]))
    return {"v": v, "se": se, "n": n, "ungradable": ung}


def _bok_arrays(pi: dict[str, list], k: int) -> dict[str, list]:
    """Best-of-K values from π's: 1-(1-v)^K, delta-method se K(1-v)^(K-1)·se; same rollouts."""
    v = np.asarray(pi["v"])
    se = k * (1.0 - v) ** (k - 1) * np.asarray(pi["se"])
    return {"v": [float(x) for x in bok(v, k)], "se": [float(x) for x in se], "n": list(pi["n"])}


@dataclass
class ProblemLabels:
    """The records of one problem (one per seed, in seed order) and the rollouts generated to make them."""

    records: list[dict]
    rollouts: int


def label_problem(problem: Any, index: int, engine: Any, cfg: LabelConfig, *,
                  prover_engine: Any = None) -> ProblemLabels:
    """Seed rollouts, (first-pit), Monte Carlo values under π and the prover, for one problem.

    Args:
        problem: a ``pavkit.llm.data.Problem`` (``id``, ``problem``, ``answer``).
        index: its index in the problem list (seeds derive from it).
        engine: π, with ``complete(prefix_texts, n, seed) -> list[list[Continuation]]`` and a ``tokenizer``.
        cfg: the run configuration.
        prover_engine: μ's engine when the prover needs rollouts (``temp:T``, ``model:PATH``), else None.

    Returns ``ProblemLabels``; record ``j`` (seed j) has the keys
        problem_id, problem_index, seed_index, problem, answer, prompt,
        response, finished, outcome (Rex of the seed), num_seed_steps, first_pit (step index or None),
        steps (the kept steps, H of them), v_pi / se_pi / n_pi and v_mu / se_mu / n_mu (H+1 each, prefixes
        s_1 … s_{H+1}; n = rollouts behind the value, 0 for an exact terminal value), ungradable (Monte
        Carlo rollouts of this seed's prefixes, π's and μ's, that grading called "ungradable" and scored as
        not correct; a prefix shared with other seeds counts in each), screen ({"v", "n"} over all the seed's
        prefixes when first-pit is on, else None), provenance (model, prover, seed, rollout_seeds, n_mc, n_cov,
        delimiter, temperature, pavkit_version).
    """
    prover = parse_prover(cfg.prover, LABEL_PROVERS)
    if prover.needs_rollouts and prover_engine is None:
        raise ValueError(f"prover {cfg.prover!r} needs a prover engine")
    d = cfg.delimiter
    prompt = build_prompt(problem.problem, engine_tokenizer(engine), prompt_format=cfg.prompt_format, delimiter=d)
    stage_seeds = {s: runs.derive_seed(cfg.seed, index, s) for s in (STAGE_SEEDS, STAGE_SCREEN, STAGE_MC_PI,
                                                                STAGE_MC_MU)}
    (conts,) = engine.complete([prompt], cfg.n_cov, stage_seeds[STAGE_SEEDS])
    outcomes, _ = _grade([c.text for c in conts], problem.answer, cfg.strict)
    seeds = []
    for j, c in enumerate(conts):
        steps = split_steps(c.text, d)
        seeds.append(_Seed(j, c.text, bool(c.finished), bool(outcomes[j]), steps, len(steps)))
    rollouts = cfg.n_cov

    if cfg.first_pit:
        rollouts += _first_pit(seeds, engine, prompt, problem.answer, cfg, stage_seeds[STAGE_SCREEN])

    unique = _unique_prefixes(seeds, all_steps=False)
    table = {p: i for i, p in enumerate(unique)}
    est_pi = _estimate(engine, prompt, unique, cfg.n_mc, stage_seeds[STAGE_MC_PI], problem.answer, d, cfg.strict)
    rollouts += len(unique) * cfg.n_mc
    est_mu = None
    if prover.needs_rollouts:
        est_mu = _estimate(prover_engine, prompt, unique, cfg.n_mc, stage_seeds[STAGE_MC_MU], problem.answer, d,
                           cfg.strict)
        rollouts += len(unique) * cfg.n_mc

    used = [STAGE_SEEDS] + ([STAGE_SCREEN] if cfg.first_pit else []) + [STAGE_MC_PI]
    used += [STAGE_MC_MU] if prover.needs_rollouts else []
    provenance = {"model": cfg.model, "prover": prover.spec, "seed": cfg.seed,
                  "rollout_seeds": [stage_seeds[s] for s in used], "n_mc": cfg.n_mc, "n_cov": cfg.n_cov,
                  "delimiter": d, "temperature": cfg.temperature, "pavkit_version": cfg.pavkit_version}
    records = []
    for s in seeds:
        pi = _per_seed(s, s.kept, table, est_pi)
        if prover.kind == "bok":
            mu = _bok_arrays(pi, prover.k)
        elif prover.kind == "pi":
            mu = {k: pi[k] for k in ("v", "se", "n")}
        else:
            mu = _per_seed(s, s.kept, table, est_mu)
        ungradable = sum(pi["ungradable"]) + sum(mu.get("ungradable", [0]))
        records.append({
            "problem_id": problem.id, "problem_index": index, "seed_index": s.index,
            "problem": problem.problem, "answer": problem.answer, "prompt": prompt,
            "response": s.response, "finished": s.finished, "outcome": s.outcome,
            "num_seed_steps": len(s.steps), "first_pit": s.pit, "steps": s.steps[: s.kept],
            "v_pi": pi["v"], "se_pi": pi["se"], "n_pi": pi["n"],
            "v_mu": mu["v"], "se_mu": mu["se"], "n_mu": mu["n"],
            "ungradable": int(ungradable),
            "screen": None if s.screen_v is None else {"v": s.screen_v, "n": s.screen_n},
            "provenance": provenance,
        })
    return ProblemLabels(records, rollouts)


def _first_pit(seeds: list[_Seed], engine: Any, prompt: str, gold: str, cfg: LabelConfig, seed: int) -> int:
    """Screen every prefix of every seed with ``pit_screen`` rollouts; cut wrong seeds at their first pit.

    Sets ``kept``, ``pit``, ``screen_v``, ``screen_n`` on each seed; returns the rollouts generated.
    """
    unique = _unique_prefixes(seeds, all_steps=True)
    table = {p: i for i, p in enumerate(unique)}
    est = _estimate(engine, prompt, unique, cfg.pit_screen, seed, gold, cfg.delimiter, cfg.strict)
    for s in seeds:
        arrays = _per_seed(s, len(s.steps), table, est)
        s.screen_v, s.screen_n = arrays["v"], arrays["n"]
        if s.outcome or not s.steps:
            continue
        pit = int(first_pit(np.asarray(s.screen_v)[None, 1:], cfg.pit_threshold)[0])
        if pit < len(s.steps):
            s.pit, s.kept = pit, pit + 1
    return len(unique) * cfg.pit_screen


def iter_labels(problems: Sequence[Any], engine: Any, cfg: LabelConfig, *,
                done: Iterable[tuple[int, int]] = (), prover_engine: Any = None) -> Iterator[tuple[list[dict], int]]:
    """Label problems in order, skipping records already done; yields (new records, rollouts) per problem.

    ``done`` holds (problem_index, seed_index) keys already written. A fully done problem is skipped
    (yields ([], 0)); a partly done one is recomputed in full, with the same seeds, and only its missing
    records are yielded, so appending them reproduces the uninterrupted file.
    """
    done = set(done)
    for i, problem in enumerate(problems):
        if all((i, j) in done for j in range(cfg.n_cov)):
            yield [], 0
            continue
        result = label_problem(problem, i, engine, cfg, prover_engine=prover_engine)
        yield [r for r in result.records if (i, r["seed_index"]) not in done], result.rollouts


# ---------------------------------------------------------------------------------------------------------------
# The labels file: serialisation and resume.


def record_line(record: Mapping[str, Any]) -> str:
    """One JSONL line (with the trailing newline); the same record always gives the same bytes."""
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"


def scan_labels(data: bytes, source: str = "labels.jsonl") -> tuple[list[dict], int]:
    """Parse the bytes of a labels file written by an interrupted run.

    Returns (records, valid_bytes): the records of every complete line and the length of the prefix of
    ``data`` they occupy. A last line without its newline (a write cut by a kill) is dropped: truncate the
    file to ``valid_bytes`` before appending. A complete line that is not a JSON object, or a key written
    twice, is corruption, not an interruption: ValueError naming the line.
    """
    end = data.rfind(b"\n") + 1
    records, seen = [], set()
    for lineno, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{source}:{lineno}: not a JSON record ({e})") from None
        if not isinstance(rec, dict) or "problem_index" not in rec or "seed_index" not in rec:
            raise ValueError(f"{source}:{lineno}: problem_index/seed_index: not a labels record")
        key = (rec["problem_index"], rec["seed_index"])
        if key in seen:
            raise ValueError(f"{source}:{lineno}: seed_index: record {key} appears twice")
        seen.add(key)
        records.append(rec)
    return records, end


def completed_keys(records: Iterable[Mapping[str, Any]]) -> set[tuple[int, int]]:
    """(problem_index, seed_index) of every record."""
    return {(int(r["problem_index"]), int(r["seed_index"])) for r in records}


# ---------------------------------------------------------------------------------------------------------------
# Class-balanced buckets (App. D final recipe).


def prefix_table(records: Sequence[Mapping[str, Any]], which: str = "pi") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flatten records into one row per labelled prefix.

    Returns (record index (N,), prefix index h (N,) with 0 = s_1, value (N,)) of ``v_pi`` (or ``v_mu``).
    """
    if which not in ("pi", "mu"):
        raise ValueError(f"which must be 'pi' or 'mu', got {which!r}")
    rec, pos, val = [], [], []
    for r_i, r in enumerate(records):
        v = r[f"v_{which}"]
        rec += [r_i] * len(v)
        pos += range(len(v))
        val += v
    return np.asarray(rec, dtype=int), np.asarray(pos, dtype=int), np.asarray(val, dtype=float)


def balanced_buckets(values: np.ndarray, seed: int, *, threshold: float = 0.5, mode: str = "down") -> np.ndarray:
    r"""Indices of a class-balanced sample of prefixes for verifier training (App. D: buckets Q̂ < 0.5, Q̂ ≥ 0.5).

    ``mode="down"``: both buckets are subsampled without replacement to the smaller one's size (2·min
    indices). ``mode="up"``: the smaller bucket is resampled with replacement to the larger one's size
    (2·max indices). The result is shuffled. If one bucket is empty there is nothing to balance against: the
    other bucket is returned (shuffled) with a warning.

    Args:
        values: (N,) Q̂ of each prefix (e.g. the third output of :func:`prefix_table`).
        seed: RNG seed.
    Returns:
        (M,) int indices into ``values``.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must have shape (N,), got {values.shape}")
    if mode not in ("down", "up"):
        raise ValueError(f"mode must be 'down' or 'up', got {mode!r}")
    rng = np.random.default_rng(seed)
    low, high = np.flatnonzero(values < threshold), np.flatnonzero(values >= threshold)
    if len(low) == 0 or len(high) == 0:
        if len(values):
            warnings.warn(f"balanced_buckets: bucket {'Q̂ < ' if len(low) == 0 else 'Q̂ >= '}{threshold} is empty; "
                          "returning the other bucket unbalanced", stacklevel=2)
        return rng.permutation(np.concatenate([low, high]))
    if mode == "down":
        m = min(len(low), len(high))
        picked = [rng.choice(low, m, replace=False), rng.choice(high, m, replace=False)]
    else:
        m = max(len(low), len(high))
        picked = [b if len(b) == m else rng.choice(b, m, replace=True) for b in (low, high)]
    return rng.permutation(np.concatenate(picked))
