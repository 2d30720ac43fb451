"""The prover μ of A^μ = Q^μ − V^μ (paper §3): one grammar for every path that takes a ``--prover``.

A prover SPEC is a short string; :func:`parse_prover` parses it once into a :class:`Prover`, and every module
(the toy tree, the planted task, labels, search, RL, the analysis) reads the fields of that object instead of
splitting the string again. The grammar:

    bok:K        Best-of-K(π): V^μ = 1 − (1 − V^π)^K from π's own values (App. F.4); integer K >= 1
    pi           π itself (Bo1)
    temp:T       π sampled at temperature T > 0 (its values need their own rollouts)
    model:PATH   another checkpoint's policy, or a verifier of Q^μ (its values need that model)
    gamma:G      the planted task's procedural μ_γ (§3.3), G >= 0
    const:C      no prover: a control for RL whose advantage is C at every step (V^μ(s_h) = C·(h − 1)), to
                 tell a step signal from a constant per-step bonus
    NAME         a named policy of a toy tree spec (pavkit.toy.mdp)

Each caller says which kinds it accepts (``kinds``); a spec outside them is refused with one message that lists
what the caller takes. To add a prover: a kind here (its grammar line, its parse branch, ``from_base`` when its
values follow from π's), then the branch of the one caller that computes its values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pavkit.estimators import bok

GRAMMAR = {
    "bok": "'bok:K' (integer K >= 1)",
    "pi": "'pi'",
    "temp": "'temp:T' (T > 0)",
    "model": "'model:PATH'",
    "gamma": "'gamma:G' (G >= 0)",
    "const": "'const:C' (a number: the control A^μ = C at every step)",
    "policy": "a policy name of the tree spec",
}
KINDS = tuple(GRAMMAR)
# The kinds each path accepts.
TREE_PROVERS = ("bok", "policy")  # the toy tree MDPs: Bo-K of π's exact values, or another policy of the spec
PLANTED_PROVERS = ("gamma", "bok")  # the planted task: μ_γ, or Bo-K of the Monte Carlo V^π
LABEL_PROVERS = ("bok", "pi", "temp", "model")  # LLM labels: what `pavkit llm label` can roll out
VERIFIER_PROVERS = ("bok", "model")  # search and RL: Bo-K of the PQV's Q̂^π, or a Q^μ verifier
RL_PROVERS = (*VERIFIER_PROVERS, "const")  # RL also takes the constant-advantage control


@dataclass(frozen=True)
class Prover:
    """A parsed prover SPEC (the canonical spelling in ``spec``: ``temp:0.70`` → ``temp:0.7``)."""

    spec: str
    kind: str  # one of KINDS
    k: int = 1  # bok: K (pi: 1)
    temperature: float | None = None  # temp: T
    path: str | None = None  # model: PATH
    gamma: float | None = None  # gamma: G
    name: str | None = None  # policy: NAME
    constant: float | None = None  # const: C

    @property
    def needs_rollouts(self) -> bool:
        """True when μ's values need rollouts of their own (another temperature or another checkpoint)."""
        return self.kind in ("temp", "model")

    @property
    def from_base_values(self) -> bool:
        """True when V^μ is a function of V^π alone (``bok:K``, ``pi``): see :meth:`from_base`."""
        return self.kind in ("bok", "pi")

    def from_base(self, v_pi: np.ndarray) -> np.ndarray:
        """V^μ from V^π for ``bok:K`` (1 − (1 − V^π)^K) and ``pi`` (V^π); any shape. ValueError for a prover
        whose values need its own policy (``temp``, ``model``, ``gamma``, a named policy)."""
        if not self.from_base_values:
            raise ValueError(f"prover {self.spec!r}: its values do not follow from π's; they need its own policy")
        return bok(v_pi, self.k)

    def label(self) -> str:
        """How figures name the prover: ``bok:K`` → "Bo{K}(π)", ``model:DIR`` → DIR's folder name, else SPEC."""
        if self.kind == "bok":
            return f"Bo{self.k}(π)"
        if self.kind == "model":
            from pathlib import Path

            return Path(self.path).name
        return self.spec


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_prover(spec: str, kinds: Sequence[str] = KINDS) -> Prover:
    """Parse a prover SPEC into a Prover of one of ``kinds``.

    Raises ValueError "prover must be …, got SPEC" (listing the grammar of ``kinds``) on a malformed spec or
    one of another kind. A bare word is a named tree policy only when ``kinds`` holds "policy".
    """
    unknown = [k for k in kinds if k not in GRAMMAR]
    if unknown or not kinds:
        raise ValueError(f"prover kinds must be among {', '.join(KINDS)}, got {list(kinds)}")
    text = str(spec).strip()
    kind, colon, arg = text.partition(":")
    x = _number(arg)
    parsed, reason = None, ""
    if kind == "bok" and colon:
        if not arg.strip().lstrip("+").isdigit():
            reason = "K must be an integer"
        elif int(x) < 1:
            reason = "K must be >= 1"
        else:
            parsed = Prover(f"bok:{int(x)}", "bok", k=int(x))
    elif kind == "pi" and "pi" in kinds:  # without "pi" among kinds, a bare "pi" may name a tree policy
        parsed = None if colon else Prover("pi", "pi")
        reason = "'pi' takes no argument" if colon else ""
    elif kind == "temp" and colon:
        parsed = Prover(f"temp:{x:g}", "temp", temperature=x) if x > 0 and math.isfinite(x) else None
        reason = "" if parsed else "T must be a number > 0"
    elif kind == "model" and colon:
        parsed = Prover(f"model:{arg}", "model", path=arg) if arg else None
        reason = "" if parsed else "PATH must not be empty"
    elif kind == "gamma" and colon:
        parsed = Prover(text, "gamma", gamma=x) if x >= 0 and math.isfinite(x) else None
        reason = "" if parsed else "G must be a number >= 0"
    elif kind == "const" and colon:
        parsed = Prover(f"const:{x:g}", "const", constant=x) if math.isfinite(x) else None
        reason = "" if parsed else "C must be a number"
    elif "policy" in kinds and text and not colon:
        parsed = Prover(text, "policy", name=text)
    if parsed is None or parsed.kind not in kinds:
        forms = [GRAMMAR[k] for k in kinds]
        either = forms[0] if len(forms) == 1 else f"{', '.join(forms[:-1])} or {forms[-1]}"
        raise ValueError(f"prover must be {either}, got {spec!r}" + (f": {reason}" if reason else ""))
    return parsed
