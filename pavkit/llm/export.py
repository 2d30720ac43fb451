r"""Export labels in TRL's stepwise-supervision layout, and what each reader of it does with them.

One example per labelled seed trajectory:

    {"prompt": str, "completions": [step_1, …, step_H], "labels": [y_1, …, y_H]}

The value of step h is the Monte Carlo value of the state right after it, Q̂(s_h, a_h) = V̂(s_{h+1}) = ``v[h+1]``
(a float in [0, 1]; DESIGN.md's array convention), under π (``value="pi"``, the paper's Q^π PRM target) or
under the prover (``value="mu"``). ``labels`` turns it into y_h:

- ``soft``         y_h = Q̂ (float): what ``pavkit llm train-verifier`` and the paper train on;
- ``hard-any``     y_h = Q̂ > 0 (bool): the step is good if ANY rollout from it succeeded (Math-Shepherd's "hard
  estimation");
- ``threshold:X``  y_h = Q̂ ≥ X (bool).

``prompt`` is the exact prompt the values were computed from (``prompt_field="prompt"``, chat template
included: the text the steps continue), or the bare problem text (``"problem"``).

Who reads it (checked December 2026, ENVIRONMENT.md):

- TRL 1.10–1.13 (``trl.experimental.prm.PRMTrainer``; earlier ``trl.PRMTrainer``) read these fields, but cast
  every label with ``int()``: a soft 0.75 becomes 0, so a step is positive only when all its rollouts succeeded
  (Q̂ = 1). Export ``hard-any`` or ``threshold:X`` for it. It needs a ``num_labels=2`` token classifier and
  joins prompt and steps with its own separator, so on Llama-3 / Qwen-style tokenizers its label positions
  are not pavkit's reading tokens.
- TRL ≥ 1.14 removed PRMTrainer and the stepwise-supervision type (trl PR #7133); OpenRLHF deleted its PRM
  trainer in 2026-03. No maintained trainer for soft process labels remains: pavkit's own ``train-verifier`` is
  the one, and it reads the labels file itself, not this export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

LABEL_MODES = ("soft", "hard-any", "threshold:X")


def label_function(labels: str):
    """Q̂ → y for a ``labels`` mode (:data:`LABEL_MODES`); ValueError naming the mode otherwise."""
    if labels == "soft":
        return float
    if labels == "hard-any":
        return lambda q: bool(q > 0)
    kind, _, arg = labels.partition(":")
    if kind == "threshold":
        try:
            x = float(arg)
        except ValueError:
            x = float("nan")
        if 0 <= x <= 1:
            return lambda q: bool(q >= x)
    raise ValueError(f"labels must be soft, hard-any or threshold:X with 0 <= X <= 1, got {labels!r}")


def trl_example(record: Mapping[str, Any], *, value: str = "pi", prompt_field: str = "prompt",
                labels: str = "soft") -> dict | None:
    """The stepwise-supervision example of one labels record, or None if it has no step."""
    if value not in ("pi", "mu"):
        raise ValueError(f"value must be 'pi' or 'mu', got {value!r}")
    if prompt_field not in ("problem", "prompt"):
        raise ValueError(f"prompt_field must be 'problem' or 'prompt', got {prompt_field!r}")
    y = label_function(labels)
    steps, v = list(record["steps"]), list(record[f"v_{value}"])
    if len(v) != len(steps) + 1:
        raise ValueError(f"record {record.get('problem_id')!r}/{record.get('seed_index')}: v_{value} has "
                         f"{len(v)} values for {len(steps)} steps (expected H+1)")
    if not steps:
        return None
    return {"prompt": record[prompt_field], "completions": steps, "labels": [y(float(q)) for q in v[1:]]}


def to_trl(records: Iterable[Mapping[str, Any]], *, value: str = "pi", prompt_field: str = "prompt",
           labels: str = "soft") -> Iterator[dict]:
    """Stepwise-supervision examples of the records that have at least one step, in order."""
    label_function(labels)  # a bad mode fails before the first record
    for r in records:
        ex = trl_example(r, value=value, prompt_field=prompt_field, labels=labels)
        if ex is not None:
            yield ex
