"""Plot functions: data in, ``ax=None`` → the axes out; no file I/O. One style table for every method."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# method → how it looks, shared by every plot so a method keeps its colour across figures
STYLE = {
    "bound_plus": {"color": "tab:blue", "marker": "o", "label": "η·α·(dist + align)  (main text)"},
    "bound_minus": {"color": "tab:orange", "marker": "s", "label": "η·α·(dist − align)  (appendix)"},
    "first_order": {"color": "tab:gray", "marker": ".", "label": "exact first-order term"},
    "distinguishability": {"color": "tab:green", "marker": "o", "label": "distinguishability ratio"},
    "alignment": {"color": "tab:purple", "marker": "s", "label": "alignment ratio"},
}


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
    ax.set_ylabel("exact improvement  V^π'(root) − V^π(root)")
    ax.legend(fontsize=8)
    return ax


def plot_bok_ratio(ks: Sequence[int], ratios: dict[str, Sequence[float]], ax=None):
    """Log-log: ratio of each Theorem 3.1 term under Best-of-K(π) to its K = 1 value, with K and K² guides."""
    ax = _axes(ax)
    ks = np.asarray(ks, dtype=float)
    for key, r in ratios.items():
        s = STYLE[key]
        ax.plot(ks, r, color=s["color"], marker=s["marker"], label=s["label"] + " (median)")
    ax.plot(ks, ks**2, color="black", ls=":", lw=1, label="K²  (Remark 3.1, Q^π = O(1/K))")
    ax.plot(ks, ks, color="black", ls="--", lw=1, label="K")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("K of the Best-of-K(π) prover")
    ax.set_ylabel("term(K) / term(K = 1)")
    ax.legend(fontsize=8)
    return ax
