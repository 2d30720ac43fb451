"""What a model folder must hold before anything loads it, checked without importing transformers.

Commands check every model path they are given (``--model``, ``--policy``, ``--base``, ``--orm``, ``--pqv``,
``--verifier``, ``model:DIR`` provers) with :func:`model_problem` before they create a run directory, so a
folder that is not a model gets one line naming the path and what is missing, not a transformers traceback
(which for a folder without tokenizer files suggests installing sentencepiece) and not a run directory whose
config.json then refuses the rerun with the right model.

Kinds of path:

    "lm"          a causal LM folder (``save_pretrained``): config.json with model_type, tokenizer files, weights
    "lm-or-gguf"  the same, or a ``.gguf`` file (HFEngine dequantises it)
    "verifier"    a verifier folder (``pavkit llm train-verifier``'s ``OUT/model``, or that run directory itself):
                  a model folder whose config.json declares one label (token-classification), or a causal-LM
                  folder with the head file of an lm-features verifier (``pavkit.llm.lmfeatures``)
"""

from __future__ import annotations

import json
from pathlib import Path

WHAT = {"lm": "model folder", "lm-or-gguf": "model folder or .gguf file", "verifier": "verifier folder"}
KINDS = tuple(WHAT)
MODEL_SUBDIR = "model"  # where `pavkit llm train-verifier` saves the checkpoint inside its run directory
HEAD_FILE = "head.pt"  # the head of an lm-features verifier, beside its frozen LM (pavkit.llm.lmfeatures)
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model",
                   "tokenizer.tiktoken")


def verifier_dir(path: str | Path) -> Path:
    """The checkpoint folder of a verifier path: ``path`` itself, or ``path/model`` for a train-verifier run
    directory (no weights of its own, a ``model/config.json`` inside)."""
    path = Path(path)
    if not any((path / w).exists() for w in WEIGHT_FILES) and (path / MODEL_SUBDIR / "config.json").exists():
        return path / MODEL_SUBDIR
    return path


def _config_problem(config_file: Path, verifier: bool) -> str | None:
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"{config_file.name} is not readable JSON ({e.__class__.__name__})"
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str) or not config["model_type"]:
        return "no model_type in config.json"
    labels = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    if verifier and labels != 1 and not (config_file.parent / HEAD_FILE).is_file():
        return (f"config.json declares {labels} labels and there is no {HEAD_FILE}: not a verifier (train one with "
                "`pavkit llm train-verifier`)")
    return None


def model_problem(path: str | Path, kind: str = "lm") -> str | None:
    """Why ``path`` cannot be loaded as a model of ``kind`` (one phrase, for "OPTION: PATH: <phrase>"), or None.

    A folder needs config.json with a model_type (and one label for a verifier), a tokenizer file
    (:data:`TOKENIZER_FILES`) and weights (:data:`WEIGHT_FILES`); every missing piece is named.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    path, what = Path(path), WHAT[kind]
    if kind == "lm-or-gguf" and path.suffix == ".gguf":
        return None if path.is_file() else "no such .gguf file"
    if not path.exists():
        return f"no such {what}"
    if not path.is_dir():
        return f"not a {what}"
    folder = verifier_dir(path) if kind == "verifier" else path
    missing = []
    if (folder / "config.json").is_file():
        problem = _config_problem(folder / "config.json", kind == "verifier")
        if problem:
            missing.append(problem)
    else:
        missing.append("no config.json")
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        missing.append(f"no tokenizer file ({', '.join(TOKENIZER_FILES[:3])}, …)")
    if not any((folder / f).is_file() for f in WEIGHT_FILES):
        missing.append(f"no weights ({WEIGHT_FILES[0]} or {WEIGHT_FILES[2]})")
    return f"not a {what}: {'; '.join(missing)}" if missing else None
