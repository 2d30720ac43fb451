"""Run directories: what every computing command leaves behind, readable by ``pavkit plot`` and by hand.

    DIR/config.json    the full config (a resumed run must have the same one)
    DIR/meta.json      versions, seed, command line, host, start time (rewritten on resume)
    DIR/train.jsonl    append-only records, one JSON object per line, flushed as written
    DIR/metrics.json   final figures, written atomically when the run ends
    DIR/checkpoint.pt  optional: the state to resume from (written atomically)

The run drivers (``pavkit.drivers``) and the CLI call the writers; analysis code calls the readers. A run
killed mid-write leaves at most one truncated last line in a JSONL file: ``read_records`` skips it and
``truncate_records`` removes it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

import numpy as np


class UserInputError(ValueError):
    """Bad input from a person (a file, a spec, an option value, a run directory): the message names the file,
    line and field, and the CLI prints it as one line (exit 2, no traceback). Library code raises it or a
    subclass (``DataError``, ``SpecError``, :class:`RunConfigMismatch`); any other exception is a bug."""


class RunConfigMismatch(UserInputError):
    """A run directory holds a different config than the one asked for."""


class Bar:
    """A progress bar that shows nothing: what :class:`Reporter` hands out for library use."""

    def __call__(self, record: dict) -> None:
        """Advance by one record (a bar that shows counts those ``counts(record)`` accepts)."""

    def finish(self) -> None:
        """Close the bar."""


class Reporter:
    """What a run driver tells a person while it works: a progress bar per loop and one-line notes ("resuming
    OUT from iteration N"). This one says nothing (library use, sweep workers); the CLI passes one that draws
    click progress bars and writes the notes on stderr."""

    def bar(self, label: str, total: int, start: int = 0, counts: Callable[[dict], bool] | None = None,
            describe: Callable[[dict], str | None] | None = None) -> Bar:
        """A bar over ``total`` records, ``start`` of them done; ``describe(record)`` may extend its label."""
        return Bar()

    def note(self, text: str) -> None:
        """One line for a person."""


QUIET = Reporter()


def derive_seed(*parts: int, bits: int = 31) -> int:
    """A sampling seed that is a pure function of the integers ``parts`` (numpy's SeedSequence), in [0, 2**bits).

    Every sampling call of a run derives its seed this way from (base seed, where it is): labels from
    (seed, problem index, stage), search from (seed, problem index, stage, N, depth), LLM RL from (seed,
    iteration, stream) with ``bits=32``. So a resumed run draws what an uninterrupted one would have drawn.
    """
    state = int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])
    return state & ((1 << bits) - 1)

def warmup_cosine(step: int, warmup: int, total: int, floor: float = 0.0) -> float:
    """The learning-rate multiplier of optimiser step ``step`` (0-based) in every LLM training loop: linear
    warm-up (step+1)/warmup, then floor + (1 − floor)·½(1 + cos(π·k/span)) with k = step − warmup (capped at
    span = total − warmup), from 1 down to ``floor`` (0 for RL and verifiers, 0.1 for the organism and RFT)."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step - warmup, span) / span))


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("pavkit", "numpy", "torch", "transformers", "vllm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _first_difference(a: dict, b: dict, ignore: frozenset = frozenset(), prefix: str = "") -> str | None:
    """The first dotted key whose value differs between two JSON-like dicts (a missing key differs), or None."""
    for key in sorted((set(a) | set(b)) - ignore):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            found = _first_difference(va, vb, prefix=f"{prefix}{key}.")
            if found:
                return found
        elif va != vb or (key in a) != (key in b):
            return f"{prefix}{key}"
    return None


def _get(d: dict, dotted: str):
    for key in dotted.split("."):
        d = d.get(key) if isinstance(d, dict) else None
    return d


def config_difference(saved: dict, config: dict, ignore=(), defaults: dict | None = None) -> str | None:
    """One line naming the first field where ``config`` differs from ``saved``, or None if they agree.

    Top-level keys in ``ignore`` are not compared (e.g. a version string, a path whose content is hashed). A
    top-level key of ``defaults`` that ``saved`` lacks counts as holding its default there: a field added to a
    config after the run was written, whose default reproduces what the run did.
    """
    config = json.loads(json.dumps(config))  # tuples → lists, as they are read back
    if defaults:
        saved = {**{k: v for k, v in json.loads(json.dumps(defaults)).items() if k not in saved}, **saved}
    field = _first_difference(saved, config, frozenset(ignore))
    if field is None:
        return None
    return f"field {field!r} is {_get(saved, field)!r} there but {_get(config, field)!r} now"


def open_run(path: str | Path, config: dict, seed: int | None = None, command: list[str] | None = None,
             ignore=(), defaults: dict | None = None) -> bool:
    """Create the run directory, or reopen it to resume. Returns True if it already held this config.

    Writes DIR/config.json (first time) and DIR/meta.json (every time). Keys in ``ignore`` may differ on resume;
    keys of ``defaults`` missing from DIR/config.json count as their defaults (:func:`config_difference`).

    Raises:
        RunConfigMismatch: naming the first differing field, if DIR/config.json holds another config.
        ValueError: if DIR/config.json is not valid JSON (naming file and line).
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = json.loads(json.dumps(config))
    cfg_path = path / "config.json"
    resumed = cfg_path.exists()
    if resumed:
        diff = config_difference(read_json(path, "config.json"), config, ignore, defaults)
        if diff is not None:
            raise RunConfigMismatch(f"{cfg_path}: config mismatch on resume: {diff}; use another --out or the "
                                    "same options")
    else:
        _write_json_atomic(cfg_path, config)
    meta = {"versions": _versions(), "seed": seed, "command": command if command is not None else sys.argv,
            "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "resumed": resumed}
    _write_json_atomic(path / "meta.json", meta)
    return resumed


def append_record(path: str | Path, record: dict, name: str = "train.jsonl") -> None:
    """Append one JSON line to DIR/name and flush it to disk before returning."""
    with open(Path(path) / name, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_records(path: str | Path, name: str = "train.jsonl") -> list[dict]:
    """All complete records of DIR/name (a truncated last line from a killed writer is skipped)."""
    file = Path(path) / name
    if not file.exists():
        return []
    records = []
    lines = file.read_text().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # the last line lacks its newline: an interrupted write
                break
            raise UserInputError(f"{file}:{i + 1}: not valid JSON") from None
    return records


def truncate_records(path: str | Path, keep, name: str = "train.jsonl") -> int:
    """Rewrite DIR/name with only the complete records for which ``keep(record)`` is true (atomically).

    Used on resume: records written after the last checkpoint would otherwise be duplicated. Returns how many
    records were kept.
    """
    kept = [r for r in read_records(path, name) if keep(r)]
    file = Path(path) / name
    tmp = file.with_suffix(file.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(tmp, file)
    return len(kept)


def write_metrics(path: str | Path, metrics: dict) -> None:
    """Write DIR/metrics.json atomically."""
    _write_json_atomic(Path(path) / "metrics.json", metrics)


def read_json(path: str | Path, name: str) -> dict:
    """DIR/name parsed, with an error that names the file."""
    file = Path(path) / name
    if not file.exists():
        raise FileNotFoundError(f"{file}: missing (is {path} a pavkit run directory?)")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise UserInputError(f"{file}:{e.lineno}: not valid JSON ({e.msg})") from None


def save_checkpoint(path: str | Path, state: dict) -> None:
    """torch.save to DIR/checkpoint.pt atomically (torch imported here: runs.py stays torch-free)."""
    import torch

    file = Path(path) / "checkpoint.pt"
    tmp = file.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, file)


def load_checkpoint(path: str | Path) -> dict | None:
    """DIR/checkpoint.pt, or None if there is none. Tensors load on the CPU: a run checkpointed on a GPU resumes on
    a machine without one, and torchrun ranks do not all land on cuda:0 (``load_state_dict`` moves them)."""
    import torch

    file = Path(path) / "checkpoint.pt"
    return torch.load(file, weights_only=False, map_location="cpu") if file.exists() else None


def drop_records_after(path: str | Path, checkpoint: dict | None, iteration: int, key: str = "iteration") -> None:
    """On (re)start: keep the records of iterations <= ``iteration`` (the restored checkpoint's), none without a
    checkpoint; the loop writes the rest again, so nothing is duplicated."""
    truncate_records(path, lambda r: checkpoint is not None and r[key] <= iteration)


def run_loop(path: str | Path, records: Iterable[dict], *, checkpoint: Callable[[], dict] | None = None,
             checkpoint_when: Callable[[dict], bool] | None = None,
             on_record: Callable[[dict], None] | None = None) -> float:
    """The loop of every training command: append each record to DIR/train.jsonl, call ``on_record(record)``
    (a progress bar, files the record stands for), then, if ``checkpoint_when(record)``, write ``checkpoint()``
    to DIR/checkpoint.pt. A record is on disk before the checkpoint that covers it, so a kill anywhere loses at
    most the work since the last checkpoint: the rerun restores it and :func:`drop_records_after` removes what
    it will write again. Returns the loop's wall seconds.
    """
    t0 = time.perf_counter()
    for record in records:
        append_record(path, record)
        if on_record is not None:
            on_record(record)
        if checkpoint is not None and checkpoint_when is not None and checkpoint_when(record):
            save_checkpoint(path, checkpoint())
    return time.perf_counter() - t0
