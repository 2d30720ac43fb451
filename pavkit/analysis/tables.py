"""The numbers behind each figure, from loaded runs (pavkit.analysis.loaders): dicts and arrays, no drawing.

Fig. 3 (didactic RL): sweep_table, pass_at_n_table, fig3_summary; Fig. 4-6, 10 (search): search_table,
run_table, fig4_summary, base_prover_grid, pool_ranking, best_of_n_growth, fig10_table; Fig. 7-8 (LLM RL):
rl_llm_summary, hard_problem_curves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pavkit.analysis.loaders import RLRun, SearchRun
from pavkit.analysis.metrics import bootstrap_ci, seed_problem_gain_ci
from pavkit.estimators import mean_pass_at_n
from pavkit.llm.search import BEAM_METHODS
from pavkit.provers import TREE_PROVERS, parse_prover


def aligned_curves(runs: Sequence[RLRun]) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy curves of several runs on their common evaluation iterations: (T,), (S, T)."""
    curves = [r.curve() for r in runs]
    common = sorted(set.intersection(*(set(it.tolist()) for it, _ in curves)))
    if not common:
        raise ValueError("the runs share no evaluation iteration: " + ", ".join(r.path for r in runs))
    acc = np.array([[dict(zip(it.tolist(), a, strict=True))[i] for i in common] for it, a in curves])
    return np.array(common), acc



def runs_by_method(runs: Sequence[RLRun]) -> dict[str, list[RLRun]]:
    groups: dict[str, list[RLRun]] = {}
    for r in runs:
        groups.setdefault(r.method, []).append(r)
    return dict(sorted(groups.items()))



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



def pass_at_n_table(runs: Sequence[RLRun], iteration: int | None = None) -> dict:
    """Pass@N after ``iteration`` RL iterations (default: each run's pass_at_iter) per method, and of initial π.

    Returns:
        {"n": [...], method → {"mean", "low", "high"} lists, "initial" likewise}
    """
    out: dict = {}
    groups = {m: g for m, g in runs_by_method(runs).items()}
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



def fig3_summary(runs: Sequence[RLRun], level: float = 0.9) -> dict:
    """The numbers behind Fig. 3(a) and 3(c): final accuracies, iterations-to-reach ratio, Pass@N growth.

    Args:
        runs: effective-reward and outcome-only runs of one prover (several seeds each).
        level: accuracy level of the iterations-to-reach ratio.
    """
    from pavkit.analysis.metrics import growth_ratio, reach_ratio

    groups = runs_by_method(runs)
    out: dict = {"level": level}
    curves = {}
    for method, group in groups.items():
        it, acc = aligned_curves(group)
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


# fractions of outcome-only RL's own gain at which rl_llm_summary also reads the sample-efficiency ratio
REACH_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
POOL_SCORES = {"bon-orm": "orm", "bon-pav": "pqv", "bon-likelihood": "logprob_mean"}  # method → pool record key



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



