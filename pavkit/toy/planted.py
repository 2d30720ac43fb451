r"""The planted sub-sequence task and its prover family μ_γ (paper §3.3, App. B, Figs. 3 and 9).

Task: sequences of ``length`` tokens (10) over ``{0, …, vocab_size-1}`` (15 tokens), token ``vocab_size-1``
(14) is EOS; EOS and everything after it are masked. The reward is

    r(y, y*) = 1  iff  y* occurs contiguously in y before its first EOS,  else 0.

Prover family μ_γ (procedural in the paper). Let k be the match state of a prefix: the LONGEST k < L such
that the last k tokens equal y*[:k] (the KMP automaton state). Then, in the default "pooled" reading,

    μ_γ(t | s) = γ / (γ + 1)  if t = y*[k],   1 / ((γ + 1)(vocab_size − 1))  for each other t (EOS included),

weight γ against weight 1 shared by all the other tokens; ``PlantedTask.mu_reading = "per-token"`` gives weight
1 to EACH other token instead, μ_γ(y*[k]) = γ / (γ + vocab_size − 1) (:func:`prover_probs`). Pooled is the
default because only it matches what the paper shows of μ_γ itself (Fig. 9, README "Design"). Once y* has
appeared the reward is settled and μ_γ emits EOS (Fig. 9: finished samples pad with 14); after an EOS it keeps
emitting EOS.

Readings of an ambiguous paper (PAPER.md §10 item 10): the vocabulary is ``{0, …, 14}`` (the example y*
contains 0), the unnormalised weights are γ vs 1, k is the longest match, y* must be contiguous, and the
post-success behaviour (EOS) is taken from Fig. 9.

Array conventions:

- a full sequence is an int row of shape (length,);
- a prefix is an int row of shape (length,) whose generated tokens come first and whose not-yet-generated
  positions hold -1 (so a batch of prefixes is (P, length));
- values at every prefix s_1 … s_{H+1} of a sequence form ``v`` of shape (B, length+1) (DESIGN.md), with
  ``v[:, h]`` the value of the first h tokens.

Internally the KMP automaton is extended with two absorbing states, ``L`` (y* seen: reward 1) and ``L+1``
(EOS before y*: reward 0), so that EOS and settled rewards need no special cases in the hot paths.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

PAD = -1  # not-yet-generated position of a prefix
MU_READINGS = ("pooled", "per-token")  # PAPER.md §4: "mass proportional to γ on y*_{k+1}, uniform on all other tokens"
DEFAULT_MU_READING = "pooled"  # the one that fits Fig. 9 (README "Design")


@dataclass(frozen=True)
class PlantedTask:
    """The planted sub-sequence task: find y* = ``planted`` (tokens in 0..vocab_size-2) in a sequence.

    Attributes:
        planted: the hidden sub-sequence y*, 1 <= L <= length, never containing EOS.
        vocab_size: number of tokens, EOS included (15 in the paper).
        length: sequence length H (10 in the paper).
        mu_reading: which reading of the paper's μ_γ the task's prover family uses (:func:`prover_probs`):
            "per-token" (weight γ on y*[k], 1 on EACH other token) or "pooled" (γ on y*[k], 1 shared by all
            the other tokens together).
    """

    planted: tuple[int, ...]
    vocab_size: int = 15
    length: int = 10
    mu_reading: str = DEFAULT_MU_READING

    def __post_init__(self) -> None:
        if self.mu_reading not in MU_READINGS:
            raise ValueError(f"mu_reading must be one of {', '.join(MU_READINGS)}, got {self.mu_reading!r}")
        if not isinstance(self.vocab_size, numbers.Integral) or self.vocab_size < 2:
            raise ValueError(
                f"vocab_size must be an integer >= 2 (one token plus EOS), got {self.vocab_size!r}"
            )
        if not isinstance(self.length, numbers.Integral) or self.length < 1:
            raise ValueError(f"length must be an integer >= 1, got {self.length!r}")
        planted = tuple(self.planted)
        if not planted:
            raise ValueError("planted must be non-empty")
        if not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in planted):
            raise ValueError(f"planted must contain integers, got {planted!r}")
        if len(planted) > self.length:
            raise ValueError(f"planted has length {len(planted)} > sequence length {self.length}")
        bad = [int(t) for t in planted if not 0 <= t < self.vocab_size - 1]
        if bad:
            raise ValueError(
                f"planted tokens must lie in 0..{self.vocab_size - 2} (EOS={self.vocab_size - 1} excluded), "
                f"got {bad}"
            )
        # Normalise (lists, numpy ints) so that equality and hashing behave.
        object.__setattr__(self, "planted", tuple(int(t) for t in planted))
        object.__setattr__(self, "vocab_size", int(self.vocab_size))
        object.__setattr__(self, "length", int(self.length))

    @property
    def eos(self) -> int:
        """The EOS token, ``vocab_size - 1``."""
        return self.vocab_size - 1

    @classmethod
    def random(
        cls, seed: int, planted_length: int = 5, vocab_size: int = 15, length: int = 10,
        mu_reading: str = DEFAULT_MU_READING,
    ) -> PlantedTask:
        """A task whose y* has i.i.d. uniform tokens in 0..vocab_size-2 (repeats allowed: [3 6 0 3 5])."""
        if vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
        rng = np.random.default_rng(seed)
        planted = rng.integers(0, vocab_size - 1, size=planted_length)
        return cls(tuple(int(t) for t in planted), vocab_size=vocab_size, length=length, mu_reading=mu_reading)

    def success(self, sequences: np.ndarray) -> np.ndarray:
        """r(y, y*) for each row: 1 iff y* occurs contiguously before the first EOS.

        Args:
            sequences: (B, length) int, tokens in 0..vocab_size-1.

        Returns:
            (B,) float64 in {0, 1}.
        """
        seqs = _check_sequences(self, sequences)
        states = _run_states(self, seqs)
        return (states[:, -1] == len(self.planted)).astype(np.float64)

    def reward(self, prefixes: np.ndarray, completions: np.ndarray) -> np.ndarray:
        """Task protocol: r of completion j of prefix i.

        Completions are full sequences that begin with their prefix's generated tokens (checked).

        Args:
            prefixes: (P, length) int, -1-padded.
            completions: (P, n, length) int.

        Returns:
            (P, n) float64 in {0, 1}.
        """
        pre, h = _check_prefixes(self, prefixes)
        comp = np.asarray(completions)
        if comp.ndim != 3 or comp.shape[0] != pre.shape[0] or comp.shape[2] != self.length:
            raise ValueError(
                f"completions must have shape (P={pre.shape[0]}, n, {self.length}), got {comp.shape}"
            )
        generated = np.arange(self.length)[None, :] < h[:, None]  # (P, length)
        if not np.all((comp == pre[:, None, :]) | ~generated[:, None, :]):
            raise ValueError("completions do not start with their prefixes' tokens")
        return self.success(comp.reshape(-1, self.length)).reshape(comp.shape[:2])

    def prefixes_of(self, trajectories: np.ndarray) -> np.ndarray:
        """All H+1 prefixes s_1 … s_{H+1} of each trajectory in the -1-padded convention.

        Args:
            trajectories: (B, length) int.

        Returns:
            (B, length+1, length) int; entry [b, h] keeps the first h tokens of row b.
        """
        seqs = _check_sequences(self, trajectories)
        keep = np.arange(self.length)[None, :] < np.arange(self.length + 1)[:, None]  # (length+1, length)
        return np.where(keep[None], seqs[:, None, :], PAD)


def match_automaton(planted: tuple[int, ...], vocab_size: int) -> np.ndarray:
    """KMP automaton of y*: δ(k, t) = the longest j such that (y*[:k] + t) ends with y*[:j].

    Rows k = 0..L-1 are the match states before y* is complete; a value of L means y* was just completed.
    EOS (vocab_size-1) never occurs in y*, so δ(k, EOS) = 0: callers must end the episode at EOS themselves.

    Args:
        planted: y*, length L >= 1, tokens in 0..vocab_size-2.
        vocab_size: number of tokens.

    Returns:
        (L, vocab_size) int64.
    """
    y = tuple(int(t) for t in planted)
    if not y:
        raise ValueError("planted must be non-empty")
    if not all(0 <= t < vocab_size for t in y):
        raise ValueError(f"planted tokens must lie in 0..{vocab_size - 1}, got {y}")
    delta = np.zeros((len(y), vocab_size), dtype=np.int64)
    delta[0, y[0]] = 1
    fallback = 0  # state reached by y*[1:k]: where a mismatch at state k continues from
    for k in range(1, len(y)):
        delta[k] = delta[fallback]
        delta[k, y[k]] = k + 1
        fallback = delta[fallback, y[k]]
    return delta


def prover_probs(task: PlantedTask, gamma: float) -> np.ndarray:
    """μ_γ(t | match state k) under the task's ``mu_reading`` (V = vocab_size, EOS among the other tokens):

        per-token   μ_γ(y*[k]) = γ / (γ + V − 1),   μ_γ(t) = 1 / (γ + V − 1) for each t ≠ y*[k]
        pooled      μ_γ(y*[k]) = γ / (γ + 1),       μ_γ(t) = 1 / ((γ + 1)(V − 1)) for each t ≠ y*[k]

    Both put mass proportional to γ on the next y* token and spread the rest uniformly; they differ in whether
    "the rest" is one unit per token or one unit in all (PAPER.md §4, §10 item 10).

    Args:
        task: the task.
        gamma: prover strength γ >= 0 (γ = 1 is uniform under per-token, even odds under pooled).

    Returns:
        (L, vocab_size) float64; rows sum to 1.
    """
    g = _check_gamma(gamma)
    L = len(task.planted)
    other = 1.0 if task.mu_reading == "per-token" else 1.0 / (task.vocab_size - 1)
    w = np.full((L, task.vocab_size), other)
    w[np.arange(L), list(task.planted)] = g
    return w / w.sum(axis=1, keepdims=True)


def prover_value_table(task: PlantedTask, gamma: float) -> np.ndarray:
    """V[n, k] = P(μ_γ completes y* | n tokens left, match state k).

    Backward induction over (steps left, matched length):

        V[n, L] = 1,   V[0, k] = 0 (k < L),
        V[n, k] = Σ_{t ≠ EOS} μ_γ(t | k) · V[n-1, δ(k, t)]   (EOS ends the episode with value 0).

    Returns:
        (length+1, L+1) float64.
    """
    L = len(task.planted)
    return _value_table_ext(task, gamma)[:, : L + 1]


def prover_values(task: PlantedTask, gamma: float, sequences: np.ndarray) -> np.ndarray:
    """V^{μ_γ} at every prefix s_1 … s_{H+1} of each sequence (s_{h+1} = its first h tokens).

    ``v[:, h]`` (h = 0..length) is the value of the first h tokens: ``V[length-h, k_h]`` from
    ``prover_value_table``, or the settled reward (1 once y* has appeared, 0 once EOS came first).
    Advantages are ``v[:, 1:] - v[:, :-1]``.

    Args:
        sequences: (B, length) int.

    Returns:
        (B, length+1) float64.
    """
    seqs = _check_sequences(task, sequences)
    states = _run_states(task, seqs)  # (B, length+1)
    table = _value_table_ext(task, gamma)  # (length+1, L+2)
    steps_left = task.length - np.arange(task.length + 1)  # (length+1,)
    return table[steps_left[None, :], states]


def prover_q_values(task: PlantedTask, gamma: float, prefixes: np.ndarray) -> np.ndarray:
    """Q^{μ_γ}(s, t) = V^{μ_γ}(s + t) for every next token t of each prefix.

    For a settled prefix (EOS or y* already in it) Q is the settled reward for every t. A full-length prefix
    has no next token; its row is its settled reward (1 iff it contains y*), which keeps Q well defined.

    Args:
        prefixes: (P, length) int, -1-padded.

    Returns:
        (P, vocab_size) float64.
    """
    pre, h = _check_prefixes(task, prefixes)
    state = _prefix_states(task, pre, h)  # (P,)
    table = _value_table_ext(task, gamma)
    trans = _transitions_ext(task)
    left = np.maximum(task.length - h - 1, 0)  # steps left after appending t
    q = table[left[:, None], trans[state]]  # (P, vocab_size)
    full = h == task.length
    # With no step left δ must not be applied: the reward of a full prefix is its own state's.
    q[full] = table[0, state[full]][:, None]
    return q


def sample_prover(
    task: PlantedTask, gamma: float, n: int, seed: int, prefixes: np.ndarray | None = None
) -> np.ndarray:
    """Sample full sequences from μ_γ, continuing each prefix if given.

    Prefix tokens are kept verbatim; generated tokens after an EOS, or after y* has appeared, are EOS.

    Args:
        n: samples (per prefix).
        seed: seed of ``np.random.default_rng``.
        prefixes: optional (P, length) int, -1-padded.

    Returns:
        (n, length) int64 without prefixes, (P, n, length) int64 with them.
    """
    if not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if prefixes is None:
        pre = np.full((1, task.length), PAD, dtype=np.int64)
    else:
        pre, _ = _check_prefixes(task, prefixes)
    rng = np.random.default_rng(seed)
    cum = np.cumsum(_probs_ext(task, gamma), axis=1)  # (L+2, vocab_size)
    cum[:, -1] = 1.0  # u < 1 always selects a token despite rounding
    trans = _transitions_ext(task)
    out = np.repeat(pre, n, axis=0)  # (P*n, length)
    state = np.zeros(out.shape[0], dtype=np.int64)
    u = rng.random(out.shape)  # one uniform per position keeps the stream independent of the prefixes
    for i in range(task.length):
        drawn = (u[:, i, None] >= cum[state]).sum(axis=1)  # inverse CDF: first token with cum > u
        out[:, i] = np.where(out[:, i] == PAD, drawn, out[:, i])
        state = trans[state, out[:, i]]
    return out.reshape(n, task.length) if prefixes is None else out.reshape(pre.shape[0], n, task.length)


@dataclass(frozen=True)
class ProverPolicy:
    """μ_γ as a Policy (pavkit.types.Policy)."""

    task: PlantedTask
    gamma: float

    def __post_init__(self) -> None:
        _check_gamma(self.gamma)

    def complete(self, prefixes: np.ndarray, n: int, seed: int) -> np.ndarray:
        """n full continuations of each -1-padded prefix: (P, length) → (P, n, length)."""
        return sample_prover(self.task, self.gamma, n, seed, prefixes=prefixes)

    def extend(self, prefixes: np.ndarray, c: int, seed: int) -> np.ndarray:
        """c children of each prefix, one sampled token appended: (P, length) → (P, c, length).

        Raises ValueError on a full-length prefix (no position left).
        """
        pre, h = _check_prefixes(self.task, prefixes)
        if np.any(h == self.task.length):
            raise ValueError("cannot extend a full-length prefix")
        full = sample_prover(self.task, self.gamma, c, seed, prefixes=pre)  # (P, c, length)
        keep = np.arange(self.task.length)[None, :] <= h[:, None]  # (P, length): prefix + one token
        return np.where(keep[:, None, :], full, PAD)


# ---------------------------------------------------------------------------------------------------------
# Internals: the extended automaton (states 0..L-1 matching, L = y* seen, L+1 = EOS before y*).


def _check_gamma(gamma: float) -> float:
    g = float(gamma)
    if not np.isfinite(g) or g < 0:
        raise ValueError(f"gamma must be finite and >= 0, got {gamma!r}")
    return g


def _transitions_ext(task: PlantedTask) -> np.ndarray:
    """(L+2, vocab_size) int64: δ on matching states, EOS → L+1, and L, L+1 absorbing."""
    L = len(task.planted)
    trans = np.empty((L + 2, task.vocab_size), dtype=np.int64)
    trans[:L] = match_automaton(task.planted, task.vocab_size)
    trans[:L, task.eos] = L + 1
    trans[L] = L
    trans[L + 1] = L + 1
    return trans


def _probs_ext(task: PlantedTask, gamma: float) -> np.ndarray:
    """(L+2, vocab_size) float64: μ_γ on matching states, EOS with probability 1 on settled ones."""
    L = len(task.planted)
    probs = np.zeros((L + 2, task.vocab_size))
    probs[:L] = prover_probs(task, gamma)
    probs[L:, task.eos] = 1.0
    return probs


def _value_table_ext(task: PlantedTask, gamma: float) -> np.ndarray:
    """(length+1, L+2) float64: prover_value_table plus the column V[:, L+1] = 0 of the EOS state."""
    L = len(task.planted)
    probs = prover_probs(task, gamma)  # (L, V)
    trans = _transitions_ext(task)[:L]  # (L, V)
    table = np.zeros((task.length + 1, L + 2))
    table[:, L] = 1.0
    for n in range(1, task.length + 1):
        table[n, :L] = (probs * table[n - 1][trans]).sum(axis=1)
    return table


def _run_states(task: PlantedTask, seqs: np.ndarray) -> np.ndarray:
    """(B, length) → (B, length+1) extended automaton state after each prefix length h = 0..length."""
    trans = _transitions_ext(task)
    states = np.zeros((seqs.shape[0], task.length + 1), dtype=np.int64)
    for i in range(task.length):
        states[:, i + 1] = trans[states[:, i], seqs[:, i]]
    return states


def _prefix_states(task: PlantedTask, pre: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(P, length) -1-padded prefixes → (P,) extended state after their generated tokens."""
    trans = _transitions_ext(task)
    state = np.zeros(pre.shape[0], dtype=np.int64)
    for i in range(task.length):
        state = np.where(i < h, trans[state, np.maximum(pre[:, i], 0)], state)
    return state


