"""Protocols shared by the toy and LLM backends, and small record types.

Shared code (``estimators.mc_values``, ``search``) never looks inside a prefix: a prefix is whatever the
backend uses (an int array row for the toy, ``(problem, steps)`` for an LLM). See DESIGN.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import numpy as np


class Policy(Protocol):
    """A sampler over continuations of prefixes."""

    def complete(self, prefixes: Any, n: int, seed: int) -> Any:
        """Return ``n`` full continuations of every prefix, grouped by prefix (P prefixes → P groups of n)."""
        ...


class Task(Protocol):
    """Outcome reward of full responses."""

    def reward(self, prefixes: Any, completions: Any) -> np.ndarray:
        """Return rewards in {0, 1}, shape (P, n): completion j of prefix i."""
        ...


@dataclass
class VerifierStats:
    """Work done by a Verifier: trajectories scored, real tokens run forward (padding excluded), and the padded
    total B·T actually computed (≥ forward_tokens), forward passes (batches)."""

    forward_tokens: int = 0
    trajectories: int = 0
    padded_tokens: int = 0
    forward_passes: int = 0


class Verifier(Protocol):
    """What search and RL need of a verifier: V̂ of every prefix of trajectories, and the work it did.

    Implemented by ``pavkit.llm.verifier.Verifier`` (a trained model) and ``pavkit.llm.organism.OracleVerifier``
    (the organism's exact step checker). ``prompts`` (B,) and ``steps`` (B lists of H_b step texts).
    """

    stats: VerifierStats

    def prefix_values(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """B arrays (H_b + 1,): V̂ of s_1 (the prompt alone) … s_{H_b+1} (every step)."""
        ...

    def values(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> np.ndarray:
        """(B,) V̂ of each whole trajectory (the last prefix value)."""
        ...


@dataclass(frozen=True)
class SearchResult:
    """One line of a search run's ``search.jsonl``: one method at one N on one problem (paper §4, Fig. 4-6).

    Attributes:
        problem_index, problem_id: which problem (its index in the run's problem list, and its id).
        method: "beam-q" | "beam-pav" (pool methods bon-orm/bon-pav/majority/pass live in ``pool.jsonl``).
        n: beam width N.
        alpha: α of the score Q̂^π + α·(Q̂^μ(child) − Q̂^μ(parent)) (0 for beam-q).
        prover: the prover spec behind Q̂^μ (``bok:K`` or ``model:DIR``; "" for beam-q).
        c: proposals per unfinished beam per depth.
        response: the chosen final response (steps joined by the delimiter).
        correct: Rex of ``response``.
        any_correct: Rex of any final candidate (Pass@N of the search, Fig. 6(a)).
        generated_tokens: policy tokens sampled for this search.
        verifier_tokens: tokens a verifier with a prefix KV cache would process (``pavkit.llm.search.verifier_cost``).
        forward_tokens: tokens our verifier implementation actually ran through its model(s).
        steps: the chosen response's steps.
    """

    problem_index: int
    problem_id: str
    method: str
    n: int
    alpha: float
    prover: str
    c: int
    response: str
    correct: bool
    any_correct: bool
    generated_tokens: int
    verifier_tokens: int
    forward_tokens: int
    steps: tuple[str, ...] = ()

    def to_json(self) -> dict:
        """The JSON record (``steps`` as a list)."""
        out = asdict(self)
        out["steps"] = list(self.steps)
        return out

    @classmethod
    def from_json(cls, record: dict) -> SearchResult:
        """Inverse of ``to_json`` (extra keys are ignored; a missing key raises KeyError naming it)."""
        kw = {f.name: record[f.name] for f in fields(cls) if f.name != "steps"}
        return cls(**kw, steps=tuple(record.get("steps", ())))
