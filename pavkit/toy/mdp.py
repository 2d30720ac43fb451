r"""Tabular tree MDPs: A actions, horizon H, deterministic concatenation, a terminal reward at each leaf.

States are the action sequences of length 0..H, numbered breadth-first and lexicographically: the root is 0,
then (0), (1), …, (A-1), then (0,0), (0,1), …  In this order the children of state i are A·i+1 … A·i+A and
depth d occupies the slice [(A^d - 1)/(A - 1), (A^{d+1} - 1)/(A - 1)), which is what lets every exact
computation run one vectorised numpy operation per depth.

The JSON spec (``load_spec`` / ``save_spec``) is exactly::

    {"num_actions": A, "horizon": H,
     "terminal_reward": [A**H numbers in [0, 1]],       # leaf (a_1..a_H) at index Σ_h a_h·A**(H-h)
     "policies": {"NAME": [[A probabilities], ...]}}     # one row per internal state, in the order above
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import numpy as np

from pavkit.runs import UserInputError

PROB_TOL = 1e-6
MAX_LEAVES = 1 << 26  # 67M leaves ≈ 0.5 GB per value array: beyond that a spec is surely a mistake
SPEC_FIELDS = ("num_actions", "horizon", "terminal_reward", "policies")


class SpecError(UserInputError):
    """A malformed spec: says which file, line and field, in one line."""

    def __init__(self, message: str, field: str = "", path: str | None = None, line: int | None = None):
        self.message, self.field, self.path, self.line = message, field, path, line
        where = f"{path or '<spec>'}" + (f":{line}" if line else "")
        super().__init__(f"{where}: {field + ': ' if field else ''}{message}")


@dataclass(frozen=True)
class TreeMDP:
    """A tree MDP with named stochastic policies.

    Attributes:
        num_actions: A >= 2.
        horizon: H >= 1.
        terminal_reward: (A**H,) leaf rewards in [0, 1].
        policies: name → (num_internal, A) action probabilities, rows in breadth-first order.
    """

    num_actions: int
    horizon: int
    terminal_reward: np.ndarray
    policies: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_internal(self) -> int:
        """(A^H - 1)/(A - 1): the states at depths 0..H-1."""
        return (self.num_actions**self.horizon - 1) // (self.num_actions - 1)

    @property
    def num_states(self) -> int:
        return self.num_internal + self.num_actions**self.horizon

    def depth(self, d: int) -> slice:
        """Slice of the states at depth d (0 = root, H = leaves) in the breadth-first order."""
        a = self.num_actions
        return slice((a**d - 1) // (a - 1), (a ** (d + 1) - 1) // (a - 1))

    def policy(self, name: str) -> np.ndarray:
        if name not in self.policies:
            known = ", ".join(sorted(self.policies)) or "none"
            raise SpecError(f"unknown policy {name!r} (the spec has: {known})", field="policies")
        return self.policies[name]


def state_of(actions: tuple[int, ...] | list[int], num_actions: int) -> int:
    """Breadth-first index of the state reached by ``actions`` (the empty tuple is the root)."""
    index = 0
    for a in actions:
        index = index * num_actions + a + 1
    return index


# --------------------------------------------------------------------------------------------- spec I/O
def _line_of(text: str | None, key: str) -> int | None:
    """Line (1-based) where ``"key"`` first appears in the JSON text, to point a person at the field."""
    if not text:
        return None
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _fail(message: str, fld: str, key: str, path: str | None, text: str | None) -> NoReturn:
    raise SpecError(message, field=fld, path=path, line=_line_of(text, key))


def _as_matrix(value, fld: str, key: str, path, text) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        _fail("must be a list of numbers (or of equal-length lists of numbers)", fld, key, path, text)
    if not np.all(np.isfinite(arr)):
        _fail("contains a non-finite number", fld, key, path, text)
    return arr


def parse_spec(spec: dict, path: str | None = None, text: str | None = None) -> TreeMDP:
    """Validate a decoded spec and build the TreeMDP; raises SpecError naming the field (and line if known)."""
    if not isinstance(spec, dict):
        raise SpecError("the spec must be a JSON object", path=path, line=1)
    for key in spec:
        if key not in SPEC_FIELDS:
            _fail(f"unknown field (expected {', '.join(SPEC_FIELDS)})", key, key, path, text)
    for key in SPEC_FIELDS:
        if key not in spec:
            raise SpecError("missing field", field=key, path=path)
    a, h = spec["num_actions"], spec["horizon"]
    if not isinstance(a, int) or isinstance(a, bool) or a < 2:
        _fail(f"must be an integer >= 2, got {a!r}", "num_actions", "num_actions", path, text)
    if not isinstance(h, int) or isinstance(h, bool) or h < 1:
        _fail(f"must be an integer >= 1, got {h!r}", "horizon", "horizon", path, text)
    if a**h > MAX_LEAVES:
        _fail(f"A**H = {a}**{h} leaves exceeds the limit {MAX_LEAVES}", "horizon", "horizon", path, text)

    reward = _as_matrix(spec["terminal_reward"], "terminal_reward", "terminal_reward", path, text)
    if reward.shape != (a**h,):
        _fail(f"must be a list of A**H = {a**h} numbers, got shape {reward.shape}",
              "terminal_reward", "terminal_reward", path, text)
    bad = np.flatnonzero((reward < 0) | (reward > 1))
    if bad.size:
        _fail(f"must lie in [0, 1]; entry {bad[0]} is {reward[bad[0]]}",
              f"terminal_reward[{bad[0]}]", "terminal_reward", path, text)

    if not isinstance(spec["policies"], dict) or not spec["policies"]:
        _fail("must be a non-empty object {NAME: rows}", "policies", "policies", path, text)
    n_internal = (a**h - 1) // (a - 1)
    policies = {}
    for name, rows in spec["policies"].items():
        fld = f"policies.{name}"
        probs = _as_matrix(rows, fld, name, path, text)
        if probs.shape != (n_internal, a):
            _fail(f"must have (A**H - 1)/(A - 1) = {n_internal} rows of A = {a} probabilities, "
                  f"got shape {probs.shape}", fld, name, path, text)
        if np.any(probs < 0):
            row = int(np.argwhere(probs < 0)[0, 0])
            _fail("probabilities must be >= 0", f"{fld}[{row}]", name, path, text)
        sums = probs.sum(axis=1)
        off = np.flatnonzero(np.abs(sums - 1.0) > PROB_TOL)
        if off.size:
            _fail(f"probabilities sum to {sums[off[0]]:.9g}, not 1 within {PROB_TOL:g}",
                  f"{fld}[{off[0]}]", name, path, text)
        policies[name] = probs
    return TreeMDP(a, h, reward, policies)


def load_spec(path: str | Path) -> TreeMDP:
    """Read a JSON spec file; every problem is a one-line SpecError with file, line and field."""
    path = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SpecError(f"cannot read: {e.strerror}", path=path) from None
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno) from None
    return parse_spec(spec, path=path, text=text)


def to_spec(mdp: TreeMDP) -> dict:
    return {
        "num_actions": mdp.num_actions,
        "horizon": mdp.horizon,
        "terminal_reward": mdp.terminal_reward.tolist(),
        "policies": {name: probs.tolist() for name, probs in mdp.policies.items()},
    }


def save_spec(mdp: TreeMDP, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_spec(mdp)) + "\n")


# ------------------------------------------------------------------------------------ random instances
def random_policy(num_states: int, num_actions: int, rng: np.random.Generator,
                  concentration: float = 1.0) -> np.ndarray:
    """(num_states, A) rows drawn from Dirichlet(concentration·1): small → peaked, large → near uniform."""
    g = rng.gamma(concentration, size=(num_states, num_actions))
    g = np.maximum(g, np.finfo(float).tiny)  # tiny concentrations can underflow a whole row to 0
    return g / g.sum(axis=1, keepdims=True)


def random_tree_mdp(
    num_actions: int,
    horizon: int,
    seed: int | np.random.Generator,
    reward_density: float = 0.3,
    binary: bool = True,
    concentration: float = 1.0,
    policy_names: tuple[str, ...] = ("pi", "mu"),
    reward_scale: float = 1.0,
) -> TreeMDP:
    """A random tree MDP.

    Args:
        reward_density: fraction of leaves with a nonzero reward (sparsity = 1 - density).
        binary: nonzero rewards are 1 (an outcome reward like Rex); else uniform in (0, 1].
        concentration: Dirichlet concentration of every policy row; controls policy entropy.
        policy_names: one independent random policy per name.
        reward_scale: multiplies every leaf reward. Reading a leaf reward as the probability that the final
            answer is judged correct, a scale <= 1/K puts every Q^π in Remark 3.1's O(1/K) regime, which
            binary rewards never reach (the last step of a rewarded path always has Q^π = 1).
    """
    if not 0.0 <= reward_density <= 1.0:
        raise ValueError(f"reward_density must lie in [0, 1], got {reward_density}")
    if not 0.0 < reward_scale <= 1.0:
        raise ValueError(f"reward_scale must lie in (0, 1], got {reward_scale}")
    if concentration <= 0:
        raise ValueError(f"concentration must be > 0, got {concentration}")
    rng = np.random.default_rng(seed)
    leaves = num_actions**horizon
    hit = rng.random(leaves) < reward_density
    reward = reward_scale * hit * (1.0 if binary else 1.0 - rng.random(leaves))
    n_internal = (leaves - 1) // (num_actions - 1)
    policies = {name: random_policy(n_internal, num_actions, rng, concentration) for name in policy_names}
    return TreeMDP(num_actions, horizon, reward.astype(float), policies)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats of each row of (S, A) probabilities; max is log A."""
    p = np.asarray(probs, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)



