"""Protocols shared by the toy and LLM backends, and small record types.

Shared code (``estimators.mc_values``, ``search``) never looks inside a prefix: a prefix is whatever the
backend uses (an int array row for the toy, ``(problem, steps)`` for an LLM). See DESIGN.md.
"""

from __future__ import annotations

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
