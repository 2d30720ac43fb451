"""One function per figure: loaded runs in (pavkit.analysis.loaders), the numbers from pavkit.analysis.tables,
a matplotlib Figure out (the caller saves it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pavkit.analysis.loaders import RLRun, SearchRun
from pavkit.analysis.metrics import bootstrap_ci
from pavkit.analysis.plots import (
    plot_bars_ci,
    plot_bok_ratio,
    plot_bound_scatter,
    plot_grouped_bars,
    plot_interval_rows,
    plot_learning_curves,
    plot_pass_at_n,
    plot_prover_sweep,
    plot_step_scores,
)
from pavkit.analysis.tables import (
    aligned_curves,
    base_prover_grid,
    fig4_summary,
    fig10_table,
    hard_problem_curves,
    llm_runs_by_role,
    pass_at_n_table,
    rl_llm_summary,
    run_table,
    runs_by_method,
    sweep_table,
)
from pavkit.llm.search import BEAM_METHODS, METHODS


def save_figure(fig, path, dpi: int = 130) -> None:
    """Write ``fig`` to ``path`` and close it (pyplot keeps every open figure alive until it is closed)."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=dpi)
    plt.close(fig)


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
    right.set_title(rf"Best-of-K($\pi$) provers (median max $Q^\pi$ = {summary['median_max_q']:.3f})", fontsize=10)
    return fig



def fig3a_figure(runs: Sequence[RLRun], ax=None):
    """Accuracy vs iterations: effective reward vs outcome-only, mean over seeds with 95 % bootstrap bands."""
    ax = _new_axes(ax)
    curves = {}
    for method, group in runs_by_method(runs).items():
        it, acc = aligned_curves(group)
        ci = bootstrap_ci(acc)
        curves[method] = (ci.mean, ci.low, ci.high)
    plot_learning_curves(it, curves, ax=ax)
    provers = sorted({r.config["prover"] for r in runs if r.method == "effective_reward"})
    ax.set_title(f"RL with different rewards (prover {', '.join(provers)}; {run_count(runs)})", fontsize=10)
    return ax.figure



def run_count(runs: Sequence[RLRun]) -> str:
    """How many runs a figure shows, as "3 seeds × 2 arms" (or "α = 0: 2 seeds, effective reward: 3 seeds" when
    the arms have different numbers of seeds)."""
    groups = runs_by_method(runs)
    sizes = {len(g) for g in groups.values()}

    def seeds(k: int) -> str:
        return f"{k} seed{'s' if k != 1 else ''}"

    if len(sizes) == 1:
        return f"{seeds(sizes.pop())} × {len(groups)} arm{'s' if len(groups) != 1 else ''}"
    return ", ".join(f"{m.replace('_', ' ')}: {seeds(len(g))}" for m, g in groups.items())



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
    ax.set_title(f"Choice of prover policy μ ({_sweep_settings(runs, t)})", fontsize=10)
    return ax.figure



def _sweep_settings(runs: Sequence[RLRun], table: dict) -> str:
    """"3 seeds, μ_γ pooled, 120 iters, Adam": what a Fig. 3(b) panel's runs share (readings, optimisers)."""
    from pavkit.toy.config import ADDED_FIELDS  # what a run written before a field existed held (no torch)

    seeds = min(table["seeds"])
    parts = [f"{seeds} seed{'s' if seeds != 1 else ''}" + ("" if seeds == max(table["seeds"]) else " or more")]
    names = {"adam": "Adam", "sgd": "SGD"}
    for key, label in (("mu_reading", "μ_γ {}"), ("iters", "{} iters"), ("optimizer", "{}")):
        values = {str(r.config.get(key, ADDED_FIELDS.get(key, "?"))) for r in runs}
        parts.append(label.format("/".join(names.get(v, v) for v in sorted(values))))
    return ", ".join(parts)



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



def _new_axes(ax, figsize: tuple[float, float] = (6, 4.2)):
    if ax is None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax



def _curve(entry: dict, x: str = "compute", which: str = "accuracy") -> tuple:
    xs = np.array(entry["n"] if x == "n" else entry[x], dtype=float)
    v = entry[which]
    return xs, np.array(v["mean"]), np.array(v["low"]), np.array(v["high"])



