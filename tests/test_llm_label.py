"""Monte Carlo progress labels: bookkeeping with a scripted engine, then labelling for real (tiny model, SmolLM2).

The scripted engine (``ScriptedEngine``) only stands in for the model where the test checks the code around it
(record format, exact values from known success counts, prefix sharing, first-pit cuts, resume logic,
buckets). Everything that labels with a model runs the real HFEngine, grading and CLI.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pavkit.cli import main
from pavkit.estimators import bok
from pavkit.llm.engines import Continuation
from pavkit.llm.export import to_trl, trl_example
from pavkit.llm.label import (
    STAGE_SEEDS,
    LabelConfig,
    balanced_buckets,
    config_mismatch,
    iter_labels,
    label_problem,
    prefix_table,
    record_line,
    scan_labels,
)
from pavkit.llm.steps import split_steps
from pavkit.runs import derive_seed

RIGHT, WRONG, NOANSWER = "The answer is: 7", "The answer is: 3", "I do not know"


class P:  # the fields label_problem reads from a Problem
    def __init__(self, id, problem, answer):
        self.id, self.problem, self.answer = id, problem, answer


# Success fraction of a completion from each prefix (by its steps), and the scripted seed responses.
FRACTION = {(): 0.5, ("a",): 0.75, ("a", "b"): 1.0, ("a", "x"): 0.0, ("a", "x", "y"): 0.0}
SEEDS = ["a\nb\n" + RIGHT, "a\nx\ny\n" + WRONG]


SEED_CALLS = {derive_seed(base, i, STAGE_SEEDS) for base in range(4) for i in range(10)}


class ScriptedEngine:
    """complete(): the scripted seeds on a seed-stage call; otherwise continuation j of n is right iff j < f·n."""

    tokenizer = None

    def __init__(self, prompt):
        self.prompt, self.calls = prompt, []

    def complete(self, prefixes, n, seed):
        self.calls.append((list(prefixes), n, seed))
        if seed in SEED_CALLS:
            assert list(prefixes) == [self.prompt] and n == len(SEEDS)
            return [[Continuation(t, 5, True) for t in SEEDS]]
        out = []
        for p in prefixes:
            assert p.startswith(self.prompt)
            steps = tuple(s for s in p[len(self.prompt):].split("\n") if s)
            f = FRACTION[steps]
            out.append([Continuation(RIGHT if j < f * n else (NOANSWER if steps == ("a", "x") and j % 2 else WRONG),
                                     3, True) for j in range(n)])
        return out


def config(**kw):
    base = {"model": "m", "prover": "bok:4", "problems": "p", "problems_sha256": "0", "n_cov": 2, "n_mc": 4,
            "prompt_format": "plain"}
    return LabelConfig(**{**base, **kw})


def test_parse_prover():
    from pavkit.provers import LABEL_PROVERS
    from pavkit.provers import parse_prover as parse

    def parse_prover(spec):
        return parse(spec, LABEL_PROVERS)

    assert parse_prover("bok:4").k == 4 and parse_prover("pi").kind == "pi"
    assert parse_prover("temp:0.70").spec == "temp:0.7" and parse_prover("temp:2").needs_rollouts
    assert parse_prover("model:/x/y").path == "/x/y" and not parse_prover("bok:1").needs_rollouts
    for bad in ("bok:0", "bok:x", "temp:0", "temp:-1", "model:", "best", "pi:2"):
        with pytest.raises(ValueError):
            parse_prover(bad)


def test_derive_seed_is_a_pure_function():
    assert derive_seed(0, 3, 2) == derive_seed(0, 3, 2)
    assert len({derive_seed(b, i, s) for b in range(2) for i in range(5) for s in range(4)}) == 40


def test_record_values_counts_and_prefix_sharing():
    eng = ScriptedEngine("Q\n")
    res = label_problem(P("q1", "Q", "7"), 5, eng, config())
    r0, r1 = res.records
    # one seed call + ONE Monte Carlo call holding each distinct non-terminal prefix once (s_1 shared)
    assert len(eng.calls) == 2 and eng.calls[1][1] == 4
    assert len(eng.calls[1][0]) == 5 and res.rollouts == 2 + 5 * 4
    assert r0["steps"] == ["a", "b", RIGHT] and r0["outcome"] is True and r1["outcome"] is False
    assert r0["v_pi"] == [0.5, 0.75, 1.0, 1.0] and r0["n_pi"] == [4, 4, 4, 0]  # finished: exact last value
    assert r1["v_pi"] == [0.5, 0.75, 0.0, 0.0, 0.0] and r1["n_pi"] == [4, 4, 4, 4, 0]
    assert r1["ungradable"] == 2  # the two answerless completions from ("a", "x")
    for r in res.records:
        v, n = np.array(r["v_pi"]), np.array(r["n_pi"])
        est = n > 0
        np.testing.assert_allclose(np.array(r["se_pi"])[est], np.sqrt(v * (1 - v) / np.maximum(n, 1))[est])
        assert np.all(np.array(r["se_pi"])[~est] == 0)
        np.testing.assert_allclose(r["v_mu"], bok(v, 4))
        np.testing.assert_allclose(r["se_mu"], 4 * (1 - v) ** 3 * np.array(r["se_pi"]))
        assert r["n_mu"] == r["n_pi"] and len(r["v_mu"]) == len(r["steps"]) + 1
        assert r["provenance"]["prover"] == "bok:4" and r["provenance"]["n_mc"] == 4
        assert (r["problem_id"], r["problem_index"], r["first_pit"], r["screen"]) == ("q1", 5, None, None)
    assert json.loads(record_line(r0)) == r0


def test_prover_pi_and_separate_prover_engine():
    eng = ScriptedEngine("Q\n")
    r = label_problem(P("q", "Q", "7"), 0, eng, config(prover="pi")).records[0]
    assert r["v_mu"] == r["v_pi"] and r["se_mu"] == r["se_pi"]
    mu = ScriptedEngine("Q\n")
    res = label_problem(P("q", "Q", "7"), 0, ScriptedEngine("Q\n"), config(prover="temp:0.5"), prover_engine=mu)
    assert len(mu.calls) == 1 and len(mu.calls[0][0]) == 5  # one call, every distinct prefix
    assert res.rollouts == 2 + 2 * 5 * 4
    assert res.records[1]["n_mu"] == [4, 4, 4, 4, 0]
    with pytest.raises(ValueError, match="prover engine"):
        label_problem(P("q", "Q", "7"), 0, ScriptedEngine("Q\n"), config(prover="temp:0.5"))


def test_first_pit_cuts_wrong_seeds_at_the_first_zero():
    eng = ScriptedEngine("Q\n")
    r0, r1 = label_problem(P("q", "Q", "7"), 0, eng, config(first_pit=True, pit_screen=2)).records
    # screening call over every prefix, then the Monte Carlo call over the kept ones only
    assert [c[1] for c in eng.calls] == [2, 2, 4]
    assert r1["first_pit"] == 1 and r1["steps"] == ["a", "x"] and r1["num_seed_steps"] == 4
    assert r1["v_pi"] == [0.5, 0.75, 0.0] and r1["n_pi"] == [4, 4, 4]  # cut prefix: estimated, not terminal
    assert r1["screen"]["v"] == [0.5, 1.0, 0.0, 0.0, 0.0] and r1["screen"]["n"] == [2, 2, 2, 2, 0]
    assert r0["first_pit"] is None and r0["steps"] == ["a", "b", RIGHT]  # correct seeds keep everything
    assert sorted(map(len, (c[0] for c in eng.calls[1:]))) == [4, 5]


def test_scan_labels_drops_only_a_cut_last_line():
    recs = [{"problem_index": 0, "seed_index": j, "x": "é"} for j in range(3)]
    data = "".join(record_line(r) for r in recs).encode()
    assert scan_labels(data) == (recs, len(data))
    cut = data[:-7]
    got, valid = scan_labels(cut)
    assert got == recs[:2] and cut[:valid].count(b"\n") == 2 and cut[:valid].endswith(b"\n")
    assert scan_labels(data[:-1])[0] == recs[:2]  # a complete JSON object without its newline is still cut
    assert scan_labels(b"") == ([], 0)
    with pytest.raises(ValueError, match=":2:"):
        scan_labels(record_line(recs[0]).encode() + b'{"problem_index": 0, oops\n' + record_line(recs[2]).encode())
    with pytest.raises(ValueError, match="appears twice"):
        scan_labels(data + record_line(recs[0]).encode())


def test_config_mismatch_names_the_field():
    cfg = config()
    saved = cfg.to_json()
    assert config_mismatch(saved, cfg) is None
    assert config_mismatch({**saved, "pavkit_version": "0.0", "problems": "elsewhere"}, cfg) is None
    assert "'n_mc'" in config_mismatch({**saved, "n_mc": 8}, cfg)
    assert "'first_pit'" in config_mismatch({k: v for k, v in saved.items() if k != "first_pit"}, cfg)


def test_iter_labels_skips_done_keys_and_recomputes_partial_problems():
    probs = [P(f"q{i}", "Q", "7") for i in range(3)]
    full = [r for recs, _ in iter_labels(probs, ScriptedEngine("Q\n"), config()) for r in recs]
    assert [(r["problem_index"], r["seed_index"]) for r in full] == [(i, j) for i in range(3) for j in range(2)]
    done = {(0, 0), (0, 1), (1, 0)}
    eng = ScriptedEngine("Q\n")
    out = list(iter_labels(probs, eng, config(), done=done))
    assert out[0] == ([], 0) and [r["seed_index"] for r in out[1][0]] == [1]
    assert [r for recs, _ in out for r in recs] == full[3:]
    assert len(eng.calls) == 4  # problem 0 skipped; 1 (partly done) recomputed in full; 2 computed


def test_balanced_buckets():
    values = np.array([0.0, 0.1, 0.2, 0.3, 0.9, 0.6, 0.49, 0.5])
    idx = balanced_buckets(values, seed=0)
    assert len(idx) == 6 and len(set(idx)) == 6
    assert (values[idx] < 0.5).sum() == 3 == (values[idx] >= 0.5).sum()
    up = balanced_buckets(values, seed=0, mode="up")
    assert len(up) == 10 and (values[up] >= 0.5).sum() == 5 and set(np.flatnonzero(values < 0.5)) <= set(up)
    np.testing.assert_array_equal(idx, balanced_buckets(values, seed=0))
    with pytest.warns(UserWarning, match="empty"):
        assert sorted(balanced_buckets(np.zeros(4), seed=1)) == [0, 1, 2, 3]
    rec, pos, val = prefix_table([{"v_pi": [0.1, 0.2]}, {"v_pi": [0.3, 0.4, 0.5]}])
    assert rec.tolist() == [0, 0, 1, 1, 1] and pos.tolist() == [0, 1, 0, 1, 2] and val.tolist()[-1] == 0.5


def test_trl_export_labels_are_step_values():
    r = {"problem": "Q", "prompt": "Q\n", "steps": ["a", "b"], "v_pi": [0.5, 0.25, 1.0], "v_mu": [0.9, 0.8, 1.0]}
    assert trl_example(r) == {"prompt": "Q\n", "completions": ["a", "b"], "labels": [0.25, 1.0]}
    assert trl_example(r, value="mu", prompt_field="problem") == {"prompt": "Q", "completions": ["a", "b"],
                                                                  "labels": [0.8, 1.0]}
    zero = {**r, "v_pi": [0.5, 0.0, 0.25]}
    assert trl_example(zero, labels="hard-any")["labels"] == [False, True]
    assert trl_example(zero, labels="threshold:0.25")["labels"] == [False, True]
    assert trl_example(zero, labels="threshold:0.3")["labels"] == [False, False]
    for bad in ("hard", "threshold:", "threshold:1.5", "threshold:x"):
        with pytest.raises(ValueError, match="soft, hard-any or threshold:X"):
            trl_example(r, labels=bad)
    assert list(to_trl([r, {**r, "steps": [], "v_pi": [0.0]}])) == [trl_example(r)]
    with pytest.raises(ValueError, match="H\\+1"):
        trl_example({**r, "v_pi": [0.5]})


def _model_files(tmp_path):
    """A folder that passes the CLI's model-folder check without holding a model (for errors raised earlier)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "tokenizer.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    return model


