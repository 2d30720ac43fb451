"""The model organism: the task generator, the character tokenizer, SFT batches, training, resume and the CLI."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from pavkit.llm.organism import (
    OrganismConfig,
    OrganismTask,
    checkpoint,
    init_state,
    make_problem,
    organism_problems,
    organism_tokenizer,
    pick_roles,
    restore,
    sft_step,
    solution_text,
    training_batch,
)

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

TINY = dict(hidden=16, layers=1, heads=2, intermediate=32, batch=4, eval_problems=4, warmup=2)


def _replay(problem_text: str) -> int:
    """The answer, recomputed from the problem TEXT alone (independent of the generator's bookkeeping)."""
    x = int(re.search(r"has (\d+) ", problem_text).group(1))
    for sentence in problem_text.split(". ")[1:]:
        if m := re.search(r"gets (\d+)", sentence):
            x += int(m.group(1))
        elif m := re.search(r"loses (\d+)", sentence):
            x -= int(m.group(1))
        elif "doubles" in sentence:
            x *= 2
        elif "triples" in sentence:
            x *= 3
    return x


def test_problems_are_correct_and_in_range():
    task = OrganismTask(min_ops=2, max_ops=5)
    for p in organism_problems(300, seed=1, split="train", task=task):
        assert int(p.answer) == _replay(p.problem)
        ops = len(p.solution) - 1
        assert 2 <= ops <= 5 and p.solution[-1] == f"The answer is: {p.answer}"
        x = None
        for step in p.solution[:-1]:  # every step's arithmetic holds and chains from the previous result
            head, rhs = step.split(": ")[1].split(" = ")
            a, op, b = head.split()
            assert x is None or int(a) == x
            x = {"+": int(a) + int(b), "-": int(a) - int(b), "*": int(a) * int(b)}[op]
            assert x == int(rhs) and 0 <= x <= task.max_value
        assert x == int(p.answer)


def test_problems_are_deterministic_extend_and_splits_differ():
    a = organism_problems(20, seed=3, split="test")
    assert a == organism_problems(20, seed=3, split="test")
    assert organism_problems(30, seed=3, split="test")[:20] == a
    assert {p.problem for p in a}.isdisjoint(p.problem for p in organism_problems(20, seed=3, split="train"))
    assert a != organism_problems(20, seed=4, split="test")
    assert all(len(p.solution) == 4 for p in organism_problems(10, seed=0, num_ops=3))
    with pytest.raises(ValueError, match="split"):
        organism_problems(1, split="dev")
    with pytest.raises(ValueError, match="min_ops"):
        OrganismTask(min_ops=4, max_ops=2)


def test_tokenizer_is_character_level_and_round_trips():
    tok = organism_tokenizer()
    for p in organism_problems(20, seed=0):
        text = p.problem + "\n" + solution_text(p)
        ids = tok(text).input_ids
        assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1
        assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.chat_template is None


def test_step_token_spans_on_the_organism_tokenizer():
    from pavkit.llm.steps import step_token_spans

    tok = organism_tokenizer()
    p = organism_problems(1, seed=0)[0]
    ids, spans = step_token_spans(tok, p.problem + "\n", list(p.solution))
    assert len(spans) == len(p.solution)
    for (a, b), step in zip(spans, p.solution, strict=True):
        assert tok.decode(ids[a:b]) == step + "\n"


def test_training_batch_masks_the_prompt():
    tok = organism_tokenizer()
    problems = organism_problems(3, seed=0)
    batch = training_batch(problems, tok)
    for b, p in enumerate(problems):
        n_prompt = len(p.problem) + 2  # BOS + characters + "\n"
        n_total = n_prompt + len(solution_text(p)) + 1  # + EOS
        labels, ids = batch["labels"][b], batch["input_ids"][b]
        assert (labels[:n_prompt] == -100).all() and (labels[n_prompt:n_total] == ids[n_prompt:n_total]).all()
        assert ids[n_total - 1] == tok.eos_token_id and (labels[n_total:] == -100).all()
        assert batch["attention_mask"][b].sum() == n_total


def test_sft_lowers_the_loss_and_resume_is_exact():
    cfg = OrganismConfig(iters=40, lr=1e-2, **TINY)
    state = init_state(cfg)
    first = sft_step(state, cfg)["loss"]
    for _ in range(24):
        last = sft_step(state, cfg)["loss"]
    assert last < 0.7 * first
    saved = checkpoint(state)
    expected = [sft_step(state, cfg)["loss"] for _ in range(3)]
    resumed = restore(cfg, saved)
    assert [sft_step(resumed, cfg)["loss"] for _ in range(3)] == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_pick_roles_by_hand():
    evals = [{"iteration": 0, "accuracy": 0.0}, {"iteration": 100, "accuracy": 0.05},
             {"iteration": 200, "accuracy": 0.12}, {"iteration": 300, "accuracy": 0.3},
             {"iteration": 400, "accuracy": 0.55}, {"iteration": 500, "accuracy": 0.7}]
    assert pick_roles(evals, 0.2, 0.6) == {"base": 300, "weak": 200, "strong": 500}
    # nothing inside the band: the closest to its middle; no earlier weaker one: the earliest trained
    assert pick_roles(evals[:2], 0.2, 0.6) == {"base": 100, "weak": 100, "strong": 100}
    with pytest.raises(ValueError):
        pick_roles(evals[:1], 0.2, 0.6)


def test_grading_without_math_verify_calls_unsettled_pairs_wrong():
    from pavkit.llm.grading import grade_outcomes

    out = grade_outcomes(["The answer is: 50", "The answer is: 5a", "no marker", "The answer is: 49"],
                         ["50"] * 4, strict=True, symbolic=False)
    assert out == ["correct", "wrong", "ungradable", "wrong"]


def test_cli_trains_saves_roles_and_resumes(tmp_path):
    from click.testing import CliRunner

    from pavkit.cli import main
    from pavkit.llm.engines import HFEngine

    out = tmp_path / "org"
    args = ["llm", "organism", "--out", str(out), "--iters", "6", "--eval-every", "3", "--eval-problems", "4",
            "--hidden", "16", "--layers", "1", "--heads", "2", "--intermediate", "32", "--batch", "4", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(metrics["roles"]) == {"base", "weak", "strong"}
    assert sorted(p.name for p in out.glob("ckpt-*")) == ["ckpt-000000", "ckpt-000003", "ckpt-000006"]
    engine = HFEngine.from_path(out / "base", max_new_tokens=8)
    (outs,) = engine.complete([organism_problems(1)[0].problem + "\n"], 2, seed=0)
    assert len(outs) == 2
    records = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == list(range(7))
    again = CliRunner().invoke(main, args)  # resume of a finished run: nothing new
    assert again.exit_code == 0 and len((out / "train.jsonl").read_text().splitlines()) == 7
    changed = CliRunner().invoke(main, args[:-1] + ["--lr", "0.01"])
    assert changed.exit_code == 2 and "lr" in changed.output
    bad = CliRunner().invoke(main, args[:-1] + ["--target", "0.5"])
    assert bad.exit_code == 2 and "--target" in bad.output


def test_make_problem_respects_the_value_cap():
    task = OrganismTask(min_ops=6, max_ops=6, max_value=20, max_operand=5)
    rng = random.Random(0)
    for i in range(200):
        p = make_problem(rng, 6, task, str(i))
        values = [int(s.split(" = ")[1]) for s in p.solution[:-1]]
        assert max(values) <= 20 and min(values) >= 0
    assert np.isclose(len(p.solution), 7)


def test_solve_replays_the_text_and_the_oracle_values_by_hand():
    from pavkit.llm.organism import OracleVerifier, solve

    for p in organism_problems(200, seed=5, split="valid"):
        assert solve(p.problem) == p.solution
    p = organism_problems(1, seed=0, num_ops=2)[0]
    oracle = OracleVerifier(p=0.5)
    right, slip = list(p.solution), [p.solution[0], "gets 1: 0 + 1 = 1", p.solution[2]]
    v_right, v_slip = oracle.prefix_values([p.problem + "\n"] * 2, [right, slip])
    assert v_right.tolist() == [0.125, 0.25, 0.5, 1.0]  # p^(steps left), 1 once solved
    assert v_slip.tolist() == [0.125, 0.25, 0.0, 0.0]  # no recovery after the slip
    assert oracle.values([p.problem + "\n"], [right[:1]]).tolist() == [0.25]
