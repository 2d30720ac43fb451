"""LLM test-time search: beam search and the pool, checked by hand with a scripted engine and scripted verifiers,
then end to end through `pavkit llm search` on the tiny model with real Verifier objects.

The scripted engine and verifiers (``TreeEngine``, ``TableVerifier``) stand in for models only where the test
checks the code around them (which beams are kept, what is cached, the compute accounting, the records).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from pavkit.llm.engines import Continuation
from pavkit.llm.search import (
    BeamScorer,
    BeamState,
    SearchConfig,
    TokenCounter,
    Verifiers,
    beam_problem,
    iter_search,
    majority_pick,
    pending_units,
    pool_problem,
    run_beam,
    verifier_cost,
    vote_key,
)
from pavkit.runs import derive_seed
from pavkit.types import SearchResult

PROMPT = "Q: what is 3+4?\n"


class WordTokenizer:
    """Tokens = whitespace-separated words (+1 BOS with special tokens): counts easy to do by hand."""

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": text.split() + (["<s>"] if add_special_tokens else [])}


class Stats:
    def __init__(self):
        self.forward_tokens = 0
        self.trajectories = 0


class TableVerifier:
    """values() from a table keyed by the first word of each step; logs every state it is asked to score."""

    tokenizer = WordTokenizer()

    def __init__(self, table):
        self.table, self.scored, self.calls, self.stats = table, [], 0, Stats()

    def _key(self, steps):
        return tuple(s.split()[0] for s in steps)

    def prefix_values(self, prompts, steps):
        self.calls += 1
        for p, s in zip(prompts, steps, strict=True):
            assert p == PROMPT
            self.scored.append(self._key(s))
            self.stats.forward_tokens += len(p.split()) + 1 + sum(len(x.split()) for x in s)
            self.stats.trajectories += 1
        return [np.array([self.table[self._key(s[:h])] for h in range(len(s) + 1)]) for s in steps]

    def values(self, prompts, steps):  # one call of prefix_values, as the real Verifier does
        return np.array([v[-1] for v in self.prefix_values(prompts, steps)])


class TreeEngine:
    """extend(): the scripted children of each prefix (by its steps' first words), c of them, in order."""

    delimiter = "\n"

    def __init__(self, tree, pool=()):
        self.tree, self.pool, self.calls = tree, list(pool), []

    def extend(self, prefixes, c, seed):
        self.calls.append((list(prefixes), c, seed))
        out = []
        for p in prefixes:
            assert p.startswith(PROMPT)
            key = tuple(s.split()[0] for s in p[len(PROMPT):].split("\n") if s)
            kids = self.tree[key]
            assert len(kids) == c
            out.append([Continuation(t, n, f) for t, n, f in kids])
        return out

    def complete(self, prefixes, n, seed):
        assert list(prefixes) == [PROMPT] and n == len(self.pool)
        return [[Continuation(t, k, True) for t, k in self.pool]]


class Prob:
    id, problem, answer = "p0", "what is 3+4?", "7"


# The paper's Fig. 2(a) (pavkit/toy/fig2.py) one level below a root: s1, s2 (and a worse s3) are the depth-1
# states, a11…a23 their finished children; only a21 ends with the right answer.
FIG2_VALUES = {(): 0.5, ("s1",): 0.60, ("s2",): 0.30, ("s3",): 0.10,
               ("s1", "a11"): 0.55, ("s1", "a12"): 0.50, ("s1", "a13"): 0.70,
               ("s2", "a21"): 0.50, ("s2", "a22"): 0.35, ("s2", "a23"): 0.25}
FIG2_TREE = {(): [("s1 add", 2, False), ("s2 mul", 2, False), ("s3 sub", 2, False)],
             ("s1",): [(f"a1{i} The answer is {a}", 5, True) for i, a in ((1, 3), (2, 5), (3, 6))],
             ("s2",): [(f"a2{i} The answer is {a}", 5, True) for i, a in ((1, 7), (2, 8), (3, 9))]}


def fig2_beam(alpha, prover="bok:1"):
    pqv = TableVerifier(FIG2_VALUES)
    engine = TreeEngine(FIG2_TREE)
    out = run_beam(PROMPT, engine, Verifiers(orm=pqv, pqv=pqv), width=2, c=3, max_steps=4, alpha=alpha,
                   prover=prover, seed_of=lambda d: 100 + d)
    return out, engine, pqv


def names(states):
    return [s.steps[-1].split()[0] for s in states]


def test_fig2a_beam_q_keeps_a13_and_a11():
    out, engine, pqv = fig2_beam(alpha=0.0)
    assert names(out.beams) == ["a13", "a11"] and names(out.candidates) == ["a13", "a11"]
    np.testing.assert_allclose(out.q_pi, [0.70, 0.55])
    assert out.pick.steps == ("s1 add", "a13 The answer is 6") and out.pick.finished
    # one extend call per depth for all unfinished beams, with the depth's seed
    assert [(len(p), c, s) for p, c, s in engine.calls] == [(1, 3, 101), (2, 3, 102)]
    # one verifier call per depth; the root is not needed with α = 0; no state is scored twice
    assert pqv.calls == 2 and len(pqv.scored) == len(set(pqv.scored)) == 9


@pytest.mark.parametrize("alpha", [3.0, 10.0])
def test_fig2a_beam_pav_with_mu_equal_pi_keeps_a21(alpha):
    out, engine, pqv = fig2_beam(alpha=alpha)  # bok:1: Q^μ = Q^π, the figure's μ = π
    assert set(names(out.beams)) == {"a13", "a21"}
    # the final pick is by Q^π (PQV as ORM): a13 (0.70) over a21 (0.50)
    assert names(out.candidates) == ["a13", "a21"]
    assert pqv.calls == 3 and len(pqv.scored) == len(set(pqv.scored)) == 10  # root + 3 + 6, each once


def test_fig2a_records_any_correct_only_for_pav():
    tree_engine = TreeEngine(FIG2_TREE)
    pqv = TableVerifier(FIG2_VALUES)
    cfg = SearchConfig(policy="m", orm="o", pqv="q", prover="bok:1", methods=("beam-q", "beam-pav"), ns=(2,),
                       alpha=3.0, c=3, max_steps=4, pool=2)
    q = beam_problem(Prob(), 0, PROMPT, tree_engine, Verifiers(pqv, pqv), cfg, "beam-q", 2)
    pav = beam_problem(Prob(), 0, PROMPT, tree_engine, Verifiers(pqv, pqv), cfg, "beam-pav", 2)
    assert (q.correct, q.any_correct) == (False, False)
    assert (pav.correct, pav.any_correct) == (False, True)  # a21 (answer 7) was kept, but a13 is picked
    assert q.response == "s1 add\na13 The answer is 6" and q.steps == ("s1 add", "a13 The answer is 6")
    assert (q.alpha, q.prover, pav.alpha, pav.prover) == (0.0, "", 3.0, "bok:1")
    assert SearchResult.from_json(json.loads(json.dumps(pav.to_json()))) == pav


def test_bok_prover_score_by_hand():
    pqv = TableVerifier({(): 0.2, ("x",): 0.5})
    scorer = BeamScorer(PROMPT, Verifiers(pqv, pqv), alpha=0.5, prover="bok:4",
                        counter=TokenCounter(WordTokenizer()))
    score = scorer.score([BeamState(())], [BeamState(("x y",))])
    # Q^π(child) + α·([1-(1-0.5)^4] - [1-(1-0.2)^4]) = 0.5 + 0.5·(0.9375 - 0.5904)
    np.testing.assert_allclose(score, [0.5 + 0.5 * (0.9375 - 0.5904)])
    assert scorer.models == 1


# A 2-step example for the compute accounting: width 1, C = 2.
TWO_STEP_VALUES = {(): 0.3, ("x",): 0.6, ("z",): 0.4, ("x", "The"): 0.9}
TWO_STEP_TREE = {(): [("x y", 3, False), ("z", 2, False)],
                 ("x",): [("The answer is 7", 5, True), ("", 1, True)]}


@pytest.mark.parametrize("alpha,prover,models", [(0.0, "bok:4", 1), (0.5, "bok:4", 1), (0.5, "model:qmu", 2)])
def test_compute_accounting_by_hand(alpha, prover, models):
    pqv, qmu = TableVerifier(TWO_STEP_VALUES), TableVerifier({k: v / 2 for k, v in TWO_STEP_VALUES.items()})
    out = run_beam(PROMPT, TreeEngine(TWO_STEP_TREE), Verifiers(pqv, pqv, qmu=qmu), width=1, c=2, max_steps=3,
                   alpha=alpha, prover=prover, seed_of=lambda d: d)
    assert out.pick.steps == ("x y", "The answer is 7")
    # policy: 3 + 2 (depth 1) + 5 + 1 (depth 2; the empty finished child still cost its EOS token)
    assert out.generated_tokens == 11
    # verifier: prompt "Q: what is 3+4?" = 4 words + BOS = 5; new steps "x y" 2, "z" 1, "The answer is 7" 4; the
    # empty finished child is its parent's text (cached, free): per model 5 + 2 + 1 + 4 = 12
    assert out.verifier_tokens == models * 12 == verifier_cost(5, [2, 1, 4], models)
    # what the scripted verifiers actually ran: each scored state in full (+ the root when α > 0)
    full = {("x y",): 5 + 2, ("z",): 5 + 1, ("x y", "The answer is 7"): 5 + 6}
    expected = sum(full.values()) + (5 if alpha > 0 else 0)
    assert out.forward_tokens == expected * (2 if models == 2 else 1)


def test_verifier_cost_and_token_counter():
    assert verifier_cost(10, [1, 2, 3]) == 16 and verifier_cost(10, [], models=2) == 20
    with pytest.raises(ValueError):
        verifier_cost(-1, [])
    counter = TokenCounter(WordTokenizer(), "\n")
    assert counter.prompt("a b c") == 4 and counter.steps(["a b", "c"]) == 3


def test_majority_pick_and_vote_keys():
    assert majority_pick(["a", "b", "b", "a"]) == 0  # tie: the answer seen first
    assert majority_pick(["a", "b", "b"]) == 1
    assert majority_pick([None, None]) is None and majority_pick([None, "c"]) == 1
    assert vote_key("1,000") == vote_key("1000.0") == vote_key("$1000") != vote_key("999")
    assert vote_key("\\frac{1}{2}") == vote_key(" \\frac{1}{2} ") and vote_key(None) is None and vote_key(" ") is None


POOL = [("Step one\nThe answer is 7", 6), ("The answer is 3", 4), ("I give up", 3), ("so 7", 2)]


def test_pool_record_by_hand():
    values = {(): 0.0, ("Step",): 0.1, ("Step", "The"): 0.9, ("The",): 0.4, ("I",): 0.2, ("so",): 0.3}
    orm, pqv = TableVerifier(values), TableVerifier({k: 1 - v for k, v in values.items()})
    cfg = SearchConfig(policy="m", orm="o", pqv="q", methods=("bon-orm", "majority"), ns=(2, 4), pool=4)
    rec = pool_problem(Prob(), 3, PROMPT, TreeEngine({}, POOL), Verifiers(orm, pqv), cfg)
    assert rec["problem_index"] == 3 and rec["problem_id"] == "p0" and rec["answer"] == "7"
    assert rec["correct"] == [True, False, False, True]
    assert rec["extracted"] == ["7", "3", None, "7"] and rec["vote_keys"][0] == rec["vote_keys"][3]
    assert rec["orm"] == [0.9, 0.4, 0.2, 0.3] and rec["pqv"] == pytest.approx([0.1, 0.6, 0.8, 0.7])
    # every prefix's Q̂^π, from the same single call: s_1 (the prompt) first, the whole response last
    assert rec["pqv_steps"] == [pytest.approx(v) for v in ([1.0, 0.9, 0.1], [1.0, 0.6], [1.0, 0.8], [1.0, 0.7])]
    assert "logprob_mean" not in rec  # no likelihood scorer given
    assert rec["num_tokens"] == [6, 4, 3, 2] and rec["generated_tokens"] == 15
    assert rec["prompt_tokens"] == 5 and rec["verifier_tokens"] == [6, 4, 3, 2]
    assert rec["forward_tokens"] == orm.stats.forward_tokens + pqv.stats.forward_tokens
    assert orm.calls == pqv.calls == 1 and rec["seed"] == derive_seed(0, 3, 0)


def test_seeds_are_pure_and_distinct():
    assert derive_seed(0, 1, 1, 4, 2) == derive_seed(0, 1, 1, 4, 2)
    assert len({derive_seed(0, i, 1, n, d) for i in range(3) for n in (2, 4) for d in (1, 2)}) == 12


def test_pending_units_and_iter_search_skip_done():
    cfg = SearchConfig(policy="m", orm="o", pqv="q", methods=("bon-orm", "beam-q", "beam-pav"), ns=(1, 2), pool=4,
                       prompt_format="plain", prover="bok:1", c=3, max_steps=4)
    units = pending_units(2, cfg, done_pool={0}, done_search={(0, "beam-q", 1), (1, "beam-pav", 2)})
    assert units == [(0, "beam-q", 2), (0, "beam-pav", 1), (0, "beam-pav", 2), (1, "pool", 4),
                     (1, "beam-q", 1), (1, "beam-q", 2), (1, "beam-pav", 1)]
    only_beam = SearchConfig(policy="m", orm="o", pqv="q", methods=("beam-q",), ns=(8,), pool=2)
    assert pending_units(1, only_beam, (), ()) == [(0, "beam-q", 8)]  # no pool without pool methods

    class Engine(TreeEngine):
        tokenizer = None

    pqv = TableVerifier(FIG2_VALUES)
    problem = Prob()
    problem.problem = PROMPT[:-1]  # plain prompt format: problem + delimiter = PROMPT
    got = list(iter_search([problem], Engine(FIG2_TREE), Verifiers(pqv, pqv), SearchConfig(
        policy="m", orm="o", pqv="q", methods=("beam-q",), ns=(1, 2), pool=2, prompt_format="plain", c=3),
        done_search={(0, "beam-q", 1)}))
    assert [(kind, r["method"], r["n"]) for kind, r in got] == [("search", "beam-q", 2)]


def test_config_validation():
    base = {"policy": "m", "orm": "o", "pqv": "q"}
    for bad in ({"methods": ("beam-x",)}, {"ns": (0,)}, {"ns": (256,), "pool": 128}, {"prover": "pi"},
                {"prover": "temp:0.5"}, {"alpha": -1.0}, {"c": 0}):
        with pytest.raises(ValueError):
            SearchConfig(**base, **bad)
    assert SearchConfig(**base, methods=("beam-q",), ns=(256,), pool=128).ns == (256,)  # no pool methods
    assert SearchConfig(**base).to_json()["methods"][0] == "bon-orm"


# ---------------------------------------------------------------------------------------------------------------
# End to end with the real tiny model and real Verifier objects (contract A), through the CLI.


@pytest.fixture
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _save_verifier(base: Path, out: Path, seed: int) -> Path:
    """An untrained verifier (contract A's init_verifier: the tiny LM's backbone, a random head), saved."""
    import torch

    from pavkit.llm.verifier import init_verifier

    torch.manual_seed(seed)
    model, tokenizer = init_verifier(base, device="cpu")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pavkit.llm.verifier") is None,
                    reason="pavkit/llm/verifier.py (the Verifier the CLI loads) is not there")