def llm_runs_by_role(runs: Sequence[RLRun]) -> tuple[dict[str, list[RLRun]], dict[str, RLRun]]:
    """RL runs by method, and the evaluation-only runs keyed "rft" (the RL runs' initial policy) or "sft".

    All runs must share their held-out problems (config "eval_problems"); ValueError naming them otherwise.
    """
    if not runs or any("eval_problems" not in r.config for r in runs):
        raise ValueError("need `pavkit llm rl` run directories (config.json with 'eval_problems')")
    problems = {r.config["eval_problems"] for r in runs}
    if len(problems) != 1:
        raise ValueError(f"runs evaluate on different problems: {sorted(problems)}")
    trained = {m: g for m, g in runs_by_method(runs).items() if m != "initial"}
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
      ends below the level; ``sample_efficiency_ci`` its 95 % interval resampling seeds
      (``sustained_reach_ratio_ci``; 0 where PAV-RL never reaches); ``reach_by_level``: the same ratio at
      the levels a fraction (``REACH_FRACTIONS``) of the way from outcome-only's first mean evaluation to its final
      one, when it gained (one record per fraction: level, both arms' iterations, ratio) — a flat or noisy
      outcome-only curve holds its own final level only near its end, which moves the ratio at fraction 1;
    - ``accuracy_gain``: final PAV-RL − final outcome-only accuracy, ``accuracy_gain_ci`` its 95 % interval from
      the per-problem final accuracies, resampling problems and seeds (``seed_problem_gain_ci``);
      ``pass_at_n_gain``: the same gain at the largest common N;
    - ``sft`` / ``rft``: accuracy and Pass@N of the evaluation-only runs, when given.
    """
    from pavkit.analysis.metrics import reach_ratio, sustained_reach_ratio_ci

    trained, initial = llm_runs_by_role(runs)
    out: dict = {}
    curves = {}  # method → (iterations (T,), accuracy of each seed (S, T))
    for method, group in trained.items():
        it, acc = aligned_curves(group)
        curves[method] = (it, acc)
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
        (it_e, acc_e), (it_o, acc_o) = curves["effective_reward"], curves["outcome_only"]
        mean_e, mean_o = acc_e.mean(axis=0), acc_o.mean(axis=0)  # (T_e,), (T_o,)
        start, level = float(mean_o[0]), float(mean_o[-1])
        r = reach_ratio(it_e, mean_e, it_o, mean_o, level, sustained=True)
        out["reach"] = {"level": level, "sustained": True, "pav_iters": r.method_iters,
                        "outcome_iters": r.baseline_iters, "ratio_is_lower_bound": r.lower_bound}
        out["sample_efficiency"] = r.ratio
        if level > start:
            out["reach_by_level"] = []
            for f in REACH_FRACTIONS:  # fraction 1 is the headline's r, not recomputed
                at = level if f == 1 else start + f * (level - start)
                rf = r if f == 1 else reach_ratio(it_e, mean_e, it_o, mean_o, at, sustained=True)
                out["reach_by_level"].append({"fraction": f, "level": at, "pav_iters": rf.method_iters,
                                              "outcome_iters": rf.baseline_iters, "ratio": rf.ratio})
        common = np.intersect1d(it_e, it_o)
        if len(common) and common[-1] == it_o[-1]:  # the level is outcome-only's final accuracy: keep that point
            ci = sustained_reach_ratio_ci(common, acc_e[:, np.isin(it_e, common)], acc_o[:, np.isin(it_o, common)])
            out["sample_efficiency_ci"] = [float(ci.low), float(ci.high)]
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



def hard_problem_curves(runs: Sequence[RLRun]) -> dict:
    """Fig. 8(b): Pass@N of each RL method on the held-out problems the SFT run never solved (0 correct).

    Returns {"n", "hard": number of such problems, "problems", "reference_samples", method → {"mean", "low",
    "high"}}; without any such problem, no method entries (Pass@N of an empty set is undefined).
    """
    trained, initial = llm_runs_by_role(runs)
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


def table_summary(table: dict, pool: list[dict], methods) -> dict:
    """{"accuracy": {method: {N: mean}}, "compute": {method: {N: mean tokens}}, "problems", "fig4", "ranking"} of a
    search table; "ranking": within-problem and pooled AUC of each pool score
    (:func:`pavkit.analysis.tables.pool_ranking`)."""
    out: dict = {"accuracy": {}, "compute": {}, "problems": table["problems"]}
    for method in methods:
        if method in table:
            t = table[method]
            out["accuracy"][method] = {str(n): a for n, a in zip(t["n"], t["accuracy"]["mean"], strict=True)}
            out["compute"][method] = {str(n): x for n, x in zip(t["n"], t["compute"], strict=True)}
    out["fig4"] = fig4_summary(table) if "bon-orm" in table and "beam-pav" in table else None
    out["ranking"] = pool_ranking(pool)
    return out


def accuracy_intervals(entry: dict) -> dict:
    """A search-table entry's accuracy as {N: {"mean", "low", "high"}} (N as a string, for JSON)."""
    acc = entry["accuracy"]
    return {str(n): {"mean": acc["mean"][i], "low": acc["low"][i], "high": acc["high"][i]}
            for i, n in enumerate(entry["n"])}


def _signed(x: float | None) -> str:
    return "   n/a" if x is None else f"{x:+.3f}"


def bound_table_text(summary: dict) -> str:
    """`pavkit toy verify-bound`'s table: per prover, how often the improvement is >= 0 and each reading of
    Theorem 3.1 holds, the correlations, and the Remark 3.1 ratio (``summary`` of ``summarize_bound``)."""
    c = summary["config"]
    ratio = dict(zip(summary["remark_3_1"]["K"], summary["remark_3_1"]["distinguishability_ratio"],
                     strict=True))
    lines = [
        f"Theorem 3.1 on {c['instances']} random tree MDPs (A = {c['num_actions']}, H = {c['horizon']}, "
        f"α = {c['alpha']}, η = {c['lr']}, reward density {c['reward_density']}, scale {c['reward_scale']}; "
        f"median V^π(root) = {summary['median_v_root']:.3f}, median max Q^π = {summary['median_max_q']:.3f})",
        "",
        f"{'prover':<8} {'imp>=0':>7} {'+ held':>7} {'- held':>7} {'r(imp,dist)':>12} {'r(imp,align)':>13} "
        f"{'dist/dist(K=1)':>15}",
    ]
    for name, g in summary["per_prover"].items():
        prover = parse_prover(name, TREE_PROVERS)
        k = prover.k if prover.kind == "bok" else None
        r = f"{ratio[k]:.2f}" if k in ratio else "-"
        lines.append(
            f"{name:<8} {g['improvement_nonnegative']:>7.1%} {g['bound_plus_held']:>7.1%} "
            f"{g['bound_minus_held']:>7.1%} {_signed(g['correlation']['distinguishability']):>12} "
            f"{_signed(g['correlation']['alignment']):>13} {r:>15}"
        )
    lines += [
        "",
        f"all pairs: improvement >= 0 in {summary['improvement_nonnegative']:.1%}; "
        f"+ reading held in {summary['bound_plus_held']:.1%}, − reading in {summary['bound_minus_held']:.1%} "
        f"(held more often: {summary['held_more_often']}); exact first-order term within "
        f"{summary['first_order_median_rel_error']:.1%} (median) of the improvement",
    ]
    return "\n".join(lines)


def fig3_text(summary: dict, sweep: dict, settings: str) -> str:
    """The demo's text summary (also printed)."""
    lines = [f"pavkit demo: planted sub-sequence RL (paper §3.3, Fig. 3); {settings}", ""]
    for method, name in (("effective_reward", "effective reward Q^π + α·A^μ"), ("outcome_only", "only Q^π")):
        m = summary.get(method)
        if m:
            lines.append(f"{name:<30} final accuracy {m['final_accuracy']:.3f} "
                         f"[95% CI {m['final_ci'][0]:.3f}, {m['final_ci'][1]:.3f}] after {m['iterations']} "
                         f"iterations ({m['runs']} seeds)")
    r = summary.get("reach")
    if r and r["ratio"] is not None:
        bound = ">= " if r["ratio_is_lower_bound"] else ""
        outcome = r["outcome_iters"] if r["outcome_iters"] is not None else "never (within the run)"
        lines.append(f"iterations to reach accuracy {summary['level']}: effective {r['effective_iters']}, outcome-only "
                     f"{outcome} → {bound}{r['ratio']:.1f}× more sample-efficient")
    g = summary.get("pass_at_n_growth_ratio")
    if "pass_at_n" in summary:
        t = summary["pass_at_n"]
        lines.append(f"Pass@N, N = {t['n'][0]}…{t['n'][-1]}: effective {t['effective_reward']['mean'][0]:.3f}"
                     f"→{t['effective_reward']['mean'][-1]:.3f}, outcome-only {t['outcome_only']['mean'][0]:.3f}"
                     f"→{t['outcome_only']['mean'][-1]:.3f}; growth ratio "
                     + (f"{g:.1f}×" if g is not None else "∞ (outcome-only Pass@N does not grow)"))
    lines.append("")
    lines.append("prover sweep (accuracy averaged over the run):")
    for x, m in zip(sweep["strength"], sweep["mean"], strict=True):
        lines.append(f"  {sweep['kind']}:{x:g}  {m:.3f}")
    if sweep["baseline"]:
        lines.append(f"  α = 0     {sweep['baseline'][0]:.3f}")
    return "\n".join(lines) + "\n"


def exact_text(spec: str, num_actions: int, horizon: int, num_states: int, report: dict) -> str:
    """The text of `pavkit toy exact`: V at the root per policy and the theorem's terms (``exact_report``)."""
    lines = [f"{spec}: A = {num_actions}, H = {horizon}, {num_states} states"]
    lines += [f"  V^{name}(root) = {v[0]:.6f}" for name, v in report["V"].items()]
    lines += [f"  {key:<19} {report[key]: .6e}" for key in ("distinguishability", "alignment", "improvement",
                                                             "first_order", "bound_plus", "bound_minus")]
    lines.append(f"  bound held: + reading {report['bound_plus_held']}, − reading {report['bound_minus_held']}")
    return "\n".join(lines)


def fig2a_text(rows: Sequence[dict], alpha: float, kept_q_only: Sequence[str], kept_effective: Sequence[str]) -> str:
    """The text of `pavkit toy table`: Fig. 2(a)'s rows (``toy.fig2.fig2a_rows``) and the beams each score keeps."""
    from pavkit.estimators import effective_reward_qa

    lines = ["Fig. 2(a): beam width 2, 3 proposals per state\n",
             f"{'state':<6} {'V^π(s)':>7}  {'action':<7} {'Q^π(s,a)':>9} {'A^π(s,a)':>9} {'Q+αA':>7}"]
    lines += [f"{r['state']:<6} {r['V']:>7.2f}  {r['action']:<7} {r['Q']:>9.2f} {r['A']:>+9.2f} "
              f"{float(effective_reward_qa(r['Q'], r['A'], alpha)):>7.3f}" for r in rows]
    lines += [f"\nkept by Q^π only:                {', '.join(kept_q_only)}",
              f"kept by Q^π + {alpha}·A^μ (μ = π):  {', '.join(kept_effective)}"]
    return "\n".join(lines)
