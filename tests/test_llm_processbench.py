"""ProcessBench-style evaluation (pavkit.llm.processbench): measures against hand-computed arrays, the loaders on
fixture files written here, and `pavkit llm eval-verifier` end to end (the exact checker must score F1 = 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from pavkit.cli import main
from pavkit.llm import processbench as pb


def test_predicted_first_errors_by_hand():
    scores = [np.array([0.9, 0.4, 0.8]), np.array([0.7]), np.array([])]
    got = pb.predicted_first_errors(scores, np.array([0.3, 0.5, 0.75, 0.95]))
    assert got.tolist() == [[-1, -1, -1], [1, -1, -1], [1, 0, -1], [0, 0, -1]]


def test_first_error_f1_by_hand():
    labels = np.array([1, 0, -1, -1])
    m = pb.first_error_f1(np.array([1, 2, -1, 0]), labels)
    assert (m["acc_erroneous"], m["acc_correct"]) == (0.5, 0.5) and m["f1"] == pytest.approx(0.5)
    m = pb.first_error_f1(np.array([[1, 0, -1, -1], [1, 2, 0, 0]]), labels)
    assert m["f1"].tolist() == pytest.approx([1.0, 0.0])
    assert pb.first_error_f1(np.array([-1]), np.array([-1]))["f1"] is None


def test_choose_threshold_separates_when_it_can():
    # errors at steps 1 and 0 score 0.2 and 0.1; every right step scores >= 0.6: any τ in (0.2, 0.6] is perfect
    scores = [np.array([0.9, 0.2]), np.array([0.1, 0.9]), np.array([0.6, 0.7])]
    tau = pb.choose_threshold(scores, np.array([1, 0, -1]))
    assert 0.2 < tau <= 0.6 and tau == pytest.approx(0.4)  # the smallest best candidate: (0.2 + 0.6) / 2
    with pytest.raises(ValueError, match="with an error and solutions without"):
        pb.choose_threshold(scores[:2], np.array([1, 0]))


def test_evaluate_aucs_by_hand():
    sol = [pb.Solution("a", "A", ("x", "y", "z"), 2), pb.Solution("a", "A", ("x", "y"), -1),
           pb.Solution("b", "B", ("x", "y"), 1), pb.Solution("b", "B", ("x",), -1)]
    values = [np.array([0.5, 0.6, 0.9, 0.7]),  # the error (step 2) scores 0.7: below 0.9, above 0.6
              np.array([0.5, 0.8, 0.9]),
              np.array([0.5, 0.3, 0.2]),       # the error (step 1) scores 0.2, below 0.3
              np.array([0.5, 0.4])]
    m = pb.evaluate(values, sol, fraction=0.5, seed=0)
    # scores: solution 0 ranks the error above step 0 (0.7 > 0.6), below step 1: AUC 0.5; solution 2: 1.0
    assert m["first_error_auc"] == {"auc": 0.75, "se": pytest.approx(0.25), "problems": 2}
    # progress: solution 0: steps +0.1, +0.3, error −0.2 → 1.0; solution 2: −0.2 vs error −0.1 → 0.0
    assert m["first_error_auc_progress"]["auc"] == 0.5
    # outcome: problem a: error-free 0.9 vs erroneous 0.7 → 1; b: 0.4 vs 0.2 → 1
    assert m["outcome_auc"]["auc"] == 1.0 and m["outcome_auc"]["problems"] == 2
    assert m["validation_solutions"] == m["test_solutions"] == 2 and m["problems"] == 2 and m["erroneous"] == 2
    assert m["f1"] is not None and 0 <= m["f1"] <= 1


def test_split_problems_keeps_a_problem_together():
    sol = [pb.Solution(str(i // 3), "", ("x",), -1) for i in range(30)]
    val, test = pb.split_problems(sol, 0.3, seed=4)
    assert len(val) == 9 and len(test) == 21
    assert not {sol[i].problem_id for i in val} & {sol[i].problem_id for i in test}


def test_read_processbench_and_its_errors(tmp_path):
    f = tmp_path / "pb.jsonl"
    f.write_text(json.dumps({"id": "gsm8k-0", "generator": "m", "problem": "P", "steps": ["a", "b"], "label": 1})
                 + "\n\n" + json.dumps({"id": "gsm8k-1", "problem": "Q", "steps": ["c"], "label": -1}) + "\n")
    assert pb.read_processbench(f) == [pb.Solution("gsm8k-0", "P", ("a", "b"), 1, "m"),
                                       pb.Solution("gsm8k-1", "Q", ("c",), -1)]
    for line, words in [({"problem": "P", "steps": ["a"]}, ":1: no field 'label'"),
                        ({"problem": "P", "steps": ["a"], "label": 1}, ":1: field 'label' is 1"),
                        ({"problem": "P", "steps": "a", "label": -1}, ":1: field 'steps' has type str"),
                        ({"problem": "P", "steps": ["a"], "label": True}, "field 'label' has type bool")]:
        f.write_text(json.dumps(line) + "\n")
        with pytest.raises(pb.DataError, match=f"{f}{words}" if words.startswith(":") else words):
            pb.read_processbench(f)
    f.write_text("{not json\n")
    with pytest.raises(pb.DataError, match=":1: not JSON"):
        pb.read_processbench(f)


def test_read_prm800k_takes_chosen_completions_up_to_the_first_bad_one(tmp_path):
    def step(*ratings, chosen=None):
        return {"completions": [{"text": f"t{r}", "rating": r} for r in ratings], "chosen_completion": chosen}

    rows = [{"question": {"problem": "P"}, "label": {"steps": [step(1, chosen=0), step(0, -1, chosen=0), step(-1),
                                                               step(1, chosen=0)]}},
            {"question": {"problem": "Q"}, "label": {"steps": [step(1, chosen=0), step(1, chosen=0)]}},
            {"question": {"problem": "R"}, "label": {"steps": [step(1, chosen=0), step(1)]}}]  # stops at step 1
    f = tmp_path / "prm800k.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert pb.read_prm800k(f) == [pb.Solution("P", "P", ("t1", "t0", "t-1"), 2),
                                  pb.Solution("Q", "Q", ("t1", "t1"), -1), pb.Solution("R", "R", ("t1",), -1)]
    f.write_text(json.dumps({"question": {"problem": "P"}, "label": {"steps": [{"chosen_completion": 0}]}}) + "\n")
    with pytest.raises(pb.DataError, match=r":1: label.steps\[0\]: no field 'completions'"):
        pb.read_prm800k(f)


def test_champ_solutions():
    sol = pb.champ_solutions()
    assert len(sol) == 540 and all(s.steps for s in sol)
    assert all(-1 <= s.first_error < len(s.steps) for s in sol) and any(s.first_error == -1 for s in sol)


def _organism_file(tmp_path):
    """A ProcessBench file of organism problems: the worked solution, and copies with a slip at step h."""
    from pavkit.llm.organism import organism_problems, solve

    rows = []
    for i, p in enumerate(organism_problems(12, 3, "test")):
        worked = solve(p.problem)
        h = i % (len(worked) + 1) - 1  # −1 (no slip), 0, 1, …
        steps = list(worked) if h < 0 else [*worked[:h], worked[h] + "1", *worked[h + 1:]]
        rows.append({"id": p.id, "problem": p.problem, "steps": steps, "label": h})
    f = tmp_path / "organism.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def test_eval_verifier_cli_exact_checker_scores_f1_one_and_resumes(tmp_path):
    f = _organism_file(tmp_path)
    out = tmp_path / "ev"
    args = ["llm", "eval-verifier", "--verifier", "organism-oracle", "--data", f"processbench:{f}",
            "--prompt-format", "plain", "--out", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout.strip().splitlines()[-1])
    assert m["f1"] == 1.0 and m["acc_erroneous"] == m["acc_correct"] == 1.0 and m["solutions"] == 12
    assert m["first_error_auc"]["auc"] == 1.0 and (out / "steps.png").stat().st_size > 0
    assert json.loads((out / "config.json").read_text())["data"] == f"processbench:{f.resolve()}"
    scores = (out / "scores.jsonl").read_text()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and (out / "scores.jsonl").read_text() == scores
    bad = CliRunner().invoke(main, [*args, "--fraction", "0.25"])
    assert bad.exit_code == 2 and "'fraction'" in bad.output
    first = CliRunner().invoke(main, [*args[:-3], "--out", str(tmp_path / "ev5"), "--limit", "5", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.strip().splitlines()[-1])["solutions"] == 5
    assert [r["index"] for r in map(json.loads, (tmp_path / "ev5" / "scores.jsonl").read_text().splitlines())] == \
        list(range(5))


@pytest.mark.parametrize("args, words", [
    (["--data", "processbench:/no/such.jsonl"], "--data: /no/such.jsonl: no such file"),
    (["--data", "mmlu"], "--data: expected one of processbench:FILE"),
    (["--data", "organism:test:0:5"], "organism: data is sampled from a policy"),
    (["--data", "organism:nope:0:5"], "expected organism:SPLIT:SEED:COUNT"),
])
def test_eval_verifier_cli_refuses_bad_data(tmp_path, args, words):
    result = CliRunner().invoke(main, ["llm", "eval-verifier", "--verifier", "organism-oracle", *args,
                                       "--out", str(tmp_path / "ev")])
    assert result.exit_code == 2 and words in result.output, result.output
    assert not (tmp_path / "ev").exists()


@pytest.mark.slow
def test_eval_verifier_samples_organism_solutions_from_a_policy(tiny_model_dir, tmp_path):
    """organism: data through a real (tiny) policy: every sampled solution labelled by the exact checker."""
    from pavkit.llm.organism import organism_problems, solve
    from pavkit.runs import read_records

    out = tmp_path / "ev"
    result = CliRunner().invoke(main, ["llm", "eval-verifier", "--verifier", "organism-oracle", "--data",
                                       "organism:test:0:6", "--policy", str(tiny_model_dir), "--samples", "2",
                                       "--max-new-tokens", "24", "--prompt-format", "plain", "--out", str(out),
                                       "--json"])
    assert result.exit_code == 0, result.output
    problems = {p.id: p for p in organism_problems(6, 0, "test")}
    for r in read_records(out, "scores.jsonl"):
        worked = solve(problems[r["problem_id"]].problem)
        v = np.array(r["values"])
        # the exact checker's value is 0 from the first error on and positive before it
        if r["first_error"] >= 0:
            assert v[r["first_error"] + 1] == 0 and (v[:r["first_error"] + 1] > 0).all()
        else:
            assert (v > 0).all() and len(v) - 1 <= len(worked)