# ------------------------------------------------------------------------------- sampling (Monte Carlo)
def sample_leaves(mdp: TreeMDP, policy: np.ndarray, states: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Roll ``policy`` out from each state to a leaf, ``n`` times: (P,) state indices → (P, n) leaf indices.

    One vectorised draw per depth; a state already at a leaf stays where it is. Leaf indices count from
    the first leaf (so ``terminal_reward[leaf]`` is the reward).
    """
    states = np.asarray(states, dtype=np.int64)
    if states.ndim != 1 or np.any(states < 0) or np.any(states >= mdp.num_states):
        raise ValueError(f"states must be a 1-D array of indices in [0, {mdp.num_states})")
    rng = np.random.default_rng(seed)
    cur = np.repeat(states, n)
    cum = np.cumsum(policy, axis=1)
    cum[:, -1] = 1.0  # u < 1 always picks an action despite rounding
    for _ in range(mdp.horizon):
        inner = cur < mdp.num_internal
        if not inner.any():
            break
        u = rng.random(int(inner.sum()))
        action = (u[:, None] >= cum[cur[inner]]).sum(axis=1)
        cur[inner] = cur[inner] * mdp.num_actions + action + 1
    return (cur - mdp.num_internal).reshape(len(states), n)


@dataclass(frozen=True)
class TreeRollouts:
    """A tree policy as a ``Policy`` and the tree's reward as a ``Task`` (pavkit.types), for ``mc_values``.

    Prefixes are state indices (P,); completions are leaf indices (P, n); rewards are the leaves'.
    """

    mdp: TreeMDP
    policy_probs: np.ndarray

    def complete(self, prefixes: np.ndarray, n: int, seed: int) -> np.ndarray:
        return sample_leaves(self.mdp, self.policy_probs, prefixes, n, seed)

    def reward(self, prefixes: np.ndarray, completions: np.ndarray) -> np.ndarray:
        return self.mdp.terminal_reward[completions]
