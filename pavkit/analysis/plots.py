"""Plot functions: data in, ``ax=None`` → the axes out; no file I/O. One style table for every method."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# method → how it looks, shared by every plot so a method keeps its colour across figures; math in labels is
# mathtext ($...$), so Q^π renders as a superscript
STYLE = {
    "bound_plus": {"color": "tab:blue", "marker": "o", "label": r"$\eta\alpha\,$(dist + align)  (main text)"},
    "bound_minus": {"color": "tab:orange", "marker": "s", "label": r"$\eta\alpha\,$(dist − align)  (appendix)"},
    "first_order": {"color": "tab:gray", "marker": ".", "label": "exact first-order term"},
    "distinguishability": {"color": "tab:green", "marker": "o", "label": "distinguishability ratio"},
    "alignment": {"color": "tab:purple", "marker": "s", "label": "alignment ratio"},
    "effective_reward": {"color": "tab:red", "marker": "o", "label": r"effective reward $Q^\pi + \alpha A^\mu$"},
    "outcome_only": {"color": "tab:blue", "marker": "s", "label": r"only $Q^\pi$ (outcome, $\alpha = 0$)"},
    "initial": {"color": "tab:gray", "marker": "^", "label": r"initial $\pi$ (SFT on $\mu_5$)"},
    # online RL on LLMs (paper §5, Fig. 7-8)
    "sft": {"color": "tab:gray", "marker": "^", "label": "SFT (base π)"},
    "rft": {"color": "tab:brown", "marker": "v", "label": "RFT (RL initialisation)"},
    # test-time search (paper §4, Fig. 4-6)
    "bon-orm": {"color": "tab:blue", "marker": "s", "label": "ORM best-of-N"},
    "bon-pav": {"color": "tab:cyan", "marker": "v", "label": "PAV-as-ORM best-of-N"},
    "bon-likelihood": {"color": "tab:purple", "marker": "P", "label": "π-likelihood best-of-N (no training)"},
    "majority": {"color": "tab:olive", "marker": "D", "label": "majority vote"},
    "pass": {"color": "black", "marker": ".", "label": "Pass@N (i.i.d. samples)", "ls": "--"},
    "beam-q": {"color": "tab:green", "marker": "^", "label": r"beam search, $Q^\pi$ only (PRM)"},
    "beam-pav": {"color": "tab:red", "marker": "o", "label": r"beam search, PAV $Q^\pi + \alpha A^\mu$"},
}
TAB10 = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
         "tab:olive", "tab:cyan")
MARKERS = "os^vD<>ph*"


def coincident(curves: dict[str, tuple]) -> dict[str, tuple[int, str | None]]:
    """Which curves would hide each other: key → (how many earlier curves share a point with it, the first
    earlier key it is identical to, or None). A point is shared when x and the mean agree within 1e-9.

    curves: key → (x, mean, ...) in drawing order.
    """
    out: dict[str, tuple[int, str | None]] = {}
    seen: list[tuple[str, np.ndarray, np.ndarray]] = []
    for key, (x, mean, *_rest) in curves.items():
        x, mean = np.asarray(x, dtype=float), np.asarray(mean, dtype=float)
        shared, same = 0, None
        for other, ox, om in seen:
            hit = np.isclose(x[:, None], ox[None, :], rtol=0, atol=1e-9) & np.isclose(
                mean[:, None], om[None, :], rtol=0, atol=1e-9)
            if hit.any():
                shared += 1
                if same is None and x.shape == ox.shape and hit.diagonal().all():
                    same = other
        seen.append((key, x, mean))
        out[key] = (shared, same)
    return out


def styles(keys: Sequence[str], labels: dict[str, str] | None = None) -> dict[str, dict]:
    """How each key looks: STYLE for methods (label overridden by ``labels``), else its own name with a colour
    and marker that no STYLE key of the same plot uses (so a Best-of-1 line is not ORM's blue)."""
    taken = {STYLE[k]["color"] for k in keys if k in STYLE}
    free = iter([c for c in TAB10 if c not in taken] or TAB10)
    out = {}
    for i, key in enumerate(keys):
        s = dict(STYLE[key]) if key in STYLE else {"color": next(free, TAB10[i % 10]), "marker": MARKERS[i % 10],
                                                    "label": key}
        if labels and key in labels:
            s["label"] = labels[key]
        out[key] = s
    return out


def _draw(ax, curves: dict[str, tuple], labels: dict[str, str] | None = None, markers: bool = True,
          band_alpha: float = 0.2):
    """Lines with CI bands. A curve identical to an earlier one is dashed and its label says so; with markers,
    points shared with earlier curves are drawn as larger hollow rings, so none hides another.

    curves: key → (x, mean, low, high).
    """
    look = styles(list(curves), labels)
    for key, (shared, same) in coincident(curves).items():
        x, mean, low, high = curves[key]
        s = look[key]
        label = s["label"] if same is None else f"{s['label']} (identical to {look[same]['label']})"
        kw = {"color": s["color"], "label": label, "lw": 2, "ls": "--" if same else s.get("ls", "-")}
        if markers:
            kw.update(marker=s["marker"])
            if shared:
                kw.update(markerfacecolor="none", markersize=6 + 4 * shared, markeredgewidth=1.5)
        ax.plot(x, mean, **kw)
        ax.fill_between(x, low, high, color=s["color"], alpha=band_alpha, lw=0)
    return ax


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def plot_bound_scatter(improvement: np.ndarray, bounds: dict[str, np.ndarray], ax=None):
    """Scatter of each bound reading (x) against the exact improvement (y); a point above y = x held.

    Args:
        improvement: (n,) exact V^π'(root) - V^π(root).
        bounds: STYLE key → (n,) values of that reading.
    """
    ax = _axes(ax)
    lo = min(np.min(improvement), *(np.min(b) for b in bounds.values()))
    hi = max(np.max(improvement), *(np.max(b) for b in bounds.values()))
    for key, b in bounds.items():
        s = STYLE[key]
        ax.scatter(b, improvement, s=10, alpha=0.5, color=s["color"], marker=s["marker"], label=s["label"])
    ax.plot([lo, hi], [lo, hi], color="black", lw=1, ls="--", label="improvement = bound")
    ax.set_xlabel("bound (one NPG step)")
    ax.set_ylabel(r"exact improvement  $V^{\pi'}(\mathrm{root}) - V^{\pi}(\mathrm{root})$")
    ax.legend(fontsize=8)
    return ax


def plot_bok_ratio(ks: Sequence[int], ratios: dict[str, Sequence[float]], ax=None):
    """Log-log: ratio of each Theorem 3.1 term under Best-of-K(π) to its K = 1 value, with K and K² guides."""
    ax = _axes(ax)
    ks = np.asarray(ks, dtype=float)
    for key, r in ratios.items():
        s = STYLE[key]
        ax.plot(ks, r, color=s["color"], marker=s["marker"], label=s["label"] + " (median)")
    ax.plot(ks, ks**2, color="black", ls=":", lw=1, label=r"$K^2$  (Remark 3.1, $Q^\pi = O(1/K)$)")
    ax.plot(ks, ks, color="black", ls="--", lw=1, label="K")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("K of the Best-of-K(π) prover")
    ax.set_ylabel("term(K) / term(K = 1)")
    ax.legend(fontsize=8)
    return ax


def plot_learning_curves(iterations: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                         ax=None, ylabel: str = "accuracy", labels: dict[str, str] | None = None):
    """Mean learning curve with a shaded CI band per method (paper Fig. 3(a)).

    Args:
        iterations: (T,).
        curves: STYLE key → (mean, low, high), each (T,).
        labels: legend labels replacing STYLE's (e.g. a control arm).
    """
    ax = _axes(ax)
    _draw(ax, {k: (iterations, *v) for k, v in curves.items()}, labels, markers=False)
    ax.set_xlabel("RL iterations")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_prover_sweep(strengths: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray,
                      baseline: tuple[float, float, float] | None = None, initial_strength: float | None = None,
                      xlabel: str = "prover strength γ", ax=None):
    """Accuracy averaged over the run against prover strength, with CI error bars (paper Fig. 3(b)).

    Args:
        strengths: (G,) γ (or K) of each prover.
        mean, low, high: (G,) averaged accuracy and its CI.
        baseline: optional (mean, low, high) of outcome-only RL, drawn as a band across the axis.
        initial_strength: optional γ that the initial π imitates (a dashed vertical line).
    """
    ax = _axes(ax)
    s = STYLE["effective_reward"]
    ax.errorbar(strengths, mean, yerr=[mean - low, high - mean], color=s["color"], marker=s["marker"],
                capsize=3, lw=2, label=s["label"])
    if baseline is not None:
        b = STYLE["outcome_only"]
        ax.axhline(baseline[0], color=b["color"], lw=2, label=b["label"])
        ax.axhspan(baseline[1], baseline[2], color=b["color"], alpha=0.15, lw=0)
    if initial_strength is not None:
        ax.axvline(initial_strength, color="black", ls="--", lw=1, label=f"γ for initial π ({initial_strength:g})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy averaged over the run")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_pass_at_n(ns: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], ax=None,
                   labels: dict[str, str] | None = None):
    """Pass@N against N (log2 axis) with CI bands per method (paper Fig. 3(c)); ``labels`` replace STYLE's."""
    ax = _axes(ax)
    _draw(ax, {k: (ns, *v) for k, v in curves.items()}, labels)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("N (samples)")
    ax.set_ylabel("Pass@N")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