def _as_int_array(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be an integer array, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_sequences(task: PlantedTask, sequences: np.ndarray) -> np.ndarray:
    seqs = _as_int_array(sequences, "sequences")
    if seqs.ndim != 2 or seqs.shape[1] != task.length:
        raise ValueError(f"sequences must have shape (B, {task.length}), got {seqs.shape}")
    if seqs.size and (seqs.min() < 0 or seqs.max() >= task.vocab_size):
        raise ValueError(f"sequence tokens must lie in 0..{task.vocab_size - 1}")
    return seqs


def _check_prefixes(task: PlantedTask, prefixes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate -1-padded prefixes; return them as int64 (P, length) and their lengths h (P,)."""
    pre = _as_int_array(prefixes, "prefixes")
    if pre.ndim != 2 or pre.shape[1] != task.length:
        raise ValueError(f"prefixes must have shape (P, {task.length}), got {pre.shape}")
    if pre.size and (pre.min() < PAD or pre.max() >= task.vocab_size):
        raise ValueError(f"prefix entries must lie in -1..{task.vocab_size - 1}")
    generated = pre != PAD
    if np.any(generated[:, 1:] & ~generated[:, :-1]):
        raise ValueError("prefixes must hold their generated tokens first and -1 after them")
    return pre, generated.sum(axis=1)