def test_search_cli_end_to_end_on_the_tiny_model(tiny_model_dir, tmp_path, one_thread):
    from click.testing import CliRunner

    from pavkit.cli import main
    from pavkit.runs import read_records

    orm = _save_verifier(tiny_model_dir, tmp_path / "orm", 0)
    pqv = _save_verifier(tiny_model_dir, tmp_path / "pqv", 1)
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"q{i}", "problem": f"Q: What is {a}+{b}*2?", "answer": a + 2 * b})
                                + "\n" for i, (a, b) in enumerate([(3, 4), (5, 1)])))
    out = tmp_path / "run"
    args = ["llm", "search", "--policy", str(tiny_model_dir), "--orm", str(orm), "--pqv", str(pqv),
            "--problems", str(problems), "--methods", "bon-orm,bon-pav,majority,pass,beam-q,beam-pav",
            "--n", "1,2", "--pool", "4", "--c", "2", "--max-steps", "3", "--max-step-tokens", "8",
            "--max-new-tokens", "24", "--prompt-format", "plain", "--seed", "5", "--out", str(out),
            "--threads", "1", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(summary["accuracy"]) == {"bon-orm", "bon-pav", "majority", "pass", "beam-q", "beam-pav"}
    assert set(summary["accuracy"]["beam-pav"]) == {"1", "2"} and summary["seconds"] >= 0
    pool, search = read_records(out, "pool.jsonl"), read_records(out, "search.jsonl")
    assert [r["problem_index"] for r in pool] == [0, 1] and len(search) == 2 * 2 * 2
    for r in pool:
        assert len(r["responses"]) == len(r["orm"]) == len(r["pqv"]) == len(r["verifier_tokens"]) == 4
        assert all(0 <= v <= 1 for v in r["orm"] + r["pqv"]) and r["prompt_tokens"] > 0
    for r in search:
        SearchResult.from_json(r)
        assert r["generated_tokens"] > 0 and r["verifier_tokens"] > 0
        # A search whose every proposal was dropped (an immediate delimiter) scored nothing: it is charged the
        # prompt (verifier_tokens) but ran no verifier (forward_tokens 0); otherwise it ran at least its charge.
        assert r["forward_tokens"] >= r["verifier_tokens"] or (not r["steps"] and r["forward_tokens"] == 0)
        assert len(r["steps"]) <= 3 and r["response"] == "\n".join(r["steps"]) and r["c"] == 2
        assert r["alpha"] == (0.5 if r["method"] == "beam-pav" else 0.0)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == summary["accuracy"] and metrics["problems"] == 2

    # rerun: nothing new, identical files; more widths only add records; a changed setting is refused
    before = (out / "search.jsonl").read_text(), (out / "pool.jsonl").read_text()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert ((out / "search.jsonl").read_text(), (out / "pool.jsonl").read_text()) == before
    wider = CliRunner().invoke(main, [*args, "--methods", "beam-q", "--n", "1,2,3"])
    assert wider.exit_code == 0, wider.output
    added = read_records(out, "search.jsonl")[len(search):]
    assert (out / "search.jsonl").read_text().startswith(before[0])
    assert [(r["problem_index"], r["method"], r["n"]) for r in added] == [(0, "beam-q", 3), (1, "beam-q", 3)]
    bad = CliRunner().invoke(main, [*args, "--alpha", "0.9"])
    assert bad.exit_code == 2 and "'alpha'" in bad.output and "0.9" in bad.output


def test_cli_search_resume_drops_a_cut_last_line_and_parses_problem_specs(tmp_path):
    from pavkit.drivers import problems_from_spec, search_done
    from pavkit.runs import UserInputError

    good = json.dumps({"problem_index": 0, "method": "beam-q", "n": 2}) + "\n"
    (tmp_path / "search.jsonl").write_text(good + '{"problem_index": 1, "meth')
    (tmp_path / "pool.jsonl").write_text(json.dumps({"problem_index": 3}) + "\n")
    assert search_done(tmp_path) == ({3}, {(0, "beam-q", 2)})
    assert (tmp_path / "search.jsonl").read_text() == good  # the cut line is gone, so appends stay valid JSONL
    for bad in ("organism:x:3", "organism:1", "organism:test:0:0", "organism:0:3", "organism:dev:0:3",
                str(tmp_path / "missing.jsonl")):
        with pytest.raises(UserInputError) as e:  # the CLI prints it as one line, exit 2
            problems_from_spec(bad)
        assert str(e.value).startswith("--problems")
    problems, source = problems_from_spec("organism:test:0:3")
    assert len(problems) == 3 and source == "organism:test:0:3" and all(p.answer for p in problems)


def test_generic_beam_search_batched_expand_matches_per_state_expand():
    from pavkit.search import beam_search

    def expand(s):
        return [s + "a", s + "b"]

    def score(parents, children):
        return np.array([c.count("a") - 0.1 * len(p) for p, c in zip(parents, children, strict=True)])

    batches = []

    def expand_all(states):
        batches.append(len(states))
        return [expand(s) for s in states]

    done = lambda s: s.endswith("bb")  # noqa: E731
    one = beam_search([""], expand, score, width=3, max_steps=4, is_done=done)
    many = beam_search([""], None, score, width=3, max_steps=4, is_done=done, expand_all=expand_all)
    assert (one.beams, one.proposals, one.scored) == (many.beams, many.proposals, many.scored)
    np.testing.assert_allclose(one.scores, many.scores)
    assert batches == [1, 2, 3, 3]  # one call per round, with every unfinished beam
    with pytest.raises(ValueError):
        beam_search([""], None, score, width=1, max_steps=1, expand_all=lambda states: [])
    with pytest.raises(ValueError):
        beam_search([""], None, score, width=1, max_steps=1)
