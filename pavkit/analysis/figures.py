"""One function per figure: records in, a matplotlib Figure out (the caller saves it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pavkit.analysis.metrics import bootstrap_ci, seed_problem_gain_ci
from pavkit.analysis.plots import (
    plot_bars_ci,
    plot_bok_ratio,
    plot_bound_scatter,
    plot_learning_curves,
    plot_pass_at_n,
    plot_prover_sweep,
)
from pavkit.estimators import mean_pass_at_n
from pavkit.llm.search import BEAM_METHODS


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
        """STYLE key: "outcome_only" (α = 0), "effective_reward", or "initial" (an evaluation-only LLM run)."""
        if self.config.get("iters") == 0:
            return "initial"
        return "outcome_only" if self.config["alpha"] == 0 else "effective_reward"

    def final(self) -> dict:
        """The last evaluation record (an LLM run's carries "pass_at_n" and "correct_counts")."""
        ev = [r for r in self.records if "accuracy" in r]
        if not ev:
            raise ValueError(f"{self.path}: no evaluation record yet")
        return ev[-1]

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
            raise ValueError(f"{p}/config.json: not a `pavkit toy rl` or `pavkit llm rl` run "
                             "(no 'prover'/'alpha' field)")
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
    ax.set_title(f"RL with different rewards (prover {', '.join(provers)}; {run_count(runs)})", fontsize=10)
    return ax.figure


def run_count(runs: Sequence[RLRun]) -> str:
    """How many runs a figure shows, as "3 seeds × 2 arms" (or "α = 0: 2 seeds, effective reward: 3 seeds" when
    the arms have different numbers of seeds)."""
    groups = _by_method(runs)
    sizes = {len(g) for g in groups.values()}

    def seeds(k: int) -> str:
        return f"{k} seed{'s' if k != 1 else ''}"

    if len(sizes) == 1:
        return f"{seeds(sizes.pop())} × {len(groups)} arm{'s' if len(groups) != 1 else ''}"
    return ", ".join(f"{m.replace('_', ' ')}: {seeds(len(g))}" for m, g in groups.items())


def _strength(spec: str) -> tuple[str, float]:
    """A planted-task prover's kind and strength: ``gamma:G`` → ("gamma", G), ``bok:K`` → ("bok", K)."""
    from pavkit.provers import PLANTED_PROVERS, parse_prover

    p = parse_prover(spec, PLANTED_PROVERS)
    return p.kind, float(p.gamma if p.kind == "gamma" else p.k)


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
    ax.set_title(f"Choice of prover policy μ ({_sweep_settings(runs, t)})", fontsize=10)
    return ax.figure


def _sweep_settings(runs: Sequence[RLRun], table: dict) -> str:
    """"3 seeds, μ_γ pooled, 120 iters, Adam": what a Fig. 3(b) panel's runs share (readings, optimisers)."""
    from pavkit.toy.rl import ADDED_FIELDS  # what a run written before a field existed held

    seeds = min(table["seeds"])
    parts = [f"{seeds} seed{'s' if seeds != 1 else ''}" + ("" if seeds == max(table["seeds"]) else " or more")]
    names = {"adam": "Adam", "sgd": "SGD"}
    for key, label in (("mu_reading", "μ_γ {}"), ("iters", "{} iters"), ("optimizer", "{}")):
        values = {str(r.config.get(key, ADDED_FIELDS.get(key, "?"))) for r in runs}
        parts.append(label.format("/".join(names.get(v, v) for v in sorted(values))))
    return ", ".join(parts)


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


# ---------------------------------------------------------------------------------------------------------------
# Fig. 4, 5(b), 5(c), 6(a): test-time search runs (directories written by `pavkit llm search`).

POOL_SCORES = {"bon-orm": "orm", "bon-pav": "pqv", "bon-likelihood": "logprob_mean"}  # method → pool record key


@dataclass(frozen=True)
class SearchRun:
    """One search run as read from its directory: config.json, pool.jsonl, search.jsonl."""

    path: str
    config: dict
    pool: list[dict]
    search: list[dict]

    @property
    def base(self) -> str:
        """A short name of the base policy π (its folder name)."""
        from pathlib import Path

        return Path(self.config["policy"]).name

    @property
    def prover_label(self) -> str:
        """``bok:K`` → "Bo{K}(π)"; ``model:DIR`` → the folder name of DIR."""
        from pavkit.provers import VERIFIER_PROVERS, parse_prover

        return parse_prover(self.config["prover"], VERIFIER_PROVERS).label()


def load_search_runs(paths: Sequence[str]) -> list[SearchRun]:
    """Read search run directories; errors name the directory."""
    from pavkit.runs import read_json, read_records

    runs = []
    for p in paths:
        cfg = read_json(p, "config.json")
        if "pqv" not in cfg or "orm" not in cfg:
            raise ValueError(f"{p}/config.json: not a `pavkit llm search` run (no 'pqv'/'orm' field)")
        runs.append(SearchRun(str(p), cfg, read_records(p, "pool.jsonl"), read_records(p, "search.jsonl")))
    return runs


def _key_codes(rows: Sequence[Sequence[str | None]]) -> np.ndarray:
    """(P, M) int codes of answer keys per problem (equal strings → equal codes; None → -1)."""
    out = np.full((len(rows), len(rows[0]) if rows else 0), -1, dtype=np.int64)
    for p, row in enumerate(rows):
        codes: dict[str, int] = {}
        for i, k in enumerate(row):
            if k is not None:
                out[p, i] = codes.setdefault(k, len(codes))
    return out


def _interval_dict(per_problem: np.ndarray, seed: int) -> dict:
    from pavkit.analysis.metrics import accuracy_ci

    ci = accuracy_ci(per_problem, seed=seed)
    return {"mean": ci.mean.tolist(), "low": ci.low.tolist(), "high": ci.high.tolist()}


def search_table(pool: Sequence[dict], search: Sequence[dict], ns: Sequence[int], *, resamples: int = 200,
                 seed: int = 0) -> dict:
    r"""Accuracy (mean and 95 % bootstrap CI over problems) and mean compute per problem, per method and N.

    Only problems with every record (the pool when there is one, and every beam method at every N present) are
    used, so all methods are compared on the same problems. Pool methods at N: best-of-N exactly
    (:func:`exact_best_of_n`), majority by subsampling (``resamples`` draws), Pass@N in closed form. Compute at N:

        pool, bon-*      N·mean(num_tokens) + N·mean(verifier_tokens) + prompt_tokens   (one verifier model)
        pool, majority / pass   N·mean(num_tokens)                                       (no verifier)
        beam             generated_tokens + verifier_tokens of the record

    ``bon-likelihood`` (π's mean log-probability) costs like a verifier: π reads the prompt and each response
    once. It is left out when the pool records carry no ``logprob_mean`` (runs made before it existed).

    Returns:
        {"problems": P, "n_pool": M or None, "problem_indices": the P problems, method → {"n": [...],
         "accuracy": {"mean","low","high"}, "compute": [...], "per_problem": (T, P) accuracies, and for beam
         methods "any_correct": {...}}}
    """
    from pavkit.analysis.metrics import exact_best_of_n, subsample_majority
    from pavkit.estimators import pass_at_n_matrix

    wanted = {int(n) for n in ns}
    beams: dict[tuple[str, int], dict[int, dict]] = {}
    for r in search:
        if r["method"] not in BEAM_METHODS:  # a method this pavkit does not know: say so rather than drop it
            raise ValueError(f"search.jsonl: unknown beam method {r['method']!r} (known: {', '.join(BEAM_METHODS)})")
        if int(r["n"]) in wanted:
            beams.setdefault((r["method"], int(r["n"])), {})[int(r["problem_index"])] = r
    pool_by = {int(r["problem_index"]): r for r in pool}
    keep = set(pool_by) if pool_by else None
    for recs in beams.values():
        keep = set(recs) if keep is None else keep & set(recs)
    keep = sorted(keep or ())
    out: dict = {"problems": len(keep), "n_pool": None, "problem_indices": keep}
    if not keep:
        return out
    if pool_by:
        rows = [pool_by[i] for i in keep]
        m = min(len(r["correct"]) for r in rows)
        out["n_pool"] = m
        pool_ns = sorted({int(n) for n in ns if n <= m})
        correct = np.array([r["correct"][:m] for r in rows], dtype=float)
        gen = np.array([r["num_tokens"][:m] for r in rows], dtype=float).mean(axis=1)  # (P,)
        ver = np.array([r["verifier_tokens"][:m] for r in rows], dtype=float).mean(axis=1)
        prompt = np.array([r["prompt_tokens"] for r in rows], dtype=float)
        per = {method: exact_best_of_n(correct, np.array([r[key][:m] for r in rows]), pool_ns)
               for method, key in POOL_SCORES.items() if all(key in r for r in rows)}
        per["majority"] = subsample_majority(correct, _key_codes([r["vote_keys"][:m] for r in rows]), pool_ns,
                                             resamples=resamples, seed=seed)
        per["pass"] = pass_at_n_matrix(correct, pool_ns)
        for method, acc in per.items():
            uses_verifier = method.startswith("bon-")
            compute = [float(np.mean(n * gen + (n * ver + prompt if uses_verifier else 0.0))) for n in pool_ns]
            out[method] = {"n": pool_ns, "accuracy": _interval_dict(acc, seed), "compute": compute,
                           "per_problem": np.asarray(acc).tolist()}
    for method in BEAM_METHODS:
        widths = sorted(n for (m_, n) in beams if m_ == method)
        if not widths:
            continue
        recs = [[beams[(method, n)][i] for i in keep] for n in widths]
        acc = np.array([[float(r["correct"]) for r in row] for row in recs])
        anyc = np.array([[float(r["any_correct"]) for r in row] for row in recs])
        compute = [float(np.mean([r["generated_tokens"] + r["verifier_tokens"] for r in row])) for row in recs]
        out[method] = {"n": widths, "accuracy": _interval_dict(acc, seed), "compute": compute,
                       "any_correct": _interval_dict(anyc, seed), "per_problem": acc.tolist()}
    return out


def run_table(run: SearchRun, ns: Sequence[int] | None = None, **kw) -> dict:
    """:func:`search_table` of one run at its configured N values (or ``ns``)."""
    return search_table(run.pool, run.search, ns or run.config["ns"], **kw)


def _curve(entry: dict, x: str = "compute", which: str = "accuracy") -> tuple:
    xs = np.array(entry["n"] if x == "n" else entry[x], dtype=float)
    v = entry[which]
    return xs, np.array(v["mean"]), np.array(v["low"]), np.array(v["high"])


def fig4_summary(table: dict, baseline: str = "bon-orm", method: str = "beam-pav") -> dict:
    """The numbers Fig. 4 annotates: compute-to-match and the accuracy gain at the largest equal budget.

    target = the baseline's accuracy at its largest N; compute_ratio = the compute the baseline spends at its
    largest N ÷ the compute the method needs to reach that accuracy (:func:`compute_to_match`; the paper's
    "compute PAV search needs to match ORM best-of-128"), a lower bound when the method's first point is already
    above the target; ``compute_ratio_by_n`` the same against the baseline at each of its N; accuracy_gain =
    method − baseline accuracy at the largest compute both curves cover (log-linear interpolation), and
    accuracy_gain_at_n at the largest N both have. ``baseline_monotone`` says whether the baseline's accuracy grows
    with N: when it does not, "matching" it says little (see README). :func:`fig4_headline` words it.
    """
    from pavkit.analysis.metrics import accuracy_at_compute, compute_to_match

    if baseline not in table or method not in table:
        raise ValueError(f"the run has no {baseline!r} or no {method!r} results")
    b, a = table[baseline], table[method]
    acc_b, acc_a = b["accuracy"]["mean"], a["accuracy"]["mean"]
    target = acc_b[-1]
    match = compute_to_match(a["compute"], acc_a, b["compute"], acc_b, target)
    budget = min(max(a["compute"]), max(b["compute"]))
    at_a, at_b = accuracy_at_compute(a["compute"], acc_a, budget), accuracy_at_compute(b["compute"], acc_b, budget)
    common = sorted(set(a["n"]) & set(b["n"]))
    gain_n = (acc_a[a["n"].index(common[-1])] - acc_b[b["n"].index(common[-1])]) if common else None
    spent = float(b["compute"][-1])
    ratio = None if match.compute_a is None else spent / match.compute_a
    by_n = {}
    for n, c, acc in zip(b["n"], b["compute"], acc_b, strict=True):  # the same ratio against best-of-n, each n
        m = compute_to_match(a["compute"], acc_a, b["compute"], acc_b, acc)
        by_n[n] = None if m.compute_a is None else float(c) / m.compute_a
    return {"method": method, "baseline": baseline, "n": b["n"][-1], "target": target,
            "compute_ratio_by_n": by_n,
            "compute_method": match.compute_a, "compute_baseline": spent,
            "compute_baseline_to_reach": match.compute_b, "compute_ratio": ratio,
            "ratio_is_lower_bound": ratio is not None and match.lower_bound, "budget": budget,
            "baseline_monotone": bool(np.all(np.diff(acc_b) >= -1e-9)),
            "accuracy_gain": None if at_a is None or at_b is None else at_a - at_b,
            "gain_n": common[-1] if common else None, "accuracy_gain_at_n": gain_n}


def fig4_figure(run: SearchRun, ax=None, table: dict | None = None):
    """Accuracy vs compute: ORM/PAV-as-ORM best-of-N, majority, beam search with Q^π and with PAV, Pass@N dashed."""
    ax = _new_axes(ax)
    from pavkit.analysis.plots import plot_search_curves

    table = table or run_table(run)
    curves = {k: _curve(table[k]) for k in ("bon-orm", "bon-pav", "bon-likelihood", "majority", "beam-q",
                                             "beam-pav", "pass") if k in table}
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


def base_prover_grid(runs: Sequence[SearchRun], n: int = 16) -> dict:
    """% improvement of PAV beam search over ORM best-of-N at N = ``n`` for every (base, prover) run, with a 95 %
    bootstrap interval over problems.

    improvement = 100·(acc_beam-pav − acc_bon-orm) / acc_bon-orm on the problems both have, with bon-orm from the
    first run of the same base that has a pool (NaN when that accuracy is 0 or missing); the interval resamples
    those problems (:func:`relative_gain_ci`). Provers are ordered Bo1, Bo2, Bo4, …, then named checkpoints.

    Returns {"bases": [...], "provers": [...], "values", "low", "high": (B, K) lists, "n": n}.
    """
    from pavkit.analysis.metrics import relative_gain_ci

    def per_problem(t: dict, method: str) -> dict[int, float]:
        return dict(zip(t["problem_indices"], t[method]["per_problem"][0], strict=True))

    orm: dict[str, dict[int, float]] = {}
    pav: dict[tuple[str, str], dict[int, float]] = {}
    where: dict[tuple[str, str], str] = {}
    for r in runs:
        t = run_table(r, ns=[n])
        if "bon-orm" in t and n in t["bon-orm"]["n"]:
            orm.setdefault(r.base, per_problem(t, "bon-orm"))
        if "beam-pav" in t and n in t["beam-pav"]["n"]:
            key = (r.base, r.prover_label)
            if key in pav:  # e.g. the same base and prover searched with other verifiers: ambiguous, refuse
                raise ValueError(f"{r.path}: a second run of base {key[0]!r} with prover {key[1]!r} "
                                 f"(also in {where[key]}); give one run per (base, prover)")
            pav[key], where[key] = per_problem(t, "beam-pav"), r.path
    if not pav:
        raise ValueError(f"no beam-pav results at N = {n} in these runs")
    bases = sorted({b for b, _ in pav})
    provers = sorted({p for _, p in pav}, key=_prover_order)
    grid = {k: np.full((len(bases), len(provers)), np.nan) for k in ("values", "low", "high")}
    for (b, p), accs in pav.items():
        common = sorted(set(accs) & set(orm.get(b, {})))
        if common:
            ci = relative_gain_ci(np.array([accs[i] for i in common]), np.array([orm[b][i] for i in common]))
            for k, v in (("values", ci.mean), ("low", ci.low), ("high", ci.high)):
                grid[k][bases.index(b), provers.index(p)] = v
    return {"bases": bases, "provers": provers, **{k: v.tolist() for k, v in grid.items()}, "n": n}


def _prover_order(label: str) -> tuple:
    """Sort key of prover labels: Best-of-K provers by K ("Bo2(π)" before "Bo16(π)"), then the others by name."""
    import re

    m = re.fullmatch(r"Bo(\d+)\(π\)", label)
    return (0, int(m.group(1)), "") if m else (1, 0, label)


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


def pool_ranking(pool: Sequence[dict]) -> dict:
    """How each pool score ranks the responses of the same problem (the measure that counts) and pooled.

    For ``orm``, ``pqv`` and ``logprob_mean`` (π's likelihood) when every record has it: ``within_auc``,
    ``within_auc_se`` and ``problems`` from :func:`pavkit.llm.verifier.within_problem_auc` (problems with both
    correct and wrong responses), and ``pooled_auc`` (:func:`binary_auc` over all responses of all problems,
    which also rewards knowing which problems are hard). Returns {score key → {...}}.
    """
    from pavkit.llm.verifier import binary_auc, within_problem_auc

    out = {}
    for key in POOL_SCORES.values():
        if not pool or not all(key in r for r in pool):
            continue
        scores = np.concatenate([np.asarray(r[key], dtype=float) for r in pool])
        correct = np.concatenate([np.asarray(r["correct"], dtype=float) for r in pool])
        groups = np.concatenate([np.full(len(r["correct"]), int(r["problem_index"])) for r in pool])
        w = within_problem_auc(scores, correct, groups)
        out[key] = {"within_auc": w["auc"], "within_auc_se": w["se"], "problems": w["problems"],
                    "pooled_auc": binary_auc(scores, correct)}
    return out


def best_of_n_growth(pool: Sequence[dict], key: str = "orm", n: int | None = None, seed: int = 0) -> dict:
    """Does best-of-N by pool score ``key`` get better with N? Best-of-1 vs best-of-``n`` (default: the pool
    size M) on the same problems, exactly (:func:`exact_best_of_n`), with a paired 95 % bootstrap CI over problems
    of the difference. ``grows`` is True when that CI lies above 0. Returns {"n", "best_of_1", "best_of_n",
    "gain", "gain_low", "gain_high", "grows"}."""
    from pavkit.analysis.metrics import accuracy_ci, exact_best_of_n

    m = min(len(r["correct"]) for r in pool)
    n = m if n is None else n
    correct = np.array([r["correct"][:m] for r in pool], dtype=float)
    acc = exact_best_of_n(correct, np.array([r[key][:m] for r in pool], dtype=float), [1, n])  # (2, P)
    diff = accuracy_ci((acc[1] - acc[0])[None, :], seed=seed)
    return {"n": n, "best_of_1": float(acc[0].mean()), "best_of_n": float(acc[1].mean()),
            "gain": float(diff.mean[0]), "gain_low": float(diff.low[0]), "gain_high": float(diff.high[0]),
            "grows": bool(diff.low[0] > 0)}


def fig10_table(pool: Sequence[dict], alpha: float, k: int, *, valid_fraction: float = 0.5, seed: int = 0) -> dict:
    r"""Fig. 10: per step h, the error of predicting a response's final outcome by thresholding, at step h,

        Q̂^π(s_h, a_h) = V̂(s_{h+1})                            ("Q^π", the PQV alone)
        Q̂^π(s_h, a_h) + α·(Q̂^μ(s_{h+1}) − Q̂^μ(s_h)),  Q̂^μ = 1 − (1 − V̂)^K     (the effective reward, Bo-K prover)

    with V̂ the PQV's values of the pool responses' prefixes (``pqv_steps``). The threshold of each step and each
    score is tuned on a ``valid_fraction`` of the problems (a seeded split) and the error is measured on the
    others (:func:`pavkit.analysis.metrics.best_threshold`). Responses with fewer than h steps do not count at
    step h. Returns {"steps": [h...], "q": [...], "effective": [...], "base_rate": [...] (the error of the best
    constant on the test problems), "responses": [...] (test responses at step h), "alpha", "k",
    "valid_problems", "test_problems"}.
    """
    from pavkit.analysis.metrics import best_threshold, threshold_error
    from pavkit.estimators import bok, effective_reward

    rows = [r for r in pool if "pqv_steps" in r]
    if len(rows) < 2:
        raise ValueError("Fig. 10 needs pool records with pqv_steps from at least two problems")
    problems = np.array(sorted({int(r["problem_index"]) for r in rows}))
    perm = np.random.default_rng(np.random.SeedSequence([int(seed), 0xF10])).permutation(problems)
    n_valid = min(max(1, round(valid_fraction * len(problems))), len(problems) - 1)
    valid = set(perm[:n_valid].tolist())
    by_step: dict[int, dict[str, list]] = {}
    for r in rows:
        split = "valid" if int(r["problem_index"]) in valid else "test"
        for v, ok in zip(r["pqv_steps"], r["correct"], strict=True):
            v = np.asarray(v, dtype=float)
            q, eff = v[1:], effective_reward(v[None], bok(v, k)[None], alpha)[0]
            for h in range(1, len(v)):
                cell = by_step.setdefault(h, {f"{s}_{x}": [] for s in ("valid", "test") for x in "qey"})
                cell[f"{split}_q"].append(q[h - 1]), cell[f"{split}_e"].append(eff[h - 1])
                cell[f"{split}_y"].append(float(ok))
    out: dict = {"steps": [], "q": [], "effective": [], "base_rate": [], "responses": [], "alpha": alpha, "k": k,
                 "valid_problems": n_valid, "test_problems": len(problems) - n_valid}
    for h in sorted(by_step):
        c = by_step[h]
        if not c["valid_y"] or not c["test_y"]:
            continue
        out["steps"].append(h)
        for key, x in (("q", "q"), ("effective", "e")):
            tau, _ = best_threshold(c[f"valid_{x}"], c["valid_y"])
            out[key].append(threshold_error(c[f"test_{x}"], c["test_y"], tau))
        rate = float(np.mean(c["test_y"]))
        out["base_rate"].append(min(rate, 1 - rate))
        out["responses"].append(len(c["test_y"]))
    return out


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


# ---------------------------------------------------------------------------------------------------------------
# Fig. 7 and 8: online RL on an LLM (directories written by `pavkit llm rl`; --iters 0 runs evaluate SFT / RFT).


def _llm_runs(runs: Sequence[RLRun]) -> tuple[dict[str, list[RLRun]], dict[str, RLRun]]:
    """RL runs by method, and the evaluation-only runs keyed "rft" (the RL runs' initial policy) or "sft".

    All runs must share their held-out problems (config "eval_problems"); ValueError naming them otherwise.
    """
    if not runs or any("eval_problems" not in r.config for r in runs):
        raise ValueError("need `pavkit llm rl` run directories (config.json with 'eval_problems')")
    problems = {r.config["eval_problems"] for r in runs}
    if len(problems) != 1:
        raise ValueError(f"runs evaluate on different problems: {sorted(problems)}")
    trained = {m: g for m, g in _by_method(runs).items() if m != "initial"}
    rl_policies = {r.config["policy"] for g in trained.values() for r in g}
    initial: dict[str, RLRun] = {}
    for r in runs:
        if r.method == "initial":
            key = "rft" if r.config["policy"] in rl_policies else "sft"
            if key in initial:  # keep the one with more samples per problem (the Pass@256 reference)
                r = max(initial[key], r, key=lambda x: x.final()["eval_samples"])
            initial[key] = r
    return trained, initial


def rl_llm_summary(runs: Sequence[RLRun]) -> dict:
    """The numbers behind Fig. 7 and 8 (and bench/rl.py).

    - per method: final accuracy (mean over seeds, 95 % bootstrap CI), Pass@N at the last iteration;
    - ``sample_efficiency``: iterations outcome-only RL needs to reach its own final mean accuracy ÷ iterations
      PAV-RL needs to reach it (mean curves over seeds). "Reach" is sustained: the first evaluation from which
      the curve stays at or above the level, so a noise spike of a flat curve does not count; None when PAV-RL
      ends below the level;
    - ``accuracy_gain``: final PAV-RL − final outcome-only accuracy, ``accuracy_gain_ci`` its 95 % interval from
      the per-problem final accuracies, resampling problems and seeds (``seed_problem_gain_ci``);
      ``pass_at_n_gain``: the same gain at the largest common N;
    - ``sft`` / ``rft``: accuracy and Pass@N of the evaluation-only runs, when given.
    """
    from pavkit.analysis.metrics import reach_ratio

    trained, initial = _llm_runs(runs)
    out: dict = {}
    curves = {}
    for method, group in trained.items():
        it, acc = _aligned(group)
        curves[method] = (it, acc.mean(axis=0))
        final = bootstrap_ci(np.array([r.final()["accuracy"] for r in group]))
        passes = [r.final().get("pass_at_n") for r in group]
        entry = {"runs": len(group), "final_accuracy": float(final.mean),
                 "final_ci": [float(final.low), float(final.high)], "iterations": int(it[-1])}
        if all(passes):
            entry["pass_at_n"] = {"n": passes[0]["n"],
                                  "values": np.mean([p["values"] for p in passes], axis=0).tolist()}
        out[method] = entry
    for key, r in initial.items():
        out[key] = {"accuracy": r.final()["accuracy"], "pass_at_n": r.final().get("pass_at_n"),
                    "samples": r.final()["eval_samples"]}
    if "sft" in initial and trained:
        out["unsolved_by_sft"] = hard_problem_curves(runs)
    if {"effective_reward", "outcome_only"} <= set(out):
        eff, base = out["effective_reward"], out["outcome_only"]
        level = float(curves["outcome_only"][1][-1])
        r = reach_ratio(*curves["effective_reward"], *curves["outcome_only"], level, sustained=True)
        out["reach"] = {"level": level, "sustained": True, "pav_iters": r.method_iters,
                        "outcome_iters": r.baseline_iters, "ratio_is_lower_bound": r.lower_bound}
        out["sample_efficiency"] = r.ratio
        out["accuracy_gain"] = eff["final_accuracy"] - base["final_accuracy"]
        per_problem = {m: [np.asarray(r.final().get("correct_counts", []), float) / r.final().get("eval_samples", 1)
                           for r in trained[m]] for m in ("effective_reward", "outcome_only")}
        if all(len(a) for rows in per_problem.values() for a in rows):
            ci = seed_problem_gain_ci(np.array(per_problem["effective_reward"]), np.array(per_problem["outcome_only"]))
            out["accuracy_gain_ci"] = [float(ci.low), float(ci.high)]
        if "pass_at_n" in eff and "pass_at_n" in base:
            common = sorted(set(eff["pass_at_n"]["n"]) & set(base["pass_at_n"]["n"]))
            if common:
                pe = dict(zip(eff["pass_at_n"]["n"], eff["pass_at_n"]["values"], strict=True))
                pb = dict(zip(base["pass_at_n"]["n"], base["pass_at_n"]["values"], strict=True))
                out["pass_at_n_gain"] = {"n": common[-1], "gain": pe[common[-1]] - pb[common[-1]]}
    return out


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
    trained, _ = _llm_runs(runs)
    curves = {}
    for method, group in trained.items():
        it, acc = _aligned(group)
        ci = bootstrap_ci(acc)
        curves[method] = (ci.mean, ci.low, ci.high)
    plot_learning_curves(it, curves, ax=axes[1], ylabel="test accuracy", labels=labels)
    title = f"(b) sample efficiency ({run_count([r for g in trained.values() for r in g])})"
    name = labels.get("effective_reward", "PAV-RL")
    if s.get("sample_efficiency") is not None:
        title += (f"\n{name} reaches outcome-only's final accuracy {s['sample_efficiency']:.1f}× sooner"
                  f"{' (at least)' if s['reach']['ratio_is_lower_bound'] else ''}; "
                  f"gain {s['accuracy_gain']:+.3f}")
    elif "reach" in s:
        title += (f"\n{name} never reaches outcome-only's final accuracy ({s['reach']['level']:.3f}); "
                  f"gain {s['accuracy_gain']:+.3f}")
    axes[1].set_title(title, fontsize=9)
    lows = [c[1].min() for c in curves.values()]
    axes[1].set_ylim(max(0.0, min(lows) - 0.05), min(1.02, max(c[2].max() for c in curves.values()) + 0.05))
    return axes[0].figure


def rl_arm_labels(runs: Sequence[RLRun]) -> dict[str, str]:
    """Names that replace the default ones of the RL arms: PAV-RL whose advantages all come from the organism's
    exact step checker (``--verifier organism-oracle``) is the "exact-advantage control", not a PAV."""
    from pavkit.llm.verifier import ORACLE

    pav = [r for r in runs if r.method == "effective_reward"]
    if pav and all(r.config.get("verifier") == ORACLE for r in pav):
        return {"effective_reward": "exact-advantage control"}
    return {}


def hard_problem_curves(runs: Sequence[RLRun]) -> dict:
    """Fig. 8(b): Pass@N of each RL method on the held-out problems the SFT run never solved (0 correct).

    Returns {"n", "hard": number of such problems, "problems", "reference_samples", method → {"mean", "low",
    "high"}}; without any such problem, no method entries (Pass@N of an empty set is undefined).
    """
    trained, initial = _llm_runs(runs)
    if "sft" not in initial:
        raise ValueError("Fig. 8(b) needs an evaluation-only run (--iters 0) of the SFT policy")
    ref = initial["sft"].final()
    hard = np.asarray(ref["correct_counts"]) == 0
    out: dict = {"hard": int(hard.sum()), "problems": int(hard.size), "reference_samples": ref["eval_samples"]}
    if not hard.any():
        return out
    for method, group in trained.items():
        rows = []
        for r in group:
            f = r.final()
            counts, k = np.asarray(f["correct_counts"]), f["eval_samples"]
            ns = [n for n in f["pass_at_n"]["n"] if n <= k]
            rows.append(mean_pass_at_n(counts[hard], k, ns))
        ci = bootstrap_ci(np.array(rows))
        out["n"] = ns
        out[method] = {"mean": np.atleast_1d(ci.mean).tolist(), "low": np.atleast_1d(ci.low).tolist(),
                       "high": np.atleast_1d(ci.high).tolist()}
    return out


def fig8_figure(runs: Sequence[RLRun], axes=None):
    """Fig. 8: (a) Pass@N of SFT, RFT, outcome-only RL and PAV-RL; (b) Pass@N on the problems SFT never solved."""
    if axes is None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    trained, initial = _llm_runs(runs)
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