def fig4_figure(run: SearchRun, ax=None, table: dict | None = None):
    """Accuracy vs compute: ORM/PAV-as-ORM best-of-N, majority, beam search with Q^π and with PAV, Pass@N dashed."""
    ax = _new_axes(ax)
    from pavkit.analysis.plots import plot_search_curves

    table = table or run_table(run)
    order = [m for m in METHODS if m != "pass"] + ["pass"]  # Pass@N (the ceiling) drawn last
    curves = {k: _curve(table[k]) for k in order if k in table}
    if not curves:
        raise ValueError(f"{run.path}: no search records")
    plot_search_curves(curves, ax=ax)
    title = f"{run.base}: {table['problems']} problems, prover {run.config['prover']}, α = {run.config['alpha']:g}"
    if "bon-orm" in table and "beam-pav" in table:
        title += "\n" + fig4_headline(fig4_summary(table), sep=";\n")
    ax.set_title(title, fontsize=9)
    return ax.figure



def fig4_headline(s: dict, sep: str = "; ") -> str:
    """Fig. 4's finding in words, from :func:`fig4_summary`: the figure's title, what `pavkit llm pipeline`
    prints, and what the README quotes, e.g. "PAV beam vs ORM best-of-32: ≥ 11.9× less compute to match it;
    accuracy +0.065 at N = 8, +0.083 at equal compute"."""
    r = s["compute_ratio"]
    if r is None:
        match = f"never reaches its accuracy ({s['target']:.3f})"
    elif r >= 1:
        match = f"{'≥ ' if s['ratio_is_lower_bound'] else ''}{r:.1f}× less compute to match it"
    else:
        match = f"{1 / r:.1f}× more compute to match it"
    gains = []
    if s["accuracy_gain_at_n"] is not None:
        gains.append(f"{s['accuracy_gain_at_n']:+.3f} at N = {s['gain_n']}")
    if s["accuracy_gain"] is not None:
        gains.append(f"{s['accuracy_gain']:+.3f} at equal compute")
    return f"PAV beam vs ORM best-of-{s['n']}: {match}" + (f"{sep}accuracy {', '.join(gains)}" if gains else "")



def fig5b_figure(runs: Sequence[SearchRun], ax=None):
    """Beam search with PAV: accuracy vs N for each Best-of-K(π) prover (one run per K); ORM best-of-N if present."""
    ax = _new_axes(ax)
    from pavkit.analysis.plots import plot_search_curves
    from pavkit.provers import VERIFIER_PROVERS, parse_prover

    parsed = {r.path: parse_prover(r.config["prover"], VERIFIER_PROVERS) for r in runs}
    boks = sorted((r for r in runs if parsed[r.path].kind == "bok"), key=lambda r: parsed[r.path].k)
    curves = {}
    for r in boks:
        t = run_table(r)
        if "beam-pav" in t:
            curves[f"PAV, {r.prover_label} prover"] = _curve(t["beam-pav"], x="n")
    if not curves:
        raise ValueError("no beam-pav results with a bok:K prover in these runs")
    for r in runs:
        t = run_table(r)
        if "bon-orm" in t:
            curves["bon-orm"] = _curve(t["bon-orm"], x="n")
            break
    plot_search_curves(curves, ax=ax, xlabel="N (beam width / samples)", log2=True)
    ax.set_title(f"Prover strength: Best-of-K(π) provers ({boks[0].base})", fontsize=10)
    return ax.figure



def fig5c_figure(runs: Sequence[SearchRun], n: int = 16, ax=None):
    """Base × prover: bars of % improvement of PAV beam search over ORM best-of-N at N = ``n`` (paper: 16)."""
    ax = _new_axes(ax)
    from pavkit.analysis.plots import plot_grouped_bars

    g = base_prover_grid(runs, n)
    plot_grouped_bars(g["bases"], g["provers"], np.array(g["values"]), ax=ax, low=np.array(g["low"]),
                      high=np.array(g["high"]))
    ax.set_title(f"Base × prover: PAV beam vs ORM best-of-N at N = {n}\n(95 % CIs over problems)", fontsize=10)
    return ax.figure



def fig6a_figure(run: SearchRun, ax=None):
    """Pass@N: i.i.d. sampling (the pool) vs any final candidate correct in beam search with Q^π and with PAV."""
    ax = _new_axes(ax)
    from pavkit.analysis.plots import plot_search_curves

    t = run_table(run)
    curves = {}
    if "pass" in t:
        curves["pass"] = _curve(t["pass"], x="n")
    for k in BEAM_METHODS:
        if k in t:
            curves[k] = _curve(t[k], x="n", which="any_correct")
    if not curves:
        raise ValueError(f"{run.path}: no pool or beam records")
    plot_search_curves(curves, ax=ax, xlabel="N (samples / beam width)", ylabel="Pass@N", log2=True)
    ax.set_title(f"Pass@N over {run.base} ({t['problems']} problems)", fontsize=10)
    return ax.figure