def test_vllm_options_need_the_vllm_engine():
    assert "vllm_options" not in config().to_json()  # config.json of runs without them is unchanged
    opts = {"dtype": "float32", "max_num_batched_tokens": 8192}
    assert config(engine="vllm", vllm_options=opts).to_json()["vllm_options"] == opts
    with pytest.raises(ValueError, match="engine 'vllm'"):
        config(vllm_options=opts)


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "problem": "x", "answer": "1"}\n{"id": "b", "problem": "y"}\n')
    model = _model_files(tmp_path)  # files only: these errors come before anything loads
    base = ["llm", "label", "--model", str(model), "--out", str(tmp_path / "o")]
    for args, needle in ((["--problems", str(bad)], f"{bad}:2: answer"),
                         (["--problems", "gsm8k", "--prover", "bok:0"], "--prover"),
                         (["--problems", "gsm8k", "--prover", "model:/no/such"], "--prover"),
                         (["--problems", str(tmp_path / "none.jsonl")], "or organism:SPLIT:SEED:COUNT"),
                         (["--problems", "gsm8k", "--vllm-dtype", "float32"], "--vllm-dtype: only with --engine vllm"),
                         (["--problems", "gsm8k", "--no-vllm-enforce-eager"], "--vllm-enforce-eager: only with"),
                         (["--problems", "gsm8k", "--vllm-gpu-memory-utilization", "0.4"],
                          "--vllm-gpu-memory-utilization: only with")):
        result = CliRunner().invoke(main, base + args)
        assert result.exit_code == 2 and needle in result.output and len(result.output.splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, message", [
    ('{"a": 1}\n', ":1: problem_index/seed_index: not a labels record"),
    ('{"problem_index": 0, "seed_index": 0}\n', ": a record has no field 'steps'"),
])
def test_export_trl_errors_name_the_file_once(tmp_path, text, message):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(text)
    result = CliRunner().invoke(main, ["llm", "export-trl", str(labels), "--out", str(tmp_path / "trl.jsonl")])
    assert result.exit_code == 2 and result.stderr.strip() == f"Error: {labels}{message}", result.output
    assert not (tmp_path / "trl.jsonl").exists()


