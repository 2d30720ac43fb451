"""One function per figure: records in, a matplotlib Figure out (the caller saves it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pavkit.analysis.metrics import bootstrap_ci
from pavkit.analysis.plots import (
    plot_bok_ratio,
    plot_bound_scatter,
    plot_learning_curves,
    plot_pass_at_n,
    plot_prover_sweep,
)


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


# ---------------------------------------------------------------------------------------------------------------
# Fig. 3: didactic RL runs (directories written by `pavkit toy rl` / `pavkit toy sweep`).


@dataclass(frozen=True)
class RLRun:
    """One didactic RL run as read from its directory."""

    path: str
    config: dict
    records: list[dict]

    @property
    def method(self) -> str:
        """STYLE key: "outcome_only" (α = 0) or "effective_reward"."""
        return "outcome_only" if self.config["alpha"] == 0 else "effective_reward"

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(iterations (T,), accuracy (T,)) at the evaluation iterations."""
        ev = [r for r in self.records if "accuracy" in r]
        return np.array([r["iteration"] for r in ev]), np.array([r["accuracy"] for r in ev])

    def pass_at_n(self, iteration: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(N (k,), Pass@N (k,)) measured at ``iteration``, or None if the run has none there."""
        for r in self.records:
            if "pass_at_n" in r and r["iteration"] == iteration:
                return np.array(r["pass_at_n"]["n"]), np.array(r["pass_at_n"]["values"])
        return None


def load_rl_runs(paths: Sequence[str]) -> list[RLRun]:
    """Read run directories (config.json + train.jsonl); errors name the directory."""
    from pavkit.runs import read_json, read_records

    runs = []
    for p in paths:
        cfg = read_json(p, "config.json")
        if "prover" not in cfg or "alpha" not in cfg:
            raise ValueError(f"{p}/config.json: not a `pavkit toy rl` run (no 'prover'/'alpha' field)")
        runs.append(RLRun(str(p), cfg, read_records(p)))
    return runs


def _aligned(runs: Sequence[RLRun]) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy curves of several runs on their common evaluation iterations: (T,), (S, T)."""
    curves = [r.curve() for r in runs]
    common = sorted(set.intersection(*(set(it.tolist()) for it, _ in curves)))
    if not common:
        raise ValueError("the runs share no evaluation iteration: " + ", ".join(r.path for r in runs))
    acc = np.array([[dict(zip(it.tolist(), a, strict=True))[i] for i in common] for it, a in curves])
    return np.array(common), acc


def _by_method(runs: Sequence[RLRun]) -> dict[str, list[RLRun]]:
    groups: dict[str, list[RLRun]] = {}
    for r in runs:
        groups.setdefault(r.method, []).append(r)
    return dict(sorted(groups.items()))


def fig3a_figure(runs: Sequence[RLRun], ax=None):
    """Accuracy vs iterations: effective reward vs outcome-only, mean over seeds with 95 % bootstrap bands."""
    ax = _new_axes(ax)
    curves = {}
    for method, group in _by_method(runs).items():
        it, acc = _aligned(group)
        ci = bootstrap_ci(acc)
        curves[method] = (ci.mean, ci.low, ci.high)
    plot_learning_curves(it, curves, ax=ax)
    provers = sorted({r.config["prover"] for r in runs if r.method == "effective_reward"})
    ax.set_title(f"RL with different rewards (prover {', '.join(provers)}; {len(runs)} runs)", fontsize=10)
    return ax.figure


def _strength(prover: str) -> tuple[str, float]:
    kind, _, value = prover.partition(":")
    return kind, float(value)


def sweep_table(runs: Sequence[RLRun]) -> dict:
    """Accuracy averaged over each run (evaluations after iteration 0), grouped by prover strength.

    Returns:
        {"kind": "gamma"|"bok", "strength": [...], "mean": [...], "low": [...], "high": [...], "seeds": [...],
         "baseline": (mean, low, high) or None, "initial_gamma": γ of the SFT data}
    """
    eff = [r for r in runs if r.method == "effective_reward"]
    kinds = {_strength(r.config["prover"])[0] for r in eff}
    if len(kinds) != 1:
        raise ValueError(f"a sweep needs effective-reward runs of one prover kind, got {sorted(kinds) or 'none'}")

    def run_mean(r: RLRun) -> float:
        it, acc = r.curve()
        return float(acc[it > 0].mean()) if (it > 0).any() else float(acc.mean())

    groups: dict[float, list[float]] = {}
    for r in eff:
        groups.setdefault(_strength(r.config["prover"])[1], []).append(run_mean(r))
    xs = sorted(groups)
    cis = [bootstrap_ci(np.array(groups[x])) for x in xs]
    base = [run_mean(r) for r in runs if r.method == "outcome_only"]
    b = bootstrap_ci(np.array(base)) if base else None
    return {"kind": kinds.pop(), "strength": xs, "mean": [float(c.mean) for c in cis],
            "low": [float(c.low) for c in cis], "high": [float(c.high) for c in cis],
            "seeds": [len(groups[x]) for x in xs],
            "baseline": None if b is None else (float(b.mean), float(b.low), float(b.high)),
            "initial_gamma": runs[0].config["sft"]["gamma"]}


def fig3b_figure(runs: Sequence[RLRun], ax=None):
    """Accuracy averaged over the run vs prover strength γ (or K for Best-of-K), with outcome-only as a band."""
    ax = _new_axes(ax)
    t = sweep_table(runs)
    gamma = t["kind"] == "gamma"
    plot_prover_sweep(np.array(t["strength"]), np.array(t["mean"]), np.array(t["low"]), np.array(t["high"]),
                      baseline=t["baseline"], initial_strength=t["initial_gamma"] if gamma else None,
                      xlabel="prover strength γ of μ_γ" if gamma else "K of the Best-of-K(π) prover", ax=ax)
    xs = np.array(t["strength"], dtype=float)
    if not gamma or (xs.min() > 0 and xs.max() / xs.min() >= 20):  # K doubles; γ may span 1…100
        ax.set_xscale("log")
        ax.set_xticks(xs, [f"{x:g}" for x in xs], minor=False)
        ax.minorticks_off()
    ax.set_title("Choice of prover policy μ", fontsize=10)
    return ax.figure


def pass_at_n_table(runs: Sequence[RLRun], iteration: int | None = None) -> dict:
    """Pass@N after ``iteration`` RL iterations (default: each run's pass_at_iter) per method, and of initial π.

    Returns:
        {"n": [...], method → {"mean", "low", "high"} lists, "initial" likewise}
    """
    out: dict = {}
    groups = {m: g for m, g in _by_method(runs).items()}
    groups["initial"] = list(runs)
    for key, group in groups.items():
        rows = [r.pass_at_n(0 if key == "initial" else (iteration or r.config["pass_at_iter"])) for r in group]
        rows = [x for x in rows if x is not None]
        if not rows:
            continue
        out["n"] = rows[0][0].tolist()
        ci = bootstrap_ci(np.array([p for _, p in rows]))
        out[key] = {"mean": ci.mean.tolist(), "low": ci.low.tolist(), "high": ci.high.tolist()}
    if "n" not in out:
        raise ValueError("no Pass@N records in these runs (they stopped before pass_at_iter?)")
    return out


def fig3c_figure(runs: Sequence[RLRun], iteration: int | None = None, ax=None):
    """Pass@N vs N for the effective-reward policy, the outcome-only policy and the initial π."""
    ax = _new_axes(ax)
    t = pass_at_n_table(runs, iteration)
    curves = {k: (np.array(v["mean"]), np.array(v["low"]), np.array(v["high"]))
              for k, v in t.items() if k != "n"}
    plot_pass_at_n(np.array(t["n"]), curves, ax=ax)
    it = iteration or runs[0].config["pass_at_iter"]
    ax.set_title(f"Ceiling on test-time re-ranking: Pass@N after {it} RL iterations", fontsize=10)
    return ax.figure


def _new_axes(ax):
    if ax is None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4.2), constrained_layout=True)
    return ax


