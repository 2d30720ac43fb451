"""Rex: final-answer extraction, exact numeric equivalence, math-verify with a process timeout, the CLI."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

from pavkit.cli import main
from pavkit.llm.grading import (
    CORRECT,
    UNGRADABLE,
    WRONG,
    extract_answer,
    grade,
    grade_batch,
    grade_outcomes,
    last_boxed,
    plain_number,
)

# A sum sympy tries to evaluate term by term: math-verify does not return for minutes.
HANGS = r"\boxed{\sum_{n=1}^{10^{9}} n^{n}}"


@pytest.mark.parametrize("response, answer", [
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
    ("#### 1,234\nsome trailing text", "1,234"),
    ("So the answer is 3.5.", "3.5"),
    ("The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
    ("I think the answer is 5, but the answer is 6.", "6"),
    ("the answer is 12 apples. Then 7 more", "12 apples"),
    ("The answer is **42**.", "42"),
    ("The answer is \\(x^2\\).", "x^2"),
    ("The answer is $5$ apples.", "5"),
    ("Answer: $\\dfrac{3}{4}$.", "\\dfrac{3}{4}"),
    ("Final Answer: 17", "17"),
    ("We get \\boxed{\\frac{\\sqrt{2}}{2}} and so on", "\\frac{\\sqrt{2}}{2}"),
    ("first \\boxed{1} then \\boxed{\\left\\{ \\frac{a}{b^{2}} \\right\\}}", "\\left\\{ \\frac{a}{b^{2}} \\right\\}"),
    ("\\fbox{7}", "7"),
    ("x \\boxed 7 y", "7"),
    ("The answer is \\boxed{10}. Answer: 3", "10"),  # boxed has priority over every other marker
    ("#### 5\nThe answer is 6", "5"),  # then ####, then "the answer is", then "Answer:"
    ("x = 3, so y = -4.25 in total", "-4.25"),  # last-number fallback
    ("It is 1,000,000 dollars", "1,000,000"),
])
def test_extract_answer(response, answer):
    assert extract_answer(response) == answer


@pytest.mark.parametrize("response", ["x = 3, so y = 4", "no digits here", "ends \\boxed{"])
def test_strict_requires_marker(response):
    assert extract_answer(response, strict=True) is None


def test_no_answer():
    assert extract_answer("") is None and extract_answer("no digits here") is None
    assert extract_answer("\\boxed{} and then 5") == "5"  # an empty box is no answer
    assert last_boxed("\\boxed{a{b}c} \\boxed{d\\}e}") == "d\\}e"


@pytest.mark.parametrize("text, value", [
    ("1,000", 1000), ("1000", 1000), ("5.0", 5), ("-3.50", Fraction(-7, 2)), ("$18", 18), ("\\$18.00", 18),
    ("25%", 25), ("25\\%", 25), ("7 dollars", 7), ("\u22122", -2), (".5", Fraction(1, 2)), ("+4", 4),
    ("12\\text{ cm}", 12),
])
def test_plain_number(text, value):
    assert plain_number(text) == value


@pytest.mark.parametrize("text", ["1,2", "1,00", "\\frac{1}{2}", "x", "5x", "3/4", "1e5", "", "2 + 3", "(1, 2)"])
def test_not_plain_number(text):
    assert plain_number(text) is None


@pytest.mark.parametrize("response, gold, outcome", [
    ("The answer is 1,000.", "1000", CORRECT),
    ("#### 1000", "1,000", CORRECT),
    ("#### 5.0", "5", CORRECT),
    ("The answer is $18.00", "18", CORRECT),
    ("#### 17", "Some solution text\n#### 17", CORRECT),  # a whole GSM8K solution as gold
    ("#### -3", "3", WRONG),
    ("The answer is 0.33", "\\frac{1}{3}", WRONG),
    ("\\boxed{\\frac{1}{2}}", "0.5", CORRECT),
    ("\\boxed{\\dfrac12}", "\\frac{1}{2}", CORRECT),
    ("\\boxed{3/4}", "\\frac{3}{4}", CORRECT),
    ("\\boxed{\\frac{1}{3}}", "0.5", WRONG),
    ("\\boxed{\\sqrt{2}/2}", "\\frac{\\sqrt 2}{2}", CORRECT),
    ("\\boxed{\\frac{2}{\\sqrt{8}}}", "\\frac{\\sqrt{2}}{2}", CORRECT),
    ("\\boxed{x = \\frac{1}{2}}", "\\frac12", CORRECT),
    ("The answer is $\\{2, 1\\}$.", "\\{1,2\\}", CORRECT),
    ("\\boxed{\\text{(B)}}", "\\text{(B)}", CORRECT),
    ("no answer at all", "3", UNGRADABLE),
    ("#### 3", "", UNGRADABLE),
])
def test_grade(response, gold, outcome):
    assert grade(response, gold) == outcome


def test_strict_grade():
    assert grade("so it is 7", "7") == CORRECT
    assert grade("so it is 7", "7", strict=True) == UNGRADABLE


def test_in_process_mode():
    assert grade("\\boxed{\\frac{1}{2}}", "0.5", timeout=None) == CORRECT
    assert grade("\\boxed{\\frac{1}{3}}", "0.5", timeout=None) == WRONG


def test_grade_batch():
    responses = ["#### 4", "#### 5", "nothing", "\\boxed{\\frac{8}{2}}"]
    correct, ungradable = grade_batch(responses, ["4", "4", "4", "4"])
    assert correct.dtype == bool and correct.shape == (4,)
    np.testing.assert_array_equal(correct, [True, False, False, True])
    assert ungradable == 1
    correct, ungradable = grade_batch([], [])
    assert correct.shape == (0,) and ungradable == 0
    with pytest.raises(ValueError):
        grade_batch(["a"], [])


@pytest.mark.slow
def test_timeout_is_ungradable_and_pool_recovers():
    out = grade_outcomes([HANGS, "\\boxed{\\frac{6}{3}}", "#### 2"], ["5", "2", "2"], timeout=1.0)
    assert out == [UNGRADABLE, CORRECT, CORRECT]
    assert grade("\\boxed{\\frac{6}{3}}", "2") == CORRECT  # a fresh pool replaced the killed one


@pytest.mark.slow
def test_grade_from_threads():
    """signal.alarm-based timeouts fail off the main thread; the process pool works from any thread."""
    results, errors = [], []

    def work():
        try:
            results.append(grade("\\boxed{\\frac{1}{2}}", "0.5"))
        except Exception as e:  # noqa: BLE001 — the test reports it below
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert errors == [] and results == [CORRECT]

    jobs = [([f"\\boxed{{\\frac{{{2 * k}}}{{2}}}}", "#### 1"], [str(k), "2"]) for k in range(1, 7)]
    jobs.append(([HANGS, "\\boxed{\\frac{4}{2}}"], ["5", "2"]))
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(lambda job: grade_outcomes(*job, timeout=1.0), jobs))
    for out in outs[:-1]:
        assert out == [CORRECT, WRONG]
    assert outs[-1] == [UNGRADABLE, CORRECT]


def _grade_cli(tmp_path, lines, *args):
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return CliRunner().invoke(main, ["llm", "grade", str(path), *args]), path


def test_cli_grade_json(tmp_path):
    lines = [json.dumps({"response": "The answer is 1,000.", "answer": "1000"}), "",
             json.dumps({"response": "\\boxed{\\frac{1}{2}}", "answer": 0.5}),
             json.dumps({"response": "no idea", "answer": "3"}),
             json.dumps({"response": "it is 3", "answer": "3"})]
    result, _ = _grade_cli(tmp_path, lines, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"correct": [True, True, False, True], "ungradable": 1}
    result, _ = _grade_cli(tmp_path, lines, "--json", "--strict")
    assert json.loads(result.stdout) == {"correct": [True, True, False, False], "ungradable": 2}
    result, _ = _grade_cli(tmp_path, lines)
    assert result.exit_code == 0 and "3 correct of 4 (1 ungradable)" in result.stdout


@pytest.mark.parametrize("lines, message", [
    (['{"response": "x", "answer": "1"}', '{"response": 3, "answer": "1"}'], ":2: response: must be a string"),
    (['{"response": "x"}'], ":1: answer: missing"),
    (['{"response": "x", "answer": "1"', ], ":1: not valid JSON"),
    (['["x", "1"]'], ":1: expected a JSON object"),
])
def test_cli_grade_bad_lines(tmp_path, lines, message):
    result, path = _grade_cli(tmp_path, lines, "--json")
    assert result.exit_code == 2
    assert f"{path}{message}" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_cli_grade_empty_file(tmp_path, text):
    path = tmp_path / "empty.jsonl"
    path.write_text(text)
    result = CliRunner().invoke(main, ["llm", "grade", str(path), "--json"])
    assert result.exit_code == 2 and result.stdout == ""
    assert f"{path}: no records to grade" in result.stderr and len(result.stderr.splitlines()) == 1


def test_cli_grade_missing_file(tmp_path):
    result = CliRunner().invoke(main, ["llm", "grade", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2 and "nope.jsonl" in result.output


def test_workers_that_cannot_start_raise_instead_of_grading_everything_ungradable(tmp_path):
    """A script piped to stdin cannot be re-imported by spawned workers: that must be an error, not 0 %."""
    import subprocess
    import sys

    script = 'from pavkit.llm.grading import grade\nprint(grade(r"The answer is \\frac{1}{2}", "0.5"))\n'
    r = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, cwd=tmp_path,
                       timeout=300)
    assert r.returncode != 0 and "worker processes failed to start" in r.stderr


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    """A SIGKILLed run (a killed `pavkit llm label`) must not leave its math-verify workers waiting forever."""
    import os
    import subprocess
    import sys
    import time

    script = ("from pavkit.llm.grading import _POOL\nimport time\nif __name__ == '__main__':\n"
              "    print(*_POOL.get(2)._processes, flush=True)\n    time.sleep(600)\n")
    path = tmp_path / "pool.py"
    path.write_text(script)
    proc = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert len(workers) == 2
    proc.kill()
    proc.wait()

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 30
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in workers if alive(p)]
    for p in left:  # do not leave them behind when the test fails
        os.kill(p, 9)
    assert not left
