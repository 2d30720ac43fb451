"""Rex, the outcome reward: final-answer extraction + equivalence (paper §2; MATH protocol, Hendrycks et al.).

``grade(response, gold)`` returns ``"correct"``, ``"wrong"`` or ``"ungradable"``:

1. Extraction (:func:`extract_answer`). Markers, by priority: the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested
   braces matched), the last GSM8K ``#### N``, the last "the (final) answer is X", the last "Answer: X". With
   ``strict=False`` the last number in the text is the fallback; ``strict=True`` requires a marker.
2. Equivalence. Plain numbers (``"1,000"``, ``"-3.50"``, ``"$18"``, ``"25%"``, ``"18 dollars"``) are compared
   exactly as rationals, in process. Otherwise equal normalised strings are correct, and anything else goes to
   math-verify (``parse`` of ``$…$``-wrapped gold and prediction, then ``verify``) in a worker process that
   is killed after ``timeout`` seconds. math-verify's own timeouts use ``signal.alarm``, which fails off the
   main thread: they are disabled (``parsing_timeout=None, timeout_seconds=None``) and the process pool
   enforces the limit instead, so grading works from threads and from worker processes.

"ungradable" — no answer extracted, a gold or prediction that math-verify cannot parse, a timeout, a crashed
worker — is an outcome to count (and to score as not correct), never an exception.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from fractions import Fraction

import numpy as np

CORRECT, WRONG, UNGRADABLE = "correct", "wrong", "ungradable"
OUTCOMES = (CORRECT, WRONG, UNGRADABLE)

# ----------------------------------------------------------------------------------------------------------------
# Extraction.

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\b")
# Markers only: the answer is the rest of the marker's line (cut at the end of its first sentence).
_HASH_RE = re.compile(r"####")
_ANSWER_IS_RE = re.compile(r"\b(?:final\s+)?answer\s+(?:is|was|would\s+be|will\s+be)\b\s*:?", re.IGNORECASE)
_ANSWER_COLON_RE = re.compile(r"\b(?:final\s+)?answer\s*:", re.IGNORECASE)
_NUMBER_RE = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")


def _balanced(text: str, open_at: int) -> str | None:
    """Content of the brace group opening at ``text[open_at] == "{"`` (nested braces matched), or None."""
    depth = 0
    for i in range(open_at, len(text)):
        c = text[i]
        if c == "\\":  # an escaped brace \{ or \} does not count
            continue
        if c == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif c == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:i]
    return None


def last_boxed(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` or ``\fbox{...}`` (also ``\boxed 5``), nested braces kept."""
    for m in reversed(list(_BOX_RE.finditer(text))):
        rest = m.end()
        while rest < len(text) and text[rest] in " \t":
            rest += 1
        if rest < len(text) and text[rest] == "{":
            inner = _balanced(text, rest)
            if inner is not None:
                return inner
        elif rest > m.end():  # "\boxed 5": the token after the space
            token = re.match(r"[^\s$]+", text[rest:])
            if token:
                return token.group(0)
    return None


def _cut_sentence(s: str) -> str:
    """The first sentence of a captured line ("42. Then we..." → "42"); dots inside $...$ math do not count."""
    in_math = False
    for i, c in enumerate(s):
        if c == "$" and (i == 0 or s[i - 1] != "\\"):
            in_math = not in_math
        elif c in ".!?" and not in_math and (i + 1 == len(s) or s[i + 1].isspace()):
            return s[:i]
    return s


def _last_capture(marker: re.Pattern, text: str) -> str | None:
    """The answer after the last occurrence of ``marker`` that has one (the rest of its line, first sentence)."""
    for m in reversed(list(marker.finditer(text))):
        line = text[m.end():].split("\n", 1)[0]
        captured = _strip_answer(_cut_sentence(line))
        if captured:
            return captured
    return None