def fig3_summary(runs: Sequence[RLRun], level: float = 0.9) -> dict:
    """The numbers behind Fig. 3(a) and 3(c): final accuracies, iterations-to-reach ratio, Pass@N growth.

    Args:
        runs: effective-reward and outcome-only runs of one prover (several seeds each).
        level: accuracy level of the iterations-to-reach ratio.
    """
    from pavkit.analysis.metrics import growth_ratio, reach_ratio

    groups = _by_method(runs)
    out: dict = {"level": level}
    curves = {}
    for method, group in groups.items():
        it, acc = _aligned(group)
        curves[method] = (it, acc.mean(axis=0))
        final = bootstrap_ci(acc[:, -1])
        out[method] = {"runs": len(group), "final_accuracy": float(final.mean),
                       "final_ci": [float(final.low), float(final.high)], "iterations": int(it[-1])}
    if {"effective_reward", "outcome_only"} <= set(curves):
        r = reach_ratio(*curves["effective_reward"], *curves["outcome_only"], level)
        out["reach"] = {"effective_iters": r.method_iters, "outcome_iters": r.baseline_iters, "ratio": r.ratio,
                        "ratio_is_lower_bound": r.lower_bound}
    try:
        table = pass_at_n_table(runs)
    except ValueError:
        table = None
    if table and "effective_reward" in table and "outcome_only" in table:
        out["pass_at_n"] = table
        out["pass_at_n_growth_ratio"] = growth_ratio(table["n"], table["effective_reward"]["mean"],
                                                     table["outcome_only"]["mean"])
    return out
