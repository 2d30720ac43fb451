"""Scores → aggregates with confidence intervals (numpy only; rliable-style).

Learning curves are arrays of shape (S, T): S seeds (or runs) evaluated at the same T iterations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pavkit.estimators import pass_at_k


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval, elementwise: each field has the same shape."""

    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def bootstrap_ci(scores: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Interval:
    """Mean over axis 0 with a percentile bootstrap CI (resampling runs with replacement).

    With a single run the interval collapses to the mean: a bootstrap cannot invent spread.

    Args:
        scores: (S,) or (S, T) — S independent runs.
    Returns:
        Interval with fields of shape () or (T,).
    """
    x = np.asarray(scores, dtype=float)
    if x.ndim not in (1, 2) or x.shape[0] == 0:
        raise ValueError(f"scores must have shape (S,) or (S, T) with S >= 1, got {x.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(resamples, x.shape[0]))  # (R, S)
    means = x[idx].mean(axis=1)  # (R,) or (R, T)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return Interval(x.mean(axis=0), low, high)


def iterations_to_reach(iterations: Sequence[int], curve: Sequence[float], level: float) -> int | None:
    """The first iteration at which ``curve`` is >= ``level``, or None if it never is.

    Args:
        iterations: (T,) increasing.
        curve: (T,) e.g. a mean accuracy across seeds.
    """
    it, c = np.asarray(iterations), np.asarray(curve, dtype=float)
    if it.shape != c.shape:
        raise ValueError(f"iterations {it.shape} and curve {c.shape} must have the same shape")
    hits = np.nonzero(c >= level)[0]
    return int(it[hits[0]]) if len(hits) else None


@dataclass(frozen=True)
class ReachRatio:
    """How many times fewer iterations ``method`` needs than ``baseline`` to reach ``level``.

    ``ratio`` = baseline_iters / method_iters. If the baseline never reaches the level within its run,
    ``ratio`` is a lower bound computed with the baseline's last iteration, and ``lower_bound`` is True.
    ``ratio`` is None if the method never reaches the level.
    """

    level: float
    method_iters: int | None
    baseline_iters: int | None
    ratio: float | None
    lower_bound: bool


def reach_ratio(iters_method: Sequence[int], curve_method: Sequence[float], iters_baseline: Sequence[int],
                curve_baseline: Sequence[float], level: float) -> ReachRatio:
    """Iterations-to-reach ratio between two learning curves (paper: "N× more sample-efficient")."""
    m = iterations_to_reach(iters_method, curve_method, level)
    b = iterations_to_reach(iters_baseline, curve_baseline, level)
    if m is None:
        return ReachRatio(level, None, b, None, False)
    m = max(m, 1)  # reaching the level at iteration 0 counts as one iteration
    if b is None:
        return ReachRatio(level, m, None, float(np.asarray(iters_baseline)[-1]) / m, True)
    return ReachRatio(level, m, b, max(b, 1) / m, False)


def pass_at_n_curve(samples: int, correct: int, ns: Sequence[int]) -> np.ndarray:
    """Pass@N for each N from one pool of ``samples`` draws with ``correct`` successes (unbiased): (len(ns),)."""
    return np.array([float(pass_at_k(samples, correct, int(n))) for n in ns])


def growth_ratio(ns: Sequence[int], curve_a: Sequence[float], curve_b: Sequence[float]) -> float | None:
    """How much faster curve a grows with N than curve b: (a[-1] − a[0]) / (b[-1] − b[0]) (None if b is flat).

    Paper Fig. 3(c): "Pass@N of the effective-reward policy grows 5× faster with N".
    """
    a, b = np.asarray(curve_a, dtype=float), np.asarray(curve_b, dtype=float)
    if len(a) != len(ns) or len(b) != len(ns):
        raise ValueError("curves must have one value per N")
    gb = b[-1] - b[0]
    return None if gb <= 0 else float((a[-1] - a[0]) / gb)