def fig10_figure(run: SearchRun, ax=None, alpha: float | None = None):
    """Fig. 10: outcome-prediction error per step, thresholding the effective reward vs Q̂^π (Bo-K prover)."""
    ax = _new_axes(ax)
    from pavkit.analysis.plots import plot_step_errors
    from pavkit.provers import VERIFIER_PROVERS, parse_prover

    prover = parse_prover(run.config["prover"], VERIFIER_PROVERS)
    if prover.kind != "bok":
        raise ValueError(f"{run.path}: Fig. 10 needs a bok:K prover, the run has {run.config['prover']!r}")
    a = float(run.config["alpha"] if alpha is None else alpha)
    arg = prover.k
    t = fig10_table(run.pool, a, arg)
    plot_step_errors(t["steps"], {r"$\hat Q^\pi$ (PQV)": t["q"],
                                  rf"effective reward $\hat Q^\pi + \alpha \hat A^\mu$, Bo{arg}, $\alpha$ = {a:g}":
                                  t["effective"]}, baseline=t["base_rate"], ax=ax)
    ax.set_title(f"Predicting the outcome from step h ({run.base}; thresholds tuned on {t['valid_problems']} "
                 f"problems, error on {t['test_problems']})", fontsize=9)
    return ax.figure



def fig7_figure(runs: Sequence[RLRun], axes=None):
    """Fig. 7: (a) final test accuracy of SFT, RFT, outcome-only RL and PAV-RL (bars, 95 % CI over seeds);
    (b) test accuracy vs RL iterations, mean over seeds with bands, the sample-efficiency ratio in the title."""
    if axes is None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    s = rl_llm_summary(runs)
    labels = rl_arm_labels(runs)
    keys = [k for k in ("sft", "rft", "outcome_only", "effective_reward") if k in s]
    # SFT / RFT are single evaluation-only runs: no interval
    mean = np.array([s[k].get("final_accuracy", s[k].get("accuracy")) for k in keys])
    ci = np.array([s[k].get("final_ci", [s[k].get("accuracy")] * 2) for k in keys])
    plot_bars_ci(keys, mean, ci[:, 0], ci[:, 1], ax=axes[0], labels=labels)
    axes[0].set_title("(a) final test accuracy", fontsize=10)
    trained, _ = llm_runs_by_role(runs)
    curves = {}
    for method, group in trained.items():
        it, acc = aligned_curves(group)
        ci = bootstrap_ci(acc)
        curves[method] = (ci.mean, ci.low, ci.high)
    plot_learning_curves(it, curves, ax=axes[1], ylabel="test accuracy", labels=labels)
    title = f"(b) sample efficiency ({run_count([r for g in trained.values() for r in g])})"
    name = labels.get("effective_reward", "PAV-RL")
    if s.get("sample_efficiency") is not None:
        ci = " [{:.1f}, {:.1f}]".format(*s["sample_efficiency_ci"]) if s.get("sample_efficiency_ci") else ""
        title += (f"\n{name} reaches outcome-only's final accuracy {s['sample_efficiency']:.1f}×{ci} sooner"
                  f"{' (at least)' if s['reach']['ratio_is_lower_bound'] else ''}\n"
                  f"final accuracy gain {s['accuracy_gain']:+.3f}")
    elif "reach" in s:
        title += (f"\n{name} never reaches outcome-only's final accuracy ({s['reach']['level']:.3f}); "
                  f"gain {s['accuracy_gain']:+.3f}")
    axes[1].set_title(title, fontsize=9)
    lows = [c[1].min() for c in curves.values()]
    axes[1].set_ylim(max(0.0, min(lows) - 0.05), min(1.02, max(c[2].max() for c in curves.values()) + 0.05))
    return axes[0].figure



def rl_arms_figure(rows: Sequence[dict], marks: Sequence[float] = (), title: str = "", ax=None):
    """The RL arms side by side: each arm's final-accuracy gain over its α = 0 reference with the 95 % interval
    over seeds and problems (rows of ``bench/rl.py``'s ``arm_rows``: arm, seeds, accuracy_gain,
    accuracy_gain_ci), top to bottom in the rows' order; dotted lines at ``marks`` (e.g. a target gain)."""
    ax = _new_axes(ax, figsize=(6.5, 1.2 + 0.3 * len(rows)))  # a row each
    plot_interval_rows([f"{r['arm']} ({r['seeds']} seed{'s' if r['seeds'] != 1 else ''})" for r in rows],
                       np.array([r["accuracy_gain"] for r in rows]),
                       np.array([r["accuracy_gain_ci"][0] for r in rows]),
                       np.array([r["accuracy_gain_ci"][1] for r in rows]), ax=ax, marks=marks)
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure


