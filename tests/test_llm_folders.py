"""Model paths are checked before anything loads or any run directory is made (pavkit.llm.folders, cli._model_arg).

The folders here are files only (nothing is loaded): an error must come from the check, never from transformers.
"""

import json

import pytest
from click.testing import CliRunner

from pavkit.cli import main
from pavkit.llm.folders import model_problem, verifier_dir


def _folder(path, config=None, tokenizer=True, weights=True):
    path.mkdir(parents=True)
    if config is not None:
        (path / "config.json").write_text(json.dumps(config))
    if tokenizer:
        (path / "tokenizer.json").write_text("{}")
    if weights:
        (path / "model.safetensors").write_bytes(b"")
    return path


@pytest.fixture
def folders(tmp_path):
    """An LM-shaped folder, a verifier-shaped folder and a labels file, all fake (files only)."""
    lm = _folder(tmp_path / "lm", {"model_type": "llama"})
    verifier = _folder(tmp_path / "ver" / "model", {"model_type": "llama", "id2label": {"0": "V"}}).parent
    labels = tmp_path / "labels.jsonl"
    labels.write_text("")
    return {"LM": str(lm), "V": str(verifier), "LABELS": str(labels), "OUT": str(tmp_path / "out")}


def test_model_problem_names_what_is_missing(tmp_path, folders):
    assert model_problem(folders["LM"]) is None and model_problem(folders["LM"], "lm-or-gguf") is None
    assert model_problem(folders["V"], "verifier") is None
    assert verifier_dir(folders["V"]).name == "model"
    empty = tmp_path / "empty"
    empty.mkdir()
    problem = model_problem(empty)
    assert "no config.json" in problem and "no tokenizer file" in problem and "no weights" in problem
    blank = _folder(tmp_path / "blank", {})
    assert model_problem(blank) == "not a model folder: no model_type in config.json"
    broken = _folder(tmp_path / "broken", {"model_type": "llama"}, tokenizer=False)
    (broken / "config.json").write_text("{nope")
    assert "config.json is not readable JSON" in model_problem(broken)
    assert model_problem(tmp_path / "missing") == "no such model folder"
    assert model_problem(tmp_path / "missing.gguf", "lm-or-gguf") == "no such .gguf file"
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert model_problem(tmp_path / "m.gguf", "lm-or-gguf") is None
    assert model_problem(tmp_path / "m.gguf") == "not a model folder"
    assert "declares 2 labels" in model_problem(folders["LM"], "verifier")
    with pytest.raises(ValueError):
        model_problem(folders["LM"], "tokenizer")


_COMMANDS = {  # every command and model option; BAD is where the bad path goes
    "label --model": ["llm", "label", "--model", "BAD", "--problems", "gsm8k", "--out", "OUT"],
    "label --prover": ["llm", "label", "--model", "LM", "--prover", "model:BAD", "--problems", "gsm8k",
                       "--out", "OUT"],
    "train-verifier --base": ["llm", "train-verifier", "LABELS", "--base", "BAD", "--kind", "orm", "--out", "OUT"],
    "search --policy": ["llm", "search", "--policy", "BAD", "--pqv", "V", "--problems", "gsm8k", "--out", "OUT"],
    "search --orm": ["llm", "search", "--policy", "LM", "--orm", "BAD", "--pqv", "V", "--problems", "gsm8k",
                     "--out", "OUT"],
    "search --pqv": ["llm", "search", "--policy", "LM", "--pqv", "BAD", "--problems", "gsm8k", "--out", "OUT"],
    "search --prover": ["llm", "search", "--policy", "LM", "--pqv", "V", "--prover", "model:BAD", "--problems",
                        "gsm8k", "--out", "OUT"],
    "rft --policy": ["llm", "rft", "--policy", "BAD", "--problems", "organism:train:0:2", "--out", "OUT"],
    "rl --policy": ["llm", "rl", "--policy", "BAD", "--train-problems", "organism:train:0:2", "--out", "OUT"],
    "rl --verifier": ["llm", "rl", "--policy", "LM", "--verifier", "BAD", "--train-problems",
                      "organism:train:0:2", "--out", "OUT"],
    "rl --prover": ["llm", "rl", "--policy", "LM", "--verifier", "V", "--prover", "model:BAD",
                    "--train-problems", "organism:train:0:2", "--out", "OUT"],
}


@pytest.mark.parametrize("bad", ["empty", "config {}", "missing"])
@pytest.mark.parametrize("command", list(_COMMANDS))
def test_every_model_option_is_checked_before_the_run(tmp_path, folders, command, bad):
    """One line naming the option, the path and what is missing; exit 2; no run directory; no traceback."""
    path = tmp_path / "bad"
    if bad == "empty":
        path.mkdir()
    elif bad == "config {}":
        _folder(path, {})
    args = [a.replace("BAD", str(path)) for a in _COMMANDS[command]]
    args = [folders.get(a, a) for a in args]
    result = CliRunner().invoke(main, args)
    option = command.split()[1]
    assert result.exit_code == 2, result.output
    msg = result.stderr.strip()
    assert len(msg.splitlines()) == 1 and "Traceback" not in result.output, msg
    assert f"{option}: {path}:" in msg, msg
    assert {"empty": "no config.json", "config {}": "no model_type", "missing": "no such"}[bad] in msg, msg
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["search --orm", "rl --verifier"])
def test_a_causal_lm_is_not_a_verifier(tmp_path, folders, command):
    args = [folders.get(a, a) for a in _COMMANDS[command]]
    args[args.index("BAD")] = folders["LM"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "declares 2 labels" in result.stderr, result.output
    assert not (tmp_path / "out").exists()