def _strip_answer(s: str) -> str:
    """Remove math delimiters, bold/italic markup, units after math, and trailing punctuation around an answer."""
    s = s.strip().rstrip(".,;:!? ").strip()
    inner = last_boxed(s)
    if inner is not None:
        s = inner
    math = re.fullmatch(r"\\\((.*?)\\\)|\\\[(.*?)\\\]", s, flags=re.DOTALL)
    if math:
        s = next(g for g in math.groups() if g is not None)
    segments = re.findall(r"(?<!\\)\$\$?(.+?)(?<!\\)\$\$?", s, flags=re.DOTALL)
    if segments:  # "$5$ apples", "x = $5$", "$\\frac{1}{2}$": the (last) math segment is the answer
        s = segments[-1]
    s = s.strip().strip("*_").strip()
    return s.rstrip(".,;:!? ").strip()


def extract_answer(response: str, *, strict: bool = False) -> str | None:
    """The final answer of a response, or None when there is none.

    Markers by priority (the last occurrence of each): ``\\boxed{}``/``\\fbox{}``, ``#### N``, "the (final) answer
    is X", "Answer: X". Non-strict mode falls back to the last number in the text.
    """
    boxed = last_boxed(response)
    if boxed is not None and boxed.strip():
        return _strip_answer(boxed)
    for regex in (_HASH_RE, _ANSWER_IS_RE, _ANSWER_COLON_RE):
        found = _last_capture(regex, response)
        if found:
            return found
    if strict:
        return None
    numbers = _NUMBER_RE.findall(response)
    return numbers[-1] if numbers else None


# ----------------------------------------------------------------------------------------------------------------
# Equivalence.

_PLAIN_NUMBER_RE = re.compile(
    r"(?P<num>[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+)"
    r"\s*(?P<pct>\\?%|\s*percent)?(?:\s+[A-Za-z]{2,}(?:\s+[A-Za-z]{2,})*)?")


def plain_number(s: str) -> Fraction | None:
    """Exact value of a plain number ("1,000", "-3.5", "$18", "\\$18.00", "25%", "7 dollars"), else None.

    A percentage is the number before the sign ("25%" → 25), as GSM8K and MATH gold answers write it.
    """
    s = s.strip().replace("\\$", "").replace("$", "").replace("\\!", "").replace("\u2212", "-").strip()
    s = re.sub(r"\\text\{\s*([^{}]*)\}", r" \1", s).strip()
    m = _PLAIN_NUMBER_RE.fullmatch(s)
    if not m:
        return None
    return Fraction(m.group("num").replace(",", ""))


def _normalise(s: str) -> str:
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\\left|\\right|\\!|\\,|\\;|\\ ", "", s)
    return re.sub(r"\s+", "", s).lower()


def _gold_answer(gold: str) -> str:
    """Gold answers may be given raw ("18"), boxed, or as a whole GSM8K solution ending in "#### 18"."""
    if _BOX_RE.search(gold) or "####" in gold:
        found = extract_answer(gold, strict=True)
        if found:
            return found
    return _strip_answer(gold)


def _math_verify(gold: str, pred: str) -> str:
    """math-verify equivalence of two answer strings (run in a worker process; never raises)."""
    try:
        from math_verify import parse, verify

        logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout disabled" warnings
        gold_parsed = parse(f"${gold}$", parsing_timeout=None)
        pred_parsed = parse(f"${pred}$", parsing_timeout=None)
        if not gold_parsed or not pred_parsed:
            return UNGRADABLE
        return CORRECT if verify(gold_parsed, pred_parsed, timeout_seconds=None) else WRONG
    except Exception:  # noqa: BLE001 — a parser crash is an ungradable answer, not a failed run
        return UNGRADABLE