BAR_LABELS = {"sft": "SFT", "rft": "RFT", "outcome_only": "outcome-only RL", "effective_reward": "PAV RL"}


def plot_bars_ci(keys: Sequence[str], mean: np.ndarray, low: np.ndarray, high: np.ndarray, ax=None,
                 ylabel: str = "test accuracy", labels: dict[str, str] | None = None):
    """One bar per STYLE key with its CI as an error bar, the value written on top (paper Fig. 7(a)); tick
    labels from BAR_LABELS, overridden by ``labels``."""
    ax = _axes(ax)
    mean, low, high = (np.asarray(a, dtype=float) for a in (mean, low, high))
    x = np.arange(len(keys))
    ax.bar(x, mean, 0.6, color=[STYLE[k]["color"] for k in keys], yerr=[mean - low, high - mean], capsize=4)
    for i, m in enumerate(mean):
        ax.text(i, high[i] + 0.01, f"{m:.3f}", ha="center", va="bottom", fontsize=8)
    names = {**BAR_LABELS, **(labels or {})}
    ax.set_xticks(x, [names.get(k, k) for k in keys])
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, min(1.05, float(np.nanmax(high)) + 0.1))
    ax.grid(alpha=0.3, axis="y")
    return ax


def plot_interval_rows(names: Sequence[str], value: np.ndarray, low: np.ndarray, high: np.ndarray, ax=None,
                       xlabel: str = "accuracy gain over α = 0", marks: Sequence[float] = ()):
    """One row per name, top to bottom: a point at ``value`` and its interval [low, high] (a forest plot), a solid
    line at 0 and a dotted one at each of ``marks``. Shapes: value, low, high (R,)."""
    ax = _axes(ax)
    value, low, high = (np.asarray(a, dtype=float) for a in (value, low, high))
    y = np.arange(len(names))[::-1]
    ax.errorbar(value, y, xerr=[value - low, high - value], fmt="o", color="C0", capsize=3)
    for yi, v in zip(y, value, strict=True):
        ax.text(v, yi + 0.18, f"{v:+.3f}", ha="center", va="bottom", fontsize=7)
    ax.axvline(0.0, color="0.3", lw=1)
    for m in marks:
        ax.axvline(m, color="0.5", lw=1, ls=":")
    ax.set_yticks(y, list(names), fontsize=8)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    return ax


