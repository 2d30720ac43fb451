"""One function per figure: records in, a matplotlib Figure out (the caller saves it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pavkit.analysis.plots import plot_bok_ratio, plot_bound_scatter


def verify_bound_figure(records: Sequence[dict], summary: dict):
    """Two panels: each reading of Theorem 3.1 against the exact improvement, and Remark 3.1's K scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    imp = np.array([r["improvement"] for r in records])
    plot_bound_scatter(imp, {k: np.array([r[k] for r in records]) for k in ("bound_plus", "bound_minus")},
                       ax=left)
    left.set_title(f"Theorem 3.1 on {summary['config']['instances']} random tree MDPs: held "
                   f"{summary['bound_plus_held']:.0%} (+) vs {summary['bound_minus_held']:.0%} (−)", fontsize=10)
    rem = summary["remark_3_1"]
    plot_bok_ratio(rem["K"], {"distinguishability": rem["distinguishability_ratio"],
                              "alignment": rem["alignment_ratio"]}, ax=right)
    right.set_title(f"Best-of-K(π) provers (median max Q^π = {summary['median_max_q']:.3f})", fontsize=10)
    return fig