_START_BARRIER = None  # set in each worker by _worker_init


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """Exit this worker once its parent is gone. A SIGKILLed parent (a killed labelling run) never shuts the
    pool down, and a spawned worker holds both ends of its task queue, so it would wait for tasks forever."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(0)


def _worker_init(barrier) -> None:
    global _START_BARRIER
    import math_verify  # noqa: F401  — import sympy/antlr once per worker, not inside the first timed check

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    _START_BARRIER = barrier
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _worker_ready() -> int:
    """Block until every worker of the pool runs this task: afterwards all of them have started."""
    _START_BARRIER.wait(timeout=WORKER_START_TIMEOUT)
    return os.getpid()


class _Pool:
    """A lazily started, shared process pool that can be killed and replaced when a check overruns.

    Workers are "spawn"ed (safe to start from any thread: fork would copy locks held by other threads) and
    fully started before the pool is handed out, so a check's time limit never includes a worker's start-up.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: cf.ProcessPoolExecutor | None = None
        self._workers = 0

    def get(self, workers: int) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._executor is None or self._workers != workers:
                if self._executor is not None:
                    self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor, self._workers = _start_pool(workers), workers
            return self._executor

    def kill(self, executor: cf.ProcessPoolExecutor) -> None:
        """Kill the workers of ``executor`` (a stuck sympy call cannot be interrupted any other way)."""
        with self._lock:
            for proc in list((getattr(executor, "_processes", None) or {}).values()):
                proc.kill()
            executor.shutdown(wait=False, cancel_futures=True)
            if self._executor is executor:
                self._executor = None

    def shutdown(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None


def _start_pool(workers: int) -> cf.ProcessPoolExecutor:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(workers)  # passed at process creation: a Barrier cannot travel through a task queue
    executor = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(barrier,))
    ready = [executor.submit(_worker_ready) for _ in range(workers)]  # W blocking tasks occupy W workers
    done, not_done = cf.wait(ready, timeout=WORKER_START_TIMEOUT + 5)
    errors = [f.exception() for f in done if f.exception() is not None]
    if errors or not_done:
        # Otherwise every check would come back "ungradable" and a labelling run would silently score 0.
        executor.shutdown(wait=False, cancel_futures=True)
        why = repr(errors[0]) if errors else f"not ready after {WORKER_START_TIMEOUT:.0f} s"
        raise RuntimeError(f"math-verify worker processes failed to start ({why}). Spawned workers re-import "
                           "the __main__ module: run from a file, -c or the pavkit CLI, not from a script piped "
                           "to stdin.")
    return executor


_POOL = _Pool()
WORKER_START_TIMEOUT = 120.0  # seconds for a fresh pool's workers to start (spawn + import sympy)


def shutdown_pool() -> None:
    """Stop the grading worker processes (they are restarted on demand)."""
    _POOL.shutdown()


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _verify_many(pairs: list[tuple[str, str]], timeout: float | None, workers: int | None) -> list[str]:
    """math-verify outcomes of (gold, pred) pairs; each pair gets a worker for ``timeout`` seconds.

    Pairs run in rounds of ``workers``: a round's deadline is ``timeout`` after it starts, so every pair has
    its own worker for the whole limit. Unfinished pairs are ungradable and their workers are killed. A pool
    broken by another thread's kill is retried once with a fresh pool.
    """
    if timeout is None:  # in process, no limit (debugging; a pathological input can hang)
        return [_math_verify(g, p) for g, p in pairs]
    workers = workers or _default_workers()
    out = [UNGRADABLE] * len(pairs)
    for start in range(0, len(pairs), workers):
        todo = list(range(start, min(start + workers, len(pairs))))
        for _attempt in range(2):
            executor = _POOL.get(workers)
            try:
                futures = {executor.submit(_math_verify, *pairs[i]): i for i in todo}
            except RuntimeError:  # shut down by another thread between get and submit
                continue
            done, not_done = cf.wait(futures, timeout=timeout)
            retry = []
            for f in done:
                try:
                    out[futures[f]] = f.result()
                except (BrokenProcessPool, cf.CancelledError):  # killed by another thread's timeout
                    retry.append(futures[f])
            if not_done:
                _POOL.kill(executor)  # timed-out pairs stay ungradable
            todo = retry
            if not todo:
                break
    return out