def plot_search_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], ax=None,
                       xlabel: str = "compute (policy + verifier tokens per problem)", ylabel: str = "accuracy",
                       log2: bool = False):
    """Accuracy curves with CI bands on a log x axis (paper Fig. 4, 5(b), 6(a)).

    Args:
        curves: key (STYLE method, or any label) → (x (T,), mean (T,), low (T,), high (T,)); x is compute or N.
        log2: label the x axis in powers of two (for N); else a log10 axis (compute).
    """
    ax = _axes(ax)
    _draw(ax, curves, band_alpha=0.15)
    ax.set_xscale("log", base=2 if log2 else 10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_step_errors(steps: Sequence[int], errors: dict[str, Sequence[float]], baseline: Sequence[float] | None = None,
                     ax=None):
    """Error vs step (paper Fig. 10): one line per score, and the best constant's error dotted grey.

    steps (S,); errors: label → (S,) error rates; baseline (S,) or None.
    """
    ax = _axes(ax)
    _draw(ax, {label: (steps, e, e, e) for label, e in errors.items()}, band_alpha=0.0)
    if baseline is not None:
        ax.plot(steps, baseline, color="gray", ls=":", marker=".", lw=1.5, label="best constant")
    ax.set_xlabel("step h of the response")
    ax.set_ylabel("error predicting the final outcome")
    ax.set_xticks(list(steps))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_grouped_bars(groups: Sequence[str], series: Sequence[str], values: np.ndarray, ax=None,
                      ylabel: str = "% improved over ORM best-of-N", low: np.ndarray | None = None,
                      high: np.ndarray | None = None):
    """Grouped bars (paper Fig. 5(c)): one group per base policy, one bar per prover, in the order given.

    Args:
        groups: (G,) group labels (bases); series: (S,) bar labels (provers).
        values: (G, S) bar heights; NaN leaves a gap.
        low, high: optional (G, S) interval ends, drawn as error bars.
    """
    ax = _axes(ax)
    values = np.asarray(values, dtype=float)
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for j, name in enumerate(series):
        yerr = None
        if low is not None and high is not None:
            lo, hi = np.asarray(low, dtype=float)[:, j], np.asarray(high, dtype=float)[:, j]
            yerr = [values[:, j] - lo, hi - values[:, j]]
        ax.bar(x + (j - (len(series) - 1) / 2) * width, values[:, j], width, color=TAB10[j % 10], label=name,
               yerr=yerr, capsize=3)
    ax.axhline(0, color="black", lw=1)
    ax.set_xticks(x, list(groups))
    ax.set_xlabel("base policy")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, title="prover", loc="best")
    return ax


def plot_step_scores(curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], ax=None):
    """A verifier's mean step score V̂(s_{h+1}) ± SE along the steps, one line per set of steps
    (``pavkit.llm.processbench.step_score_curves``: error-free solutions, erroneous ones before and from their
    first error). curves: label → (h (K,), mean (K,), se (K,))."""
    ax = _axes(ax)
    _draw(ax, {label: (h, m, m - se, m + se) for label, (h, m, se) in curves.items()})
    ax.set_xlabel("step h of the solution")
    ax.set_ylabel(r"step score $\hat V(s_{h+1})$")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
