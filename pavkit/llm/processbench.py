r"""Judging a verifier as the field does: ProcessBench-style first-error F1, and within-problem ranking.

Data: solutions with a human (or exact) label of their first wrong step — :class:`Solution`,
``first_error`` = the index of the first wrong step, −1 when every step is right (ProcessBench's ``label``).
Sources (:func:`solutions_from_spec`):

    processbench:FILE   ProcessBench JSONL: {"id", "problem", "steps": [...], "label": int}, one solution a line
    prm800k:FILE        PRM800K JSONL: {"question": {"problem"}, "label": {"steps": [{"completions":
                        [{"text", "rating"}], "chosen_completion"}]}}; the chosen completion of each step (the
                        first rated −1 where none was chosen), up to and including the first rated −1
    champ               the 540 bundled CHAMP first-wrong-step annotations (``pavkit.llm.data``)
    organism:SPLIT:SEED:COUNT
                        responses sampled from a policy on organism problems, labelled by the exact step checker:
                        the first step off the worked solution's track (``pavkit.llm.organism.OracleVerifier``)

Measures, from V̂(s_1) … V̂(s_{H+1}) of every solution (``prefix_values``; step h's score is V̂(s_{h+1})):

- **first-error F1** (ProcessBench): the predicted first error is the first step whose score is below a
  threshold τ (−1 if none); acc_erroneous = P(predicted = label | label ≥ 0), acc_correct = P(predicted = −1 |
  label = −1), F1 = their harmonic mean. τ maximises F1 on a validation split of the problems
  (:func:`choose_threshold`); F1 is reported on the other problems, with τ.
- **first-error AUC**, within a solution: does the first wrong step score below the right steps before it?
  (``verifier.within_problem_auc`` grouped by solution), once for the step score V̂(s_{h+1}) and once for the
  progress V̂(s_{h+1}) − V̂(s_h) (an advantage under the verifier's policy).
- **outcome AUC**, within a problem: are a problem's error-free solutions scored (V̂ of the whole solution)
  above its erroneous ones? Only problems with both kinds count (none in ProcessBench's one-per-problem sets).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pavkit.llm import sampling
from pavkit.llm.sampling import SamplingConfig
from pavkit.llm.verifier import within_problem_auc
from pavkit.options import option

SOURCES = ("processbench:FILE", "prm800k:FILE", "champ", "organism:SPLIT:SEED:COUNT")


@dataclass(frozen=True, kw_only=True)
class EvalConfig(SamplingConfig):
    """What `pavkit llm eval-verifier` evaluates, on which data (config.json of its run directory).

    Attributes:
        verifier: a verifier path, a ``prm:`` spec (``pavkit.llm.prm``) or ``organism-oracle``.
        data: one of :data:`SOURCES` (file paths absolute).
        policy: the policy that samples ``organism:`` solutions ("" for the other sources).
        samples: solutions sampled per organism problem.
        limit: the first ``limit`` solutions only (0: all).
        fraction: share of the problems in the validation split that chooses τ.
    The sampling fields (SamplingConfig) serve the organism's policy; ``prompt_format`` and ``delimiter`` also
    build the prompt the verifier reads. Their defaults are the organism's (as RL).
    """

    verifier: str
    data: str
    policy: str = ""
    samples: int = option(4, "Solutions sampled per problem of organism: data (from --policy).", min=1)
    limit: int = option(0, "Only the first LIMIT solutions of the data (0: all); a quick look at a large set.",
                        min=0)
    fraction: float = option(0.5, "Share of the problems whose solutions choose the F1 threshold (the validation "
                                  "split); F1 is reported on the others.", min=0, max=1, min_open=True, max_open=True)
    max_new_tokens: int = sampling.default("max_new_tokens", 160)
    batch_size: int = sampling.default("batch_size", 128)
    strict: bool = sampling.default("strict", True)
    engine: str = sampling.engine_field("What samples organism: solutions from --policy")
    verifier_engine: str = sampling.verifier_engine_field()
    vllm_options: dict = field(default_factory=dict)  # vllm.LLM keyword arguments of both vLLM engines

    def __post_init__(self) -> None:
        super().__post_init__()
        sampling.check_vllm_options(self.vllm_options, engine=self.engine, verifier_engine=self.verifier_engine)
        if not 0 < self.fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {self.fraction}")
        if self.data.startswith("organism:") and not self.policy:
            raise ValueError("organism: data is sampled from a policy: give one")

    def to_json(self) -> dict:
        return asdict(self)


# EvalConfig fields added after runs were first written (with the value every older run had), and the fields a
# resume does not compare (the verifier engines give the same values to ~1e-8)
EVAL_ADDED_FIELDS = {"engine": "hf", "verifier_engine": "hf", "vllm_options": {}}
EVAL_NOT_COMPARED = frozenset({"verifier_engine"})


def solutions_from_spec(spec: str) -> list[Solution]:
    """The solutions of a file or bundled source (``organism:`` is sampled by ``pavkit.drivers.eval_verifier``)."""
    kind, _, arg = spec.partition(":")
    if kind == "processbench" and arg:
        return read_processbench(arg)
    if kind == "prm800k" and arg:
        return read_prm800k(arg)
    if spec == "champ":
        return champ_solutions()
    raise ValueError(f"data must be one of {', '.join(SOURCES)}, got {spec!r}")


@dataclass(frozen=True)
class Solution:
    """One solution: its problem, its steps, and the index of its first wrong step (−1: none)."""

    problem_id: str
    problem: str
    steps: tuple[str, ...]
    first_error: int
    source: str = ""  # who wrote it (a generator model), when the data says


class DataError(ValueError):
    """A bad line of a data file; the message names the file, the line and the field."""


def _field(where: str, record: Any, key: str, kind: type | tuple) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise DataError(f"{where}: no field {key!r}")
    if not isinstance(record[key], kind) or (kind is int and isinstance(record[key], bool)):
        raise DataError(f"{where}: field {key!r} has type {type(record[key]).__name__}")
    return record[key]


def _json_lines(path: str | Path):
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                yield f"{path}:{n}", json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: not JSON ({e.msg})") from None


def read_processbench(path: str | Path) -> list[Solution]:
    """The solutions of a ProcessBench JSONL file (one {"id", "problem", "steps", "label"} per line)."""
    out = []
    for where, r in _json_lines(path):
        steps = _field(where, r, "steps", list)
        label = _field(where, r, "label", int)
        if not all(isinstance(s, str) for s in steps) or not steps:
            raise DataError(f"{where}: field 'steps' must be a non-empty list of strings")
        if not -1 <= label < len(steps):
            raise DataError(f"{where}: field 'label' is {label}, not -1 or a step index below {len(steps)}")
        out.append(Solution(str(r.get("id", where)), _field(where, r, "problem", str), tuple(steps), label,
                            str(r.get("generator", ""))))
    return out


def read_prm800k(path: str | Path) -> list[Solution]:
    """The solutions of a PRM800K JSONL file (see the module docstring for which completion each step takes)."""
    out = []
    for where, r in _json_lines(path):
        problem = _field(where, _field(where, r, "question", dict), "problem", str)
        steps, first = [], -1
        for h, step in enumerate(_field(where, _field(where, r, "label", dict), "steps", list)):
            at = f"{where}: label.steps[{h}]"
            completions = _field(at, step, "completions", list)
            chosen = step.get("chosen_completion")
            if chosen is None:
                chosen = next((i for i, c in enumerate(completions) if isinstance(c, dict) and c.get("rating") == -1),
                              None)
            if chosen is None or not 0 <= chosen < len(completions):
                break  # no completion taken (the labeller stopped): the solution ends before this step
            c = completions[chosen]
            steps.append(_field(f"{at}.completions[{chosen}]", c, "text", str))
            if c.get("rating") == -1:
                first = h
                break
        if steps:
            out.append(Solution(problem, problem, tuple(steps), first))
    return out


def champ_solutions() -> list[Solution]:
    """The 540 CHAMP model solutions with their human first-wrong-step labels."""
    from pavkit.llm.data import champ_first_wrong_steps

    return [Solution(a.problem.id, a.problem.problem, a.steps, -1 if a.first_wrong is None else a.first_wrong,
                     a.model) for a in champ_first_wrong_steps() if a.steps]


def organism_solutions(problems: Sequence[Any], steps: Sequence[Sequence[str]], samples: int) -> list[Solution]:
    """Solutions of sampled responses (``samples`` per problem, in order) labelled by the exact step checker:
    the first step that leaves the worked solution's track (−1 if none does)."""
    from pavkit.llm.organism import solve

    out = []
    for i, s in enumerate(steps):
        p = problems[i // samples]
        worked = solve(p.problem)
        first = next((h for h, a in enumerate(s) if h >= len(worked) or a != worked[h]), -1)
        out.append(Solution(p.id, p.problem, tuple(s), first, "organism"))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Measures.


def predicted_first_errors(step_scores: Sequence[np.ndarray], thresholds: np.ndarray) -> np.ndarray:
    """(C, N) predicted first error of each of N solutions at each of C thresholds: the first step h whose
    score step_scores[n][h] < τ_c, −1 if none."""
    n, width = len(step_scores), max((len(s) for s in step_scores), default=0)
    scores = np.full((n, max(width, 1)), np.inf)
    for i, s in enumerate(step_scores):
        scores[i, :len(s)] = s
    below = scores[None] < np.asarray(thresholds, dtype=float)[:, None, None]  # (C, N, H)
    return np.where(below.any(-1), below.argmax(-1), -1)


def first_error_f1(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """ProcessBench's measures of predictions (..., N) against labels (N,): acc_erroneous, acc_correct, f1
    (each an array over the leading axes; None where a class is absent)."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    err, ok = labels >= 0, labels == -1
    acc_err = (predicted[..., err] == labels[err]).mean(-1) if err.any() else None
    acc_ok = (predicted[..., ok] == -1).mean(-1) if ok.any() else None
    if acc_err is None or acc_ok is None:
        return {"acc_erroneous": acc_err, "acc_correct": acc_ok, "f1": None}
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * acc_err * acc_ok / (acc_err + acc_ok))
    return {"acc_erroneous": acc_err, "acc_correct": acc_ok, "f1": f1}


def choose_threshold(step_scores: Sequence[np.ndarray], labels: np.ndarray, max_candidates: int = 512) -> float:
    """The τ with the highest first-error F1 on these solutions (ties: the smallest). Candidates: midpoints
    between consecutive distinct scores (at most ``max_candidates``, by quantile) and one above them all."""
    values = np.unique(np.concatenate([np.asarray(s, dtype=float) for s in step_scores] + [np.zeros(0)]))
    if values.size > max_candidates:
        values = np.unique(np.quantile(values, np.linspace(0, 1, max_candidates)))
    candidates = np.concatenate([[values[0] if values.size else 0.5], (values[1:] + values[:-1]) / 2,
                                 [values[-1] + 1e-9 if values.size else 0.5]])
    f1 = first_error_f1(predicted_first_errors(step_scores, candidates), labels)["f1"]
    if f1 is None:
        raise ValueError("choosing a threshold needs solutions with an error and solutions without")
    return float(candidates[int(np.argmax(f1))])


def split_problems(solutions: Sequence[Solution], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, test) solution indices: a ``fraction`` of the distinct problems (drawn with ``seed``) and
    all their solutions go to validation, the rest to test."""
    if not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must be in (0, 1), got {fraction}")
    ids = list(dict.fromkeys(s.problem_id for s in solutions))
    order = np.random.default_rng(seed).permutation(len(ids))
    val_ids = {ids[i] for i in order[:max(1, round(fraction * len(ids)))]}
    in_val = np.array([s.problem_id in val_ids for s in solutions])
    return np.flatnonzero(in_val), np.flatnonzero(~in_val)


def evaluate(values: Sequence[np.ndarray], solutions: Sequence[Solution], *, fraction: float = 0.5,
             seed: int = 0) -> dict:
    """Every measure of the module docstring from ``values[n]`` = V̂(s_1) … V̂(s_{H_n+1}) of solution n."""
    if len(values) != len(solutions):
        raise ValueError(f"{len(values)} value arrays for {len(solutions)} solutions")
    labels = np.array([s.first_error for s in solutions])
    step = [np.asarray(v, dtype=float)[1:] for v in values]
    val, test = split_problems(solutions, fraction, seed)
    out: dict[str, Any] = {"solutions": len(solutions), "erroneous": int((labels >= 0).sum()),
                           "problems": len({s.problem_id for s in solutions}),
                           "validation_solutions": int(val.size), "test_solutions": int(test.size)}
    try:
        tau = choose_threshold([step[i] for i in val], labels[val])
    except ValueError as e:
        out.update(threshold=None, f1=None, why_no_f1=str(e) + " in the validation split")
    else:
        at = {name: first_error_f1(predicted_first_errors([step[i] for i in idx], np.array([tau]))[0], labels[idx])
              for name, idx in (("validation", val), ("test", test))}
        out.update(threshold=tau, validation_f1=_num(at["validation"]["f1"]), f1=_num(at["test"]["f1"]),
                   acc_erroneous=_num(at["test"]["acc_erroneous"]), acc_correct=_num(at["test"]["acc_correct"]))
    before = [(n, h) for n, s in enumerate(solutions) for h in range(max(s.first_error, -1) + 1)]
    if before:
        groups = [n for n, _ in before]
        right = [float(h < solutions[n].first_error) for n, h in before]
        score = [step[n][h] for n, h in before]
        progress = [values[n][h + 1] - values[n][h] for n, h in before]
        out["first_error_auc"] = within_problem_auc(score, right, groups)
        out["first_error_auc_progress"] = within_problem_auc(progress, right, groups)
    out["outcome_auc"] = within_problem_auc([v[-1] for v in values], (labels == -1).astype(float),
                                            [s.problem_id for s in solutions])
    return out


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def step_score_curves(values: Sequence[np.ndarray], solutions: Sequence[Solution],
                      max_steps: int = 12) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Mean step score V̂(s_{h+1}) ± its standard error at step h = 1 … max_steps, for three sets of steps:
    every step of error-free solutions, the steps of erroneous ones before their first error, and the steps of
    erroneous ones from it on. Returns {name: (h (K,), mean (K,), se (K,))}, steps with no data left out."""
    sets: dict[str, list[list[float]]] = {k: [[] for _ in range(max_steps)]
                                          for k in ("error-free solutions", "before the first error",
                                                    "from the first error on")}
    for v, s in zip(values, solutions, strict=True):
        for h, x in enumerate(np.asarray(v, dtype=float)[1:max_steps + 1]):
            key = "error-free solutions" if s.first_error < 0 else \
                "before the first error" if h < s.first_error else "from the first error on"
            sets[key][h].append(float(x))
    out = {}
    for key, per_step in sets.items():
        h = np.array([i + 1 for i, xs in enumerate(per_step) if xs])
        if h.size:
            xs = [np.array(per_step[i - 1]) for i in h]
            out[key] = (h, np.array([x.mean() for x in xs]),
                        np.array([x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else 0.0 for x in xs]))
    return out