def _classify(pred: str | None, gold: str) -> tuple[str | None, tuple[str, str] | None]:
    """In-process outcome when one is certain, else the (gold, pred) pair math-verify must decide."""
    if pred is None:
        return UNGRADABLE, None
    gold_answer = _gold_answer(gold)
    if not gold_answer:
        return UNGRADABLE, None
    g_num, p_num = plain_number(gold_answer), plain_number(pred)
    if g_num is not None and p_num is not None:
        return (CORRECT if g_num == p_num else WRONG), None
    if _normalise(gold_answer) == _normalise(pred):
        return CORRECT, None
    return None, (gold_answer, pred)


def grade_outcomes(responses: Sequence[str], golds: Sequence[str], *, strict: bool = False,
                   timeout: float | None = 5.0, workers: int | None = None, symbolic: bool = True) -> list[str]:
    """Outcome ("correct" / "wrong" / "ungradable") of every (response, gold) pair, shape (N,).

    ``symbolic=False`` never starts math-verify: a pair that is not decided by plain-number or normalised-text
    comparison is "wrong" (for tasks whose gold answers are integers, such as the organism, where it spares a
    training process the worker pool).
    """
    if len(responses) != len(golds):
        raise ValueError(f"{len(responses)} responses but {len(golds)} gold answers")
    outcomes: list[str | None] = []
    pending: list[tuple[int, tuple[str, str]]] = []
    for i, (response, gold) in enumerate(zip(responses, golds, strict=True)):
        outcome, pair = _classify(extract_answer(response, strict=strict), gold)
        outcomes.append(outcome)
        if pair is not None and symbolic:
            pending.append((i, pair))
        elif pair is not None:
            outcomes[-1] = WRONG
    if pending:
        for (i, _), outcome in zip(pending, _verify_many([p for _, p in pending], timeout, workers), strict=True):
            outcomes[i] = outcome
    return [o or UNGRADABLE for o in outcomes]


def grade(response: str, gold: str, *, strict: bool = False, timeout: float | None = 5.0) -> str:
    """Rex(response, gold) as "correct", "wrong" or "ungradable" (see the module docstring).

    ``timeout`` seconds bound the math-verify check (None: run it in this process without a limit).
    """
    return grade_outcomes([response], [gold], strict=strict, timeout=timeout)[0]


def grade_batch(responses: Sequence[str], golds: Sequence[str], *, strict: bool = False,
                timeout: float | None = 5.0, workers: int | None = None,
                symbolic: bool = True) -> tuple[np.ndarray, int]:
    """Rex of N responses: (correct (N,) bool, number ungradable). Ungradable counts as not correct."""
    outcomes = grade_outcomes(responses, golds, strict=strict, timeout=timeout, workers=workers, symbolic=symbolic)
    correct = np.array([o == CORRECT for o in outcomes], dtype=bool)
    return correct, sum(o == UNGRADABLE for o in outcomes)


def read_grade_file(path: str) -> tuple[list[str], list[str]]:
    """Lines {"response": str, "answer": str} of a JSONL file (blank lines skipped); bad lines or no line at all →
    UserInputError."""
    import json

    from pavkit.runs import UserInputError

    responses, answers = [], []
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path}: cannot read ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserInputError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise UserInputError(f"{path}:{n}: expected a JSON object with fields response and answer")
        for name, out in (("response", responses), ("answer", answers)):
            value = record.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and name == "answer":
                value = str(value)  # a numeric gold answer such as 18
            if not isinstance(value, str):
                problem = "missing" if name not in record else f"must be a string, got {type(value).__name__}"
                raise UserInputError(f"{path}:{n}: {name}: {problem}")
            out.append(value)
    if not responses:
        raise UserInputError(f"{path}: no records to grade (the file is empty or blank; give one JSON line "
                             '{"response": ..., "answer": ...} per response)')
    return responses, answers
