r"""Export labels in TRL's stepwise-supervision format (usable with TRL's PRMTrainer and other PRM code).

One example per labelled seed trajectory:

    {"prompt": str, "completions": [step_1, …, step_H], "labels": [Q̂(s_1, a_1), …, Q̂(s_H, a_H)]}

The label of step h is the Monte Carlo value of the state right after it, Q̂(s_h, a_h) = V̂(s_{h+1}) =
``v[h+1]`` (a float in [0, 1]; DESIGN.md's array convention), under π (``value="pi"``, the paper's Q^π PRM
target) or under the prover (``value="mu"``). ``prompt`` is the problem text (as in TRL's own stepwise
datasets) or, with ``prompt_field="prompt"``, the exact prompt the values were computed from (chat template
included). Records with no step have nothing to supervise and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any


def trl_example(record: Mapping[str, Any], *, value: str = "pi", prompt_field: str = "problem") -> dict | None:
    """The stepwise-supervision example of one labels record, or None if it has no step."""
    if value not in ("pi", "mu"):
        raise ValueError(f"value must be 'pi' or 'mu', got {value!r}")
    if prompt_field not in ("problem", "prompt"):
        raise ValueError(f"prompt_field must be 'problem' or 'prompt', got {prompt_field!r}")
    steps, v = list(record["steps"]), list(record[f"v_{value}"])
    if len(v) != len(steps) + 1:
        raise ValueError(f"record {record.get('problem_id')!r}/{record.get('seed_index')}: v_{value} has "
                         f"{len(v)} values for {len(steps)} steps (expected H+1)")
    if not steps:
        return None
    return {"prompt": record[prompt_field], "completions": steps, "labels": [float(x) for x in v[1:]]}


def to_trl(records: Iterable[Mapping[str, Any]], *, value: str = "pi",
           prompt_field: str = "problem") -> Iterator[dict]:
    """Stepwise-supervision examples of the records that have at least one step, in order."""
    for r in records:
        ex = trl_example(r, value=value, prompt_field=prompt_field)
        if ex is not None:
            yield ex