def test_export_trl_refuses_a_bad_label_mode(tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text("")
    result = CliRunner().invoke(main, ["llm", "export-trl", str(labels), "--out", str(tmp_path / "t.jsonl"),
                                       "--labels", "threshold:2"])
    assert result.exit_code == 2 and "--labels: labels must be soft, hard-any or threshold:X" in result.output
    assert not (tmp_path / "t.jsonl").exists()


# ---------------------------------------------------------------------------------------------------------------
# For real: the tiny transformers model (tests/llm_fixtures.py) through the CLI.

TINY_PROBLEMS = [("t1", "Q: What is 3+2*4?", "11"), ("t2", "Q: What is 12+5*5?", "37"),
                 ("t3", "Q: What is 7+1*2?", "9")]


@pytest.fixture
def one_thread():
    """One torch thread: on a loaded 2-core machine two spinning intra-op threads slow generation down 5-6×
    (SmolLM2 labelling: 145 s vs 24 s); the samples are the same either way. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_problems(tmp_path, one_thread):
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps({"id": i, "problem": p, "answer": a}) + "\n" for i, p, a in TINY_PROBLEMS))
    return path


def label_args(model, problems, out, *extra):
    return ["llm", "label", "--model", str(model), "--problems", str(problems), "--out", str(out), "--n-cov", "2",
            "--n-mc", "3", "--max-new-tokens", "16", "--prompt-format", "plain", "--seed", "3", "--threads", "1",
            *extra]


def read_records(out):
    return [json.loads(line) for line in (Path(out) / "labels.jsonl").read_text().splitlines()]


def check_record_invariants(r, n_mc):
    h = len(r["steps"])
    for key in ("v_pi", "se_pi", "n_pi", "v_mu", "se_mu", "n_mu"):
        assert len(r[key]) == h + 1, key
    v, se, n = (np.array(r[k], dtype=float) for k in ("v_pi", "se_pi", "n_pi"))
    assert np.all((v >= 0) & (v <= 1))
    for h_, (vh, sh, nh) in enumerate(zip(v, se, n, strict=True)):
        if nh == 0:  # only the last prefix of a finished seed is exact
            assert r["finished"] and h_ == h and vh == float(r["outcome"]) and sh == 0
        else:
            assert nh == n_mc and math.isclose(sh, math.sqrt(vh * (1 - vh) / nh))
            assert math.isclose(vh * nh, round(vh * nh))  # a fraction of the rollouts
    assert r["steps"] == split_steps(r["response"])[: len(r["steps"])]
    assert len(r["steps"]) == r["num_seed_steps"] or r["first_pit"] is not None


@pytest.mark.slow
def test_label_tiny_model_cli_end_to_end(tiny_model_dir, tiny_problems, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, label_args(tiny_model_dir, tiny_problems, out, "--prover", "bok:2", "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    records = read_records(out)
    assert summary["records"] == 6 == summary["new_records"] == len(records) and summary["rollouts"] > 6
    assert [(r["problem_id"], r["seed_index"]) for r in records] == [(i, j) for i, _, _ in TINY_PROBLEMS
                                                                     for j in range(2)]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["n_mc"] == 3 and cfg["prover"] == "bok:2" and cfg["model"] == str(Path(tiny_model_dir).resolve())
    rollouts = 0
    for r in records:
        check_record_invariants(r, 3)
        np.testing.assert_allclose(r["v_mu"], bok(np.array(r["v_pi"]), 2))
        assert r["prompt"] == dict((i, p) for i, p, _ in TINY_PROBLEMS)[r["problem_id"]] + "\n"
        assert r["provenance"]["seed"] == 3 and r["provenance"]["delimiter"] == "\n"
        rollouts += sum(r["n_pi"])
    assert rollouts >= summary["rollouts"] - 6  # shared s_1 is rolled out once per problem
    # running again: nothing to do, file unchanged, no model load
    before = (out / "labels.jsonl").read_bytes()
    again = CliRunner().invoke(main, label_args(tiny_model_dir, tiny_problems, out, "--prover", "bok:2", "--json"))
    assert again.exit_code == 0 and json.loads(again.stdout)["new_records"] == 0
    assert "resuming" not in result.stderr and f"resuming {out}\n" in again.stderr
    assert (out / "labels.jsonl").read_bytes() == before
    # a different setting on the same --out is an error naming the field
    bad = CliRunner().invoke(main, label_args(tiny_model_dir, tiny_problems, out, "--prover", "bok:2", "--n-mc", "5"))
    assert bad.exit_code == 2 and "'n_mc'" in bad.output and "mismatch" in bad.output
    # TRL export
    trl = tmp_path / "trl.jsonl"
    exp = CliRunner().invoke(main, ["llm", "export-trl", str(out / "labels.jsonl"), "--out", str(trl)])
    assert exp.exit_code == 0, exp.output
    examples = [json.loads(line) for line in trl.read_text().splitlines()]
    with_steps = [r for r in records if r["steps"]]
    assert len(examples) == len(with_steps)
    for ex, r in zip(examples, with_steps, strict=True):
        assert ex == {"prompt": r["prompt"], "completions": r["steps"], "labels": r["v_pi"][1:]}
    hard = CliRunner().invoke(main, ["llm", "export-trl", str(out / "labels.jsonl"), "--out", str(trl),
                                     "--labels", "hard-any", "--prompt-field", "problem"])
    assert hard.exit_code == 0, hard.output
    for line, r in zip(trl.read_text().splitlines(), with_steps, strict=True):
        assert json.loads(line) == {"prompt": r["problem"], "completions": r["steps"],
                                    "labels": [v > 0 for v in r["v_pi"][1:]]}


@pytest.mark.slow
def test_label_tiny_model_first_pit_and_temperature_prover(tiny_model_dir, tiny_problems, tmp_path):
    out = tmp_path / "run"
    args = label_args(tiny_model_dir, tiny_problems, out, "--prover", "temp:0.5", "--first-pit", "--pit-screen",
                      "2", "--limit", "2")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    records = read_records(out)
    assert len(records) == 4
    for r in records:
        check_record_invariants(r, 3)
        assert len(r["screen"]["v"]) == r["num_seed_steps"] + 1
        n_mu = np.array(r["n_mu"])
        assert set(n_mu[:-1]) <= {3} and len(r["provenance"]["rollout_seeds"]) == 4
        if r["first_pit"] is not None:
            q = np.array(r["screen"]["v"])[1:]
            assert not r["outcome"] and q[r["first_pit"]] == 0 and np.all(q[: r["first_pit"]] > 0)
            assert len(r["steps"]) == r["first_pit"] + 1
        else:
            assert len(r["steps"]) == r["num_seed_steps"]
    # raising --limit on a resumed run labels only the new problem
    more = CliRunner().invoke(main, args[:-1] + ["3", "--json"])
    assert more.exit_code == 0, more.output
    assert json.loads(more.stdout)["new_records"] == 2 and len(read_records(out)) == 6


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_file(tiny_model_dir, tiny_problems, tmp_path):
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    assert CliRunner().invoke(main, label_args(tiny_model_dir, tiny_problems, ref)).exit_code == 0
    expected = (ref / "labels.jsonl").read_bytes()
    assert expected.count(b"\n") == 6

    # kill a real run (a separate process) right after its first record is written
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pavkit", *label_args(tiny_model_dir, tiny_problems, cut)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    labels = cut / "labels.jsonl"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if labels.exists() and labels.read_bytes().count(b"\n") >= 1:
            proc.kill()
            break
        time.sleep(0.02)
    proc.wait()
    partial = labels.read_bytes()
    assert 1 <= partial.count(b"\n") < 6, "the run was not killed midway"
    assert expected.startswith(partial[: partial.rfind(b"\n") + 1])
    resumed = CliRunner().invoke(main, label_args(tiny_model_dir, tiny_problems, cut))
    assert resumed.exit_code == 0, resumed.output
    assert labels.read_bytes() == expected

    # the worst case: killed inside problem 0 (seed 0 written, seed 1 cut in the middle of its write)
    first = expected.index(b"\n") + 1
    labels.write_bytes(expected[: first + 25])
    resumed = CliRunner().invoke(main, label_args(tiny_model_dir, tiny_problems, cut))
    assert resumed.exit_code == 0, resumed.output
    assert "truncated" in resumed.output and labels.read_bytes() == expected


# ---------------------------------------------------------------------------------------------------------------
# Integration: the packaged SmolLM2 on bundled GSM8K problems.


@pytest.mark.slow
def test_label_smollm2_gsm8k(smollm2_dir, tmp_path, one_thread):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["llm", "label", "--model", str(smollm2_dir), "--problems", "gsm8k",
                                       "--limit", "2", "--n-cov", "1", "--n-mc", "2", "--max-new-tokens", "32",
                                       "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    records = read_records(out)
    assert len(records) == 2 and json.loads(result.stdout)["rollouts"] > 2
    for r in records:
        check_record_invariants(r, 2)
        assert r["prompt"].startswith("<|im_start|>") and r["problem"] in r["prompt"]
        np.testing.assert_allclose(r["v_mu"], bok(np.array(r["v_pi"]), 4))


def test_derive_seed_matches_seedsequence_and_masks_to_bits():
    want = int(np.random.SeedSequence([0, 3, 2]).generate_state(1)[0])
    assert derive_seed(0, 3, 2, bits=32) == want and derive_seed(0, 3, 2) == want & 0x7FFFFFFF
    assert all(0 <= derive_seed(b, i, bits=31) < 2 ** 31 for b in range(3) for i in range(50))


@pytest.mark.parametrize("command, needle", [
    (["rl", "--policy", "{model}", "--alpha", "0"], "only with --engine vllm or --verifier-engine vllm"),
    (["eval-verifier", "--verifier", "organism-oracle", "--data", "champ"],
     "only with --engine vllm or --verifier-engine vllm"),
    (["diagnose-provers", "--policy", "{model}", "--problems", "gsm8k"], "only with --engine vllm"),
])
def test_vllm_options_need_a_vllm_engine_in_every_command(tmp_path, command, needle):
    """--vllm-* options without a vLLM engine are refused before anything loads or any run directory is made."""
    model = _model_files(tmp_path)
    args = ["llm", *(str(model) if a == "{model}" else a for a in command), "--vllm-max-model-len", "64",
            "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and f"--vllm-max-model-len: {needle}" in result.output, result.output
    assert not (tmp_path / "o").exists()
