"""Scores → aggregates with confidence intervals (numpy only; rliable-style).

Learning curves are arrays of shape (S, T): S seeds (or runs) evaluated at the same T iterations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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


def iterations_to_reach(iterations: Sequence[int], curve: Sequence[float], level: float,
                        sustained: bool = False) -> int | None:
    """The first iteration at which ``curve`` is >= ``level``, or None if it never is.

    ``sustained``: the first iteration from which the curve stays >= ``level`` to its end (None if it ends
    below), so a noisy early spike above the level does not count as reaching it.

    Args:
        iterations: (T,) increasing.
        curve: (T,) e.g. a mean accuracy across seeds.
    """
    it, c = np.asarray(iterations), np.asarray(curve, dtype=float)
    if it.shape != c.shape:
        raise ValueError(f"iterations {it.shape} and curve {c.shape} must have the same shape")
    if sustained:
        below = np.nonzero(c < level)[0]
        start = below[-1] + 1 if len(below) else 0
        return int(it[start]) if start < len(it) else None
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
                curve_baseline: Sequence[float], level: float, sustained: bool = False) -> ReachRatio:
    """Iterations-to-reach ratio between two learning curves (paper: "N× more sample-efficient");
    ``sustained`` as in :func:`iterations_to_reach`."""
    m = iterations_to_reach(iters_method, curve_method, level, sustained)
    b = iterations_to_reach(iters_baseline, curve_baseline, level, sustained)
    if m is None:
        return ReachRatio(level, None, b, None, False)
    m = max(m, 1)  # reaching the level at iteration 0 counts as one iteration
    if b is None:
        return ReachRatio(level, m, None, float(np.asarray(iters_baseline)[-1]) / m, True)
    return ReachRatio(level, m, b, max(b, 1) / m, False)


def sustained_reach_ratio_ci(iterations: Sequence[int], method: np.ndarray, baseline: np.ndarray,
                             confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Interval:
    """The sample-efficiency ratio of :func:`reach_ratio` (sustained, level = the baseline's own final mean
    accuracy) with a percentile bootstrap over training seeds, drawn independently per arm.

    Each resample averages the drawn seeds' curves of each arm, takes the level from the baseline's resampled
    mean curve, and computes ``max(b, 1) / max(m, 1)`` for the iterations b, m at which the two mean curves
    reach it for good (:func:`reach_ratio` on each pair). The baseline always reaches its own final level (at its
    last point at the latest); a resample in which the method ends below the level counts as ratio 0, since
    there the method is the slower one. Only the seeds are resampled: the evaluations along a curve keep no
    per-problem record, so their sampling noise enters only through the seed-to-seed spread. With few seeds a
    percentile bootstrap runs narrow (3 seeds give 10 distinct draws per arm).

    Args:
        iterations: (T,) the evaluation iterations the curves share, increasing.
        method: (S_m, T) accuracy curves of S_m seeds; baseline: (S_b, T).
    Returns:
        Interval of shape (); ``mean`` is the ratio of the full mean curves (0 when the method never reaches).
    """
    it = np.asarray(iterations)
    a, b = np.asarray(method, dtype=float), np.asarray(baseline, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != it.shape[0] or b.shape[1] != it.shape[0] or not len(it):
        raise ValueError(f"method and baseline need shapes (S_m, T) and (S_b, T) with T = {it.shape[0]} "
                         f"iterations, got {a.shape}, {b.shape}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")

    def ratio(ma: np.ndarray, mb: np.ndarray) -> float:  # (T,) mean curves; the baseline reaches its own level
        return reach_ratio(it, ma, it, mb, float(mb[-1]), sustained=True).ratio or 0.0

    rng = np.random.default_rng(seed)
    sa = rng.integers(0, a.shape[0], size=(resamples, a.shape[0]))  # (R, S_m)
    sb = rng.integers(0, b.shape[0], size=(resamples, b.shape[0]))  # (R, S_b)
    boot = [ratio(ma, mb) for ma, mb in zip(a[sa].mean(axis=1), b[sb].mean(axis=1), strict=True)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Interval(np.float64(ratio(a.mean(axis=0), b.mean(axis=0))), low, high)


def growth_ratio(ns: Sequence[int], curve_a: Sequence[float], curve_b: Sequence[float]) -> float | None:
    """How much faster curve a grows with N than curve b: (a[-1] − a[0]) / (b[-1] − b[0]) (None if b is flat).

    Paper Fig. 3(c): "Pass@N of the effective-reward policy grows 5× faster with N".
    """
    a, b = np.asarray(curve_a, dtype=float), np.asarray(curve_b, dtype=float)
    if len(a) != len(ns) or len(b) != len(ns):
        raise ValueError("curves must have one value per N")
    gb = b[-1] - b[0]
    return None if gb <= 0 else float((a[-1] - a[0]) / gb)


# ---------------------------------------------------------------------------------------------------------------
# Test-time search (paper §4, Fig. 4-6): accuracy at N from one pool of M samples per problem, compute-to-match.


def _subsets(rng: np.random.Generator, problems: int, m: int, n: int, resamples: int) -> np.ndarray:
    """(P, R, n) indices: for each problem, R random ordered draws of n of the m samples without replacement."""
    return np.argsort(rng.random((problems, resamples, m)), axis=-1)[..., :n]


def _check_pool(correct: np.ndarray, other: np.ndarray, ns: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    correct = np.asarray(correct, dtype=float)
    other = np.asarray(other)
    if correct.ndim != 2 or correct.shape != other.shape:
        raise ValueError(f"correct {correct.shape} and scores/keys {other.shape} must share one (P, M) shape")
    if min(ns) < 1 or max(ns) > correct.shape[1]:
        raise ValueError(f"every N must lie in [1, M = {correct.shape[1]}], got {list(ns)}")
    return correct, other


def subsample_best_of_n(correct: np.ndarray, scores: np.ndarray, ns: Sequence[int], resamples: int = 200,
                        seed: int = 0) -> np.ndarray:
    r"""Expected best-of-N accuracy per problem, estimated by subsampling one pool of M scored samples.

    For each problem and each of ``resamples`` draws, take N of the M samples without replacement (in random
    order), pick the highest score (the first in draw order on ties) and read its correctness; average.

    Args:
        correct: (P, M) Rex of each sample (bool or 0/1).
        scores: (P, M) verifier scores (ORM, or PQV for PAV-as-ORM).
        ns: the N values, each in [1, M].
    Returns:
        (len(ns), P) expected accuracy.
    """
    correct, scores = _check_pool(correct, scores, ns)
    rng = np.random.default_rng(seed)
    out = np.empty((len(ns), correct.shape[0]))
    for j, n in enumerate(ns):
        idx = _subsets(rng, *correct.shape, int(n), resamples)  # (P, R, n)
        s = np.take_along_axis(scores[:, None, :].repeat(resamples, 1), idx, axis=-1)
        pick = np.take_along_axis(idx, s.argmax(axis=-1)[..., None], axis=-1)[..., 0]  # (P, R)
        out[j] = np.take_along_axis(correct, pick, axis=1).mean(axis=1)
    return out


def exact_best_of_n(correct: np.ndarray, scores: np.ndarray, ns: Sequence[int]) -> np.ndarray:
    r"""The expectation that ``subsample_best_of_n`` estimates, in closed form (no sampling noise).

    Group a problem's M samples by score, best group first; with a_g samples in better groups and m_g in group g,
    a uniform N-subset has g as its best group with probability [C(M − a_g, N) − C(M − a_g − m_g, N)] / C(M, N),
    and a random tie-break inside g then picks each of g's samples with equal chance, so

        E[acc@N] = Σ_g P(best group = g) · mean_{i ∈ g} correct_i.

    Returns (len(ns), P).
    """
    correct, scores = _check_pool(correct, scores, ns)
    m = correct.shape[1]
    out = np.empty((len(ns), correct.shape[0]))
    for p in range(correct.shape[0]):
        values, inverse = np.unique(-np.asarray(scores[p], dtype=float), return_inverse=True)  # best first
        sizes = np.bincount(inverse, minlength=len(values))
        means = np.bincount(inverse, weights=correct[p], minlength=len(values)) / sizes
        above = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        for j, n in enumerate(ns):
            total = math.comb(m, int(n))
            prob = [(math.comb(m - a, int(n)) - math.comb(m - a - s, int(n))) / total
                    for a, s in zip(above, sizes, strict=True)]
            out[j, p] = float(np.dot(prob, means))
    return out


def subsample_majority(correct: np.ndarray, keys: np.ndarray, ns: Sequence[int], resamples: int = 200,
                       seed: int = 0) -> np.ndarray:
    r"""Expected majority-vote accuracy per problem at each N, by subsampling one pool of M answers.

    In each draw of N samples (random order), the answer key with the most votes wins, ties going to the key
    seen first in the draw; the vote is correct when that key's first sample is correct. Key < 0 (no answer)
    never votes; a draw with no answer at all is wrong.

    Args:
        correct: (P, M) Rex of each sample.
        keys: (P, M) int answer keys (equal keys = equal answers; -1 = no answer).
    Returns:
        (len(ns), P).
    """
    correct, keys = _check_pool(correct, keys, ns)
    keys = keys.astype(np.int64)
    rng = np.random.default_rng(seed)
    out = np.empty((len(ns), correct.shape[0]))
    for j, n in enumerate(ns):
        idx = _subsets(rng, *correct.shape, int(n), resamples)  # (P, R, n)
        for p in range(correct.shape[0]):  # one problem at a time: the vote table is (R, n, n)
            k, c = keys[p][idx[p]], correct[p][idx[p]]  # (R, n)
            votes = (k[:, :, None] == k[:, None, :]).sum(axis=-1)  # votes for each position's key
            votes = np.where(k >= 0, votes, 0)
            # argmax takes the first position with the most votes: the earliest sample of the first-seen tied key
            win = votes.argmax(axis=-1)
            ok = c[np.arange(len(win)), win]
            out[j, p] = np.where(votes.max(axis=-1) > 0, ok, 0.0).mean()
    return out


def accuracy_ci(per_problem: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                seed: int = 0) -> Interval:
    """Mean accuracy at each N with a bootstrap CI over problems: (T, P) per-problem values → fields (T,)."""
    x = np.asarray(per_problem, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"per_problem must have shape (T, P), got {x.shape}")
    return bootstrap_ci(x.T, confidence=confidence, resamples=resamples, seed=seed)


def relative_gain_ci(method: np.ndarray, baseline: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                     seed: int = 0) -> Interval:
    """100·(mean(method) − mean(baseline)) / mean(baseline) over paired per-problem values, with a percentile
    bootstrap CI that resamples problems (both arrays with the same draw). NaN when the baseline's mean is 0;
    resamples whose baseline mean is 0 are left out of the interval.

    Args:
        method, baseline: (P,) per-problem accuracies of the same P problems.
    """
    a, b = np.asarray(method, dtype=float), np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"method and baseline need the same shape (P,) with P >= 1, got {a.shape}, {b.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(resamples, len(a)))
    ma, mb = a[idx].mean(axis=1), b[idx].mean(axis=1)
    ok = mb > 0
    gains = 100.0 * (ma[ok] - mb[ok]) / mb[ok]
    point = 100.0 * (a.mean() - b.mean()) / b.mean() if b.mean() > 0 else float("nan")
    if not len(gains):
        return Interval(np.float64(point), np.float64("nan"), np.float64("nan"))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(gains, [tail, 100 - tail])
    return Interval(np.float64(point), low, high)


def seed_problem_gain_ci(method: np.ndarray, baseline: np.ndarray, confidence: float = 0.95,
                         resamples: int = 2000, seed: int = 0) -> Interval:
    """mean(method) − mean(baseline) with a two-level percentile bootstrap: each resample draws the evaluation
    problems (one draw shared by both arms, since they are the same problems) and, independently per arm, the
    training seeds. The interval so carries both the evaluation-set noise and the seed-to-seed spread of
    training; with one seed per arm it is the problem bootstrap alone.

    Args:
        method: (S_m, P) per-problem accuracies of S_m runs; baseline: (S_b, P) on the same P problems.
    """
    a, b = np.asarray(method, dtype=float), np.asarray(baseline, dtype=float)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or 0 in a.shape or 0 in b.shape:
        raise ValueError(f"method and baseline need shapes (S_m, P) and (S_b, P) with S, P >= 1, "
                         f"got {a.shape}, {b.shape}")
    rng = np.random.default_rng(seed)
    p = rng.integers(0, a.shape[1], size=(resamples, a.shape[1]))  # (R, P), shared by the arms
    sa = rng.integers(0, a.shape[0], size=(resamples, a.shape[0]))  # (R, S_m)
    sb = rng.integers(0, b.shape[0], size=(resamples, b.shape[0]))  # (R, S_b)
    ma = a[sa[:, :, None], p[:, None, :]].mean(axis=(1, 2))  # (R,)
    mb = b[sb[:, :, None], p[:, None, :]].mean(axis=(1, 2))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(ma - mb, [tail, 100 - tail])
    return Interval(np.float64(a.mean() - b.mean()), low, high)


def _log_interp_reach(compute: np.ndarray, acc: np.ndarray, target: float) -> tuple[float | None, bool]:
    """(compute where ``acc`` first reaches ``target``, log-linear between points; whether that is only an upper
    bound because the curve starts above the target)."""
    order = np.argsort(compute, kind="stable")
    c, a = np.asarray(compute, dtype=float)[order], np.asarray(acc, dtype=float)[order]
    hits = np.nonzero(a >= target)[0]
    if not len(hits):
        return None, False
    i = int(hits[0])
    if i == 0:
        return float(c[0]), bool(a[0] > target)
    frac = (target - a[i - 1]) / (a[i] - a[i - 1])
    return float(np.exp(np.log(c[i - 1]) + frac * (np.log(c[i]) - np.log(c[i - 1])))), False


@dataclass(frozen=True)
class ComputeMatch:
    """Compute each of two methods needs to reach ``target`` accuracy, and ``ratio`` = compute_b / compute_a
    (how many times less compute a needs than b).

    ``compute_a``/``compute_b`` are None when that method never reaches the target. ``ratio`` is None when a
    never reaches it; when b never reaches it, ``ratio`` uses b's largest compute and is a lower bound
    (``lower_bound`` True); likewise when a's first point already lies above the target (a needs at most that).
    """

    target: float
    compute_a: float | None
    compute_b: float | None
    ratio: float | None
    lower_bound: bool


def compute_to_match(compute_a: Sequence[float], acc_a: Sequence[float], compute_b: Sequence[float],
                     acc_b: Sequence[float], target: float) -> ComputeMatch:
    r"""Compute-to-match (paper §4: "compute PAV search needs to match ORM best-of-128").

    Each curve is a set of (compute, accuracy) points; the compute at which it first reaches ``target`` is
    interpolated linearly in log compute between the two points around the crossing:

        log C* = log C_{i−1} + (target − acc_{i−1}) / (acc_i − acc_{i−1}) · (log C_i − log C_{i−1}).

    Args:
        compute_a, acc_a: (T_a,) the method (e.g. beam-pav); compute must be > 0.
        compute_b, acc_b: (T_b,) the baseline (e.g. bon-orm).
        target: accuracy level (e.g. the baseline's accuracy at its largest N).
    """
    ca, aa, cb, ab = (np.asarray(x, dtype=float) for x in (compute_a, acc_a, compute_b, acc_b))
    if ca.shape != aa.shape or cb.shape != ab.shape or ca.ndim != 1 or cb.ndim != 1 or not len(ca) or not len(cb):
        raise ValueError("each curve needs equal-length, non-empty compute and accuracy arrays")
    if (ca <= 0).any() or (cb <= 0).any():
        raise ValueError("compute must be > 0 (it is interpolated in log space)")
    need_a, a_bound = _log_interp_reach(ca, aa, target)
    need_b, _ = _log_interp_reach(cb, ab, target)
    if need_a is None:
        return ComputeMatch(target, None, need_b, None, False)
    if need_b is None:
        return ComputeMatch(target, need_a, None, float(cb.max()) / need_a, True)
    return ComputeMatch(target, need_a, need_b, need_b / need_a, a_bound)


def accuracy_at_compute(compute: Sequence[float], acc: Sequence[float], budget: float) -> float | None:
    """Accuracy of a curve at ``budget`` compute (log-linear interpolation), None outside its compute range."""
    c, a = np.asarray(compute, dtype=float), np.asarray(acc, dtype=float)
    order = np.argsort(c, kind="stable")
    c, a = c[order], a[order]
    if budget < c[0] or budget > c[-1]:
        return None
    return float(np.interp(np.log(budget), np.log(c), a))


def best_threshold(scores: Sequence[float], labels: Sequence[float]) -> tuple[float, float]:
    """(τ, error): the threshold minimising the error of predicting ``label = 1`` by ``score ≥ τ``, and that error.

    Candidates are every distinct score and +∞ (predict all 0); ties in error go to the smallest τ.
    scores, labels (N,), labels in {0, 1}, N ≥ 1. Vectorised over the sorted scores: O(N log N).
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float) > 0.5
    if len(s) == 0:
        raise ValueError("best_threshold: no scores")
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    cand = np.unique(s)
    # predicting 1 from the first index with score ≥ τ: errors = negatives at or above + positives below
    first = np.searchsorted(s, cand, side="left")
    neg_above = (~y).sum() - np.concatenate([[0], np.cumsum(~y)])[first]
    pos_below = np.concatenate([[0], np.cumsum(y)])[first]
    errors = np.append((neg_above + pos_below) / len(s), y.sum() / len(s))  # last: τ = +∞
    k = int(np.argmin(errors))
    return (float(cand[k]) if k < len(cand) else math.inf), float(errors[k])


def threshold_error(scores: Sequence[float], labels: Sequence[float], tau: float) -> float:
    """Error of predicting ``label = 1`` by ``score ≥ τ``: mean of (score ≥ τ) ≠ label. scores, labels (N,)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float) > 0.5
    return float(np.mean((s >= tau) != y))