def rl_arm_labels(runs: Sequence[RLRun]) -> dict[str, str]:
    """Names that replace the default ones of the RL arms: PAV-RL whose advantages all come from the organism's
    exact step checker (``--verifier organism-oracle``) is the "exact-advantage control", not a PAV."""
    from pavkit.llm.verifier import ORACLE

    pav = [r for r in runs if r.method == "effective_reward"]
    if pav and all(r.config.get("verifier") == ORACLE for r in pav):
        return {"effective_reward": "exact-advantage control"}
    return {}



def fig8_figure(runs: Sequence[RLRun], axes=None):
    """Fig. 8: (a) Pass@N of SFT, RFT, outcome-only RL and PAV-RL; (b) Pass@N on the problems SFT never solved."""
    if axes is None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    trained, initial = llm_runs_by_role(runs)
    curves, ns = {}, None
    for key, r in initial.items():
        p = r.final().get("pass_at_n")
        if p:
            v = np.array(p["values"])
            curves[key] = (np.array(p["n"]), v, v, v)
    for method, group in trained.items():
        ps = [r.final().get("pass_at_n") for r in group]
        if all(ps):
            ci = bootstrap_ci(np.array([p["values"] for p in ps]))
            ns = np.array(ps[0]["n"])
            curves[method] = (ns, ci.mean, ci.low, ci.high)
    labels = rl_arm_labels(runs)
    for key, (n, m, lo, hi) in curves.items():
        plot_pass_at_n(n, {key: (m, lo, hi)}, ax=axes[0], labels=labels)
    axes[0].set_title("(a) Pass@N on held-out problems", fontsize=10)
    h = hard_problem_curves(runs) if "sft" in initial else None
    if h and h["hard"]:
        plot_pass_at_n(np.array(h["n"]), {m: (np.array(h[m]["mean"]), np.array(h[m]["low"]), np.array(h[m]["high"]))
                                          for m in trained}, ax=axes[1], labels=labels)
        axes[1].set_title(f"(b) the {h['hard']} of {h['problems']} problems SFT never solved "
                          f"in {h['reference_samples']} samples", fontsize=10)
    else:
        axes[1].set_axis_off()
        axes[1].text(0.5, 0.5, "(b) needs an SFT run with --iters 0" if h is None else
                     f"(b) SFT solved each of the {h['problems']} held-out problems at least once\n"
                     f"in {h['reference_samples']} samples: there are no unsolved problems", ha="center")
    return axes[0].figure


RL_FIGURES = {"fig3a": fig3a_figure, "fig3b": fig3b_figure, "fig3c": fig3c_figure, "fig7": fig7_figure,
              "fig8": fig8_figure}


def search_figure(kind: str, runs: Sequence[SearchRun], n: int = 16):
    """``pavkit plot KIND`` of search runs: fig4 / fig6a / fig10 one panel per run; fig5b / fig5c all runs in
    one panel (fig5c compares at beam size ``n``)."""
    if kind == "fig5b":
        return fig5b_figure(runs)
    if kind == "fig5c":
        return fig5c_figure(runs, n=n)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    draw = {"fig4": fig4_figure, "fig6a": fig6a_figure, "fig10": fig10_figure}[kind]
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.6), constrained_layout=True, squeeze=False)
    for run, ax in zip(runs, axes[0], strict=True):
        draw(run, ax=ax)
    return fig


def step_scores_figure(curves: dict, title: str = "", ax=None):
    """`pavkit llm eval-verifier`'s figure: a verifier's step scores along correct and erroneous solutions
    (``pavkit.llm.processbench.step_score_curves``)."""
    ax = _new_axes(ax)
    plot_step_scores(curves, ax=ax)
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure


def prover_terms_figure(rows: Sequence[dict], title: str = "", ax=None):
    """`pavkit llm diagnose-provers`'s figure: per prover, Thm. 3.1's distinguishability and alignment minus
    the first prover's, ± the paired standard error (rows of ``pavkit.llm.diagnose.summarize``; the paired
    differences are what the sampled states resolve, the terms themselves vary far more across states)."""
    from pavkit.provers import parse_prover

    ax = _new_axes(ax)
    terms = ("distinguishability", "alignment")
    rest = rows[1:]
    values = np.array([[r[f"{t}_vs_first"] for r in rest] for t in terms], dtype=float)
    se = np.array([[r[f"{t}_vs_first_se"] or 0.0 for r in rest] for t in terms], dtype=float)
    plot_grouped_bars(list(terms), [parse_prover(r["prover"]).label() for r in rest], values, ax=ax,
                      ylabel=f"difference to {parse_prover(rows[0]['prover']).label()} (± paired SE)",
                      low=values - se, high=values + se)
    ax.set_xlabel("")
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure
