"""Problem sets: JSONL format and errors, bundled GSM8K + GSM-symbolic generator, CHAMP, MATH and PRM800K loaders."""

import json
from random import Random

import pytest

from pavkit.llm import data
from pavkit.llm.data import (
    DataError,
    Problem,
    champ_first_wrong_steps,
    champ_problems,
    gsm8k_problems,
    gsm_symbolic,
    load_math_jsonl,
    load_prm800k_jsonl,
    load_problems,
    save_problems,
    step_index_at,
)
from pavkit.llm.grading import CORRECT, grade_outcomes
from pavkit.llm.steps import check_steps, join_steps


def write_jsonl(tmp_path, rows, name="p.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_load_problems_round_trip(tmp_path):
    problems = [Problem("a", "What is 2+2?", "4", ("2+2 = 4.", "#### 4")), Problem("b", "Half of 1?", "\\frac12")]
    path = tmp_path / "p.jsonl"
    save_problems(problems, path)
    assert load_problems(path) == problems
    rows = [{"id": 7, "problem": "x", "answer": 18}, "", {"id": "c", "problem": "y", "answer": 2.5,
                                                          "solution": ["a\nb ", "c"]}]
    loaded = load_problems(write_jsonl(tmp_path, rows))
    assert loaded[0] == Problem("7", "x", "18") and loaded[1].answer == "2.5"
    assert loaded[1].solution == ("a b", "c")  # canonical steps, count kept


@pytest.mark.parametrize("rows, where", [
    ([{"id": "a", "problem": "x", "answer": "1"}, {"id": "a", "problem": "y", "answer": "2"}], ":2: id: duplicate"),
    ([{"id": "a", "answer": "1"}], ":1: problem: missing"),
    ([{"id": "a", "problem": "x"}], ":1: answer: missing"),
    ([{"id": "a", "problem": "x", "answer": " "}], ":1: answer: empty"),
    ([{"id": "a", "problem": 3, "answer": "1"}], ":1: problem: must be str"),
    ([{"id": "a", "problem": "x", "answer": True}], ":1: answer: must be"),
    ([{"id": "a", "problem": "x", "answer": "1", "solution": "one step"}], ":1: solution: must be list"),
    ([{"id": "a", "problem": "x", "answer": "1", "solution": ["ok", " "]}], ":1: solution: step 1 is empty"),
    ([{"id": "a", "problem": "x", "answer": "1", "solution": ["ok", 5]}], ":1: solution: step 1 must be a string"),
    (["", '{"id": "a", "problem": "x",'], ":2: not valid JSON"),
    (['["a", "x", "1"]'], ":1: expected a JSON object"),
])
def test_load_problems_errors(tmp_path, rows, where):
    path = write_jsonl(tmp_path, rows)
    with pytest.raises(DataError) as e:
        load_problems(path)
    assert str(e.value).startswith(f"{path}{where}")
    assert isinstance(e.value, ValueError) and e.value.path == str(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        load_problems(tmp_path / "nope.jsonl")


def test_gsm8k_problems():
    problems = gsm8k_problems()
    assert len(problems) == 100 and len({p.id for p in problems}) == 100
    for p in problems:
        check_steps(p.solution)
        assert p.solution[-1] == f"#### {p.answer}" and "<<" not in join_steps(p.solution)
    # The reference solutions grade as correct against their own answers (Rex end to end).
    outcomes = grade_outcomes([join_steps(p.solution) for p in problems], [p.answer for p in problems])
    assert outcomes == [CORRECT] * 100
    benny = next(p for p in problems if p.id == "gsm8k-473")
    assert benny.answer == "10" and benny.problem.startswith("Benny saw a 10-foot shark")


def test_gsm_symbolic_variants():
    variants = gsm_symbolic(150, seed=3)
    assert len(variants) == 150 and len({p.id for p in variants}) == 150
    originals = {p.problem for p in gsm8k_problems()}
    assert sum(p.problem not in originals for p in variants) > 100  # new numbers and names, not copies
    assert len({p.id.split("-")[2] for p in variants}) >= 90  # nearly every template is used
    for p in variants:
        check_steps(p.solution)
        assert "{" not in p.problem and p.solution[-1] == f"#### {p.answer}"
    outcomes = grade_outcomes([join_steps(p.solution) for p in variants], [p.answer for p in variants])
    assert outcomes == [CORRECT] * 150
    assert gsm_symbolic(20, seed=3) == variants[:20]  # seeded
    assert gsm_symbolic(20, seed=4) != variants[:20]
    assert gsm_symbolic(0) == []


def _template(answer_line, solution):
    return data._Template({
        "id_orig": 1, "id_shuffled": 999,
        "question_annotated": "{n, Ann} has {x, 3} apples and buys {y, 4} more. How many?\n\n#init:\n"
                              "- n = sample(names)\n- $x = range(2, 9)\n- $y = range(2, 9)\n\n#conditions:\n"
                              f"- x != y\n\n#answer: {answer_line}\n",
        "answer_annotated": solution,
    })


def test_template_rejects_inconsistent_variants():
    """A variant is kept only when the solution's arithmetic and '#### N' agree with the #answer value."""
    good = _template("x + y", "{n} has {x} + {y} = <<{x}+{y}={x+y}>>{x+y} apples.\n#### {x+y}")
    question, solution, answer = data._variant(good, Random(0), 100)
    assert answer == int(solution.rsplit("#### ", 1)[1]) and "{" not in question
    wrong_answer = _template("x * y", "{n} has {x} + {y} = <<{x}+{y}={x+y}>>{x+y} apples.\n#### {x+y}")
    assert data._variant(wrong_answer, Random(0), 100) is None
    wrong_annotation = _template("x + y", "{n} has <<{x}+{y}={x+y+1}>>{x+y} apples.\n#### {x+y}")
    assert data._variant(wrong_annotation, Random(0), 100) is None
    impossible = _template("x + y", "#### {x+y}")
    impossible.conditions.append(data._parse("x > 100"))
    assert data._variant(impossible, Random(0), 50) is None


def test_template_expressions_are_sandboxed():
    with pytest.raises(ValueError):
        data._eval(data._parse("(1).__class__"), {})
    with pytest.raises(KeyError):
        data._eval(data._parse("__import__('os')"), {})
    with pytest.raises(ValueError):
        data._eval(data._parse("2 ** 100000"), {})


def test_champ():
    problems = champ_problems()
    assert len(problems) == 270 and all(p.answer and p.solution for p in problems)
    first = next(p for p in problems if p.id == "P_Combinatorics_1")
    assert first.answer == "239"
    labels = champ_first_wrong_steps()
    assert len(labels) == 540
    no_mistake = [x for x in labels if x.first_wrong is None]
    assert 0 < len(no_mistake) < 540 and all(x.wrong_text is None for x in no_mistake)
    for x in labels:
        check_steps(x.steps)
        if x.first_wrong is not None:
            assert 0 <= x.first_wrong < len(x.steps)
            # The annotated span starts inside the labelled step (up to whitespace the split removed).
            head = x.wrong_text.strip().split("\n")[0][:20].strip()
            assert head in x.steps[x.first_wrong] or not head


@pytest.mark.parametrize("text, char, step", [
    ("a\nbb\n\nccc", 0, 0), ("a\nbb\n\nccc", 1, 0), ("a\nbb\n\nccc", 2, 1), ("a\nbb\n\nccc", 5, 2),
    ("a\nbb\n\nccc", 6, 2), ("\n\nx", 0, 0), ("x  \n y", 2, 0), ("x\ny", 99, 1),
])
def test_step_index_at(text, char, step):
    assert step_index_at(text, char) == step


def test_load_math_jsonl(tmp_path):
    rows = [{"problem": "Compute $1/2+1/4$.", "solution": "We add.\n\nSo $\\boxed{\\frac{3}{4}}$.",
             "unique_id": "test/algebra/1.json"},
            {"problem": "2+2?", "solution": "It is \\boxed{4}.", "answer": "4"},
            {"problem": "x", "solution": "No box here.", "answer": 7}]
    problems = load_math_jsonl(write_jsonl(tmp_path, rows))
    assert problems[0] == Problem("test/algebra/1.json", rows[0]["problem"], "\\frac{3}{4}",
                                  ("We add.", "So $\\boxed{\\frac{3}{4}}$."))
    assert problems[1].id == "math-2" and problems[1].answer == "4" and problems[2].answer == "7"
    bad = write_jsonl(tmp_path, [rows[0], {"problem": "x", "solution": "no box"}], "bad.jsonl")
    with pytest.raises(DataError, match=r"bad.jsonl:2: solution: no answer"):
        load_math_jsonl(bad)


def _prm_row(steps, answer="5", finish="solution"):
    return {"labeler": "x", "question": {"problem": "What is 2+3?", "ground_truth_answer": answer},
            "label": {"steps": steps, "finish_reason": finish, "total_time": 1}}


def test_load_prm800k_jsonl(tmp_path):
    steps = [
        {"completions": [{"text": "2+3 is\n5.", "rating": 1, "flagged": False}], "human_completion": None,
         "chosen_completion": None},
        {"completions": [{"text": "Bad step.", "rating": -1}, {"text": "So 5.", "rating": 0}],
         "human_completion": None, "chosen_completion": 1},
        {"completions": [{"text": "x", "rating": -1}], "human_completion": {"text": "Answer: 5", "rating": None},
         "chosen_completion": None},
        {"completions": [{"text": "a", "rating": 1}, {"text": "b", "rating": -1}], "human_completion": None,
         "chosen_completion": None},  # the labeller stopped: no completion chosen
    ]
    wrong = [{"completions": [{"text": "Fine.", "rating": 0}], "chosen_completion": 0},
             {"completions": [{"text": "2+3=6", "rating": -1}], "chosen_completion": 0}]
    path = write_jsonl(tmp_path, [_prm_row(steps), _prm_row(wrong, answer=5, finish="found_error")])
    first, second = load_prm800k_jsonl(path)
    assert first.problem == Problem("prm800k-1", "What is 2+3?", "5")
    assert first.steps == ("2+3 is 5.", "So 5.", "Answer: 5") and first.ratings == (1, 0, None)
    assert first.first_wrong is None and first.finish_reason == "solution"
    assert second.steps == ("Fine.", "2+3=6") and second.first_wrong == 1 and second.problem.answer == "5"


@pytest.mark.parametrize("row, where", [
    ({"question": {"ground_truth_answer": "5"}, "label": {"steps": []}}, ":1: question.problem: missing"),
    (_prm_row("oops"), ":1: label.steps: must be list"),
    (_prm_row([{"completions": []}]), ":1: label.steps[0].completions: missing or empty"),
    (_prm_row([{"completions": [{"text": "a", "rating": 2}], "chosen_completion": 0}]),
     ":1: label.steps[0].completions[0].rating: must be -1, 0, 1 or null"),
    (_prm_row([{"completions": [{"text": "a", "rating": 1}], "chosen_completion": 3}]),
     ":1: label.steps[0].chosen_completion: index 3 out of range"),
])
def test_load_prm800k_errors(tmp_path, row, where):
    path = write_jsonl(tmp_path, [row])
    with pytest.raises(DataError) as e:
        load_prm800k_jsonl(path)
    assert str(e.value).startswith(f"{path}{where}")
