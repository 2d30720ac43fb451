"""Search analysis: accuracy at N from one pool (against exact enumeration), compute-to-match by hand, the search
table of run records, and the Fig. 4 / 5(b) / 5(c) / 6(a) figures' contents."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from pavkit.analysis.figures import fig4_figure, fig4_headline, fig5b_figure, fig5c_figure, fig6a_figure
from pavkit.analysis.loaders import SearchRun, load_search_runs
from pavkit.analysis.metrics import (
    accuracy_at_compute,
    accuracy_ci,
    best_threshold,
    compute_to_match,
    exact_best_of_n,
    relative_gain_ci,
    subsample_best_of_n,
    subsample_majority,
    threshold_error,
)
from pavkit.analysis.plots import STYLE, coincident, plot_search_curves, styles
from pavkit.analysis.tables import (
    base_prover_grid,
    best_of_n_growth,
    fig4_summary,
    fig10_table,
    pool_ranking,
    search_table,
)
from pavkit.estimators import pass_at_n_matrix

CORRECT = np.array([[1, 0, 0, 1, 0], [0, 1, 1, 0, 0], [0, 0, 0, 0, 1]], dtype=float)
SCORES = np.array([[0.9, 0.8, 0.1, 0.3, 0.5], [0.2, 0.6, 0.1, 0.7, 0.4], [0.5, 0.4, 0.3, 0.2, 0.1]])
TIED = np.array([[0.5, 0.5, 0.1, 0.5, 0.2], [0.3, 0.3, 0.3, 0.3, 0.3], [0.9, 0.1, 0.1, 0.9, 0.9]])
KEYS = np.array([[0, 1, 1, 0, -1], [2, 0, 0, 1, 1], [-1, -1, 0, 1, 0]])
KEY_CORRECT = np.array([[1, 0, 0, 1, 0], [0, 1, 1, 0, 0], [0, 0, 1, 0, 1]], dtype=float)


def enumerate_best_of_n(correct, scores, n, ordered=False):
    """Mean over every N-subset (or ordered N-tuple) of the correctness of its first highest-scored sample."""
    out = []
    for c, s in zip(correct, scores, strict=True):
        draws = itertools.permutations(range(len(c)), n) if ordered else itertools.combinations(range(len(c)), n)
        vals = [c[d[int(np.argmax(s[list(d)]))]] for d in draws]
        out.append(np.mean(vals))
    return np.array(out)


def enumerate_majority(correct, keys, n):
    """Mean over ordered N-tuples of the correctness of the plurality key (ties: seen first; -1 never votes)."""
    out = []
    for c, k in zip(correct, keys, strict=True):
        vals = []
        for d in itertools.permutations(range(len(c)), n):
            counts, first = {}, {}
            for i in d:
                if k[i] >= 0:
                    counts[k[i]] = counts.get(k[i], 0) + 1
                    first.setdefault(k[i], i)
            if not counts:
                vals.append(0.0)
                continue
            best = max(counts.values())
            winner = min((key for key in counts if counts[key] == best), key=lambda key: d.index(first[key]))
            vals.append(c[first[winner]])
        out.append(np.mean(vals))
    return np.array(out)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_best_of_n_against_exact_enumeration(n):
    exact = exact_best_of_n(CORRECT, SCORES, [n])[0]
    np.testing.assert_allclose(exact, enumerate_best_of_n(CORRECT, SCORES, n), atol=1e-12)
    sub = subsample_best_of_n(CORRECT, SCORES, [n], resamples=4000, seed=1)[0]
    np.testing.assert_allclose(sub, exact, atol=0.03)


@pytest.mark.parametrize("n", [2, 3])
def test_best_of_n_with_tied_scores(n):
    # ties go to the first sample in a random draw order: enumerate ordered tuples
    exact = exact_best_of_n(CORRECT, TIED, [n])[0]
    np.testing.assert_allclose(exact, enumerate_best_of_n(CORRECT, TIED, n, ordered=True), atol=1e-12)
    np.testing.assert_allclose(subsample_best_of_n(CORRECT, TIED, [n], resamples=4000, seed=2)[0], exact, atol=0.03)


def test_best_of_n_hand_values():
    # problem 0 at N = 2: the pair holding sample 0 (score 0.9, correct) wins in 4 of 10 pairs; otherwise the best
    # is sample 1 (0.8, wrong) in 3 pairs, sample 4 (0.5, wrong) in 2, sample 3 (0.3, correct) in {2, 3}: 5/10.
    assert exact_best_of_n(CORRECT, SCORES, [2])[0, 0] == pytest.approx(0.5)
    assert exact_best_of_n(CORRECT, SCORES, [5])[:, 0].tolist() == [1.0]  # N = M: the argmax, sample 0


@pytest.mark.parametrize("n", [2, 3])
def test_majority_against_exact_enumeration(n):
    exact = enumerate_majority(KEY_CORRECT, KEYS, n)
    sub = subsample_majority(KEY_CORRECT, KEYS, [n], resamples=6000, seed=3)[0]
    np.testing.assert_allclose(sub, exact, atol=0.03)


def test_majority_ties_go_to_the_answer_seen_first():
    # M = N = 4 and every draw is a permutation: keys A, B, B, A tie 2-2, so the winner is whichever of A, B
    # comes first in the draw: half the time A (correct)
    correct, keys = np.array([[1, 0, 0, 1]], dtype=float), np.array([[0, 1, 1, 0]])
    np.testing.assert_allclose(subsample_majority(correct, keys, [4], resamples=4000, seed=0), [[0.5]], atol=0.03)
    # three votes for B beat two for A whatever the order; no answers at all is wrong
    assert subsample_majority(np.array([[1, 1, 0, 0, 0]]), np.array([[0, 0, 1, 1, 1]]), [5])[0, 0] == 0.0
    assert subsample_majority(np.array([[1, 1]]), np.array([[-1, -1]]), [2])[0, 0] == 0.0


def test_pass_at_n_matrix_against_enumeration():
    for n in (1, 2, 3):
        exact = [np.mean([c[list(d)].max() for d in itertools.combinations(range(5), n)]) for c in CORRECT]
        np.testing.assert_allclose(pass_at_n_matrix(CORRECT, [n])[0], exact, atol=1e-12)


def test_pool_functions_reject_bad_shapes():
    with pytest.raises(ValueError):
        subsample_best_of_n(CORRECT, SCORES[:, :4], [2])
    with pytest.raises(ValueError):
        exact_best_of_n(CORRECT, SCORES, [6])


def test_compute_to_match_by_hand():
    # a reaches 0.4 halfway (in log compute) between 10 and 100: sqrt(10·100) = 31.62; b reaches it at 1000
    m = compute_to_match([10, 100], [0.2, 0.6], [100, 1000], [0.3, 0.4], target=0.4)
    assert m.compute_a == pytest.approx(math.sqrt(1000)) and m.compute_b == pytest.approx(1000)
    assert m.ratio == pytest.approx(1000 / math.sqrt(1000)) and not m.lower_bound
    # a quarter of the way: 0.3 between 0.2 and 0.6 → 10^(1 + 1/4)
    assert compute_to_match([10, 100], [0.2, 0.6], [1, 2], [0.0, 0.3], 0.3).compute_a == pytest.approx(10 ** 1.25)
    # b never reaches the target: a lower bound with b's largest compute
    never_b = compute_to_match([10, 100], [0.2, 0.6], [100, 1000], [0.3, 0.35], target=0.4)
    assert never_b.compute_b is None and never_b.lower_bound and never_b.ratio == pytest.approx(1000 / math.sqrt(1000))
    # a never reaches it: no ratio
    never_a = compute_to_match([10, 100], [0.2, 0.3], [100, 1000], [0.3, 0.4], target=0.4)
    assert never_a.compute_a is None and never_a.ratio is None and never_a.compute_b == pytest.approx(1000)
    # a starts above the target: it needs at most its first compute, so the ratio is a lower bound
    above = compute_to_match([50, 100], [0.5, 0.6], [100, 1000], [0.3, 0.4], target=0.4)
    assert above.compute_a == 50 and above.ratio == pytest.approx(20) and above.lower_bound
    # unsorted input is sorted by compute first
    assert compute_to_match([100, 10], [0.6, 0.2], [1000, 100], [0.4, 0.3], 0.4).ratio == pytest.approx(m.ratio)
    with pytest.raises(ValueError):
        compute_to_match([0, 10], [0.1, 0.2], [1, 2], [0.1, 0.2], 0.1)


def test_accuracy_at_compute_and_ci():
    assert accuracy_at_compute([10, 1000], [0.2, 0.6], 100) == pytest.approx(0.4)
    assert accuracy_at_compute([10, 1000], [0.2, 0.6], 5) is None
    ci = accuracy_ci(np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(ci.mean, [0.75, 1.0])
    assert ci.low[0] < 0.75 < ci.high[0] + 1e-12 and ci.low[1] == ci.high[1] == 1.0


# ---------------------------------------------------------------------------------------------------------------
# Records → table → figures.


def _records(p=6, m=8, seed=0, pav_boost=0.3):
    """Synthetic pool and beam records: PQV beam search is right more often and cheaper than bon-orm at large N."""
    rng = np.random.default_rng(seed)
    pool, search = [], []
    for i in range(p):
        correct = (rng.random(m) < 0.4).tolist()
        correct[i % m] = True  # every problem solvable: ORM accuracy > 0
        pool.append({"problem_index": i, "problem_id": f"q{i}", "correct": correct,
                     "orm": (np.array(correct) * 0.3 + rng.random(m)).tolist(),
                     "pqv": (np.array(correct) * 0.5 + rng.random(m) * 0.6).tolist(),
                     "pqv_steps": [[0.5, *(rng.random(j % 3 + 1) * 0.5 + 0.5 * c).tolist()]
                                   for j, c in enumerate(correct)],
                     "logprob_mean": (np.array(correct) * 0.1 - rng.random(m)).tolist(),
                     "vote_keys": [f"num:{int(not c) * (j % 3)}" for j, c in enumerate(correct)],
                     "num_tokens": [10] * m, "verifier_tokens": [12] * m, "prompt_tokens": 5})
        for method in ("beam-q", "beam-pav"):
            for n in (2, 4, 8):
                ok = rng.random() < (0.3 + (pav_boost if method == "beam-pav" else 0.0))
                search.append({"problem_index": i, "problem_id": f"q{i}", "method": method, "n": n,
                               "correct": bool(ok), "any_correct": bool(ok or rng.random() < 0.5),
                               "generated_tokens": 15 * n, "verifier_tokens": 8 * n + 5, "forward_tokens": 0})
    return pool, search


def test_search_table_compute_and_problem_alignment():
    pool, search = _records()
    search = [r for r in search if not (r["problem_index"] == 5 and r["method"] == "beam-q" and r["n"] == 8)]
    t = search_table(pool, search, [2, 4, 8])
    assert t["problems"] == 5 and t["n_pool"] == 8  # problem 5 lacks a beam-q record: left out everywhere
    assert t["bon-orm"]["compute"] == [2 * 10 + 2 * 12 + 5, 4 * 10 + 4 * 12 + 5, 8 * 10 + 8 * 12 + 5]
    assert t["majority"]["compute"] == t["pass"]["compute"] == [20, 40, 80]
    assert t["beam-pav"]["compute"] == [15 * n + 8 * n + 5 for n in (2, 4, 8)]
    correct = np.array([r["correct"] for r in pool[:5]], dtype=float)
    np.testing.assert_allclose(t["pass"]["accuracy"]["mean"], pass_at_n_matrix(correct, [2, 4, 8]).mean(axis=1))
    np.testing.assert_allclose(t["bon-pav"]["accuracy"]["mean"],
                               exact_best_of_n(correct, np.array([r["pqv"] for r in pool[:5]]), [2, 4, 8]).mean(1))
    acc = [np.mean([r["correct"] for r in search if r["method"] == "beam-q" and r["n"] == n and r["problem_index"] < 5])
           for n in (2, 4, 8)]
    np.testing.assert_allclose(t["beam-q"]["accuracy"]["mean"], acc)
    assert all(lo <= m <= hi for lo, m, hi in zip(t["beam-q"]["accuracy"]["low"], acc, t["beam-q"]["accuracy"]["high"],
                                                  strict=True))
    s = fig4_summary(t)
    assert s["n"] == 8 and s["target"] == t["bon-orm"]["accuracy"]["mean"][-1]
    assert s["budget"] == min(max(t["beam-pav"]["compute"]), max(t["bon-orm"]["compute"]))


def test_search_table_refuses_an_unknown_beam_method():
    pool, search = _records()
    with pytest.raises(ValueError, match="unknown beam method 'beam-new'"):
        search_table(pool, [*search, {**search[0], "method": "beam-new"}], [2, 4, 8])


def test_fig4_summary_divides_the_baseline_spend_at_its_largest_n():
    def curve(ns, acc, compute):
        return {"n": ns, "accuracy": {"mean": acc, "low": acc, "high": acc}, "compute": compute}

    # ORM best-of-N rises to 0.4 at N = 8 (compute 800); PAV beam reaches 0.4 halfway (log) between 100 and 400
    t = {"bon-orm": curve([2, 4, 8], [0.2, 0.3, 0.4], [200, 400, 800]),
         "beam-pav": curve([1, 2, 4], [0.3, 0.5, 0.6], [100, 400, 1600])}
    s = fig4_summary(t)
    assert s["compute_method"] == pytest.approx(200.0) and s["compute_baseline"] == 800
    assert s["compute_ratio"] == pytest.approx(4.0) and not s["ratio_is_lower_bound"] and s["baseline_monotone"]
    # against best-of-2 (0.2 at 200) and best-of-4 (0.3 at 400) PAV beam's first point (0.3 at 100) is enough
    assert s["compute_ratio_by_n"] == {2: pytest.approx(2.0), 4: pytest.approx(4.0), 8: pytest.approx(4.0)}
    assert fig4_headline(s) == ("PAV beam vs ORM best-of-8: 4.0× less compute to match it; accuracy +0.300 at N = 4, "
                                f"{s['accuracy_gain']:+.3f} at equal compute")
    # a baseline that gets WORSE with N: the ratio still divides its spend at N = 8, flagged non-monotone
    t["bon-orm"] = curve([2, 4, 8], [0.5, 0.3, 0.2], [200, 400, 800])
    s = fig4_summary(t)
    assert s["compute_ratio"] == pytest.approx(8.0) and s["ratio_is_lower_bound"] and not s["baseline_monotone"]
    assert fig4_headline(s).startswith("PAV beam vs ORM best-of-8: ≥ 8.0× less compute to match it")
    t["beam-pav"] = curve([1, 2, 4], [0.1, 0.15, 0.19], [100, 400, 1600])
    assert fig4_headline(fig4_summary(t)).startswith("PAV beam vs ORM best-of-8: never reaches its accuracy (0.200)")


def _write_run(path, prover="bok:4", policy="/models/base-a", pav_boost=0.3, seed=0):
    path.mkdir(parents=True)
    pool, search = _records(seed=seed, pav_boost=pav_boost)
    cfg = {"policy": policy, "orm": "/v/orm", "pqv": "/v/pqv", "prover": prover, "alpha": 0.5, "ns": [2, 4, 8],
           "methods": ["bon-orm", "bon-pav", "majority", "pass", "beam-q", "beam-pav"]}
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pool))
    (path / "search.jsonl").write_text("".join(json.dumps(r) + "\n" for r in search))
    return path


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_fig4_and_fig6a_axes(tmp_path):
    (run,) = load_search_runs([str(_write_run(tmp_path / "r"))])
    ax = fig4_figure(run).axes[0]
    assert _legend(ax) == [STYLE[k]["label"] for k in ("bon-orm", "bon-pav", "bon-likelihood", "majority",
                                                           "beam-q", "beam-pav", "pass")]
    assert STYLE["beam-pav"]["label"] == r"beam search, PAV $Q^\pi + \alpha A^\mu$"  # mathtext, not "Q^π"
    assert ax.get_xscale() == "log" and "compute" in ax.get_xlabel()
    # the title words the same summary that summary.json holds and the README quotes
    headline = fig4_headline(fig4_summary(search_table(run.pool, run.search, [2, 4, 8])), sep=";\n")
    assert ax.get_title().endswith(headline) and "PAV beam vs ORM best-of-8" in headline
    pass_line = ax.get_lines()[-1]
    assert pass_line.get_linestyle() == "--"
    np.testing.assert_allclose(pass_line.get_xdata(), [20, 40, 80])
    ax6 = fig6a_figure(run).axes[0]
    assert _legend(ax6) == [STYLE[k]["label"] for k in ("pass", "beam-q", "beam-pav")]
    assert ax6.get_ylabel() == "Pass@N" and list(ax6.get_lines()[1].get_xdata()) == [2, 4, 8]
    t = search_table(run.pool, run.search, [2, 4, 8])
    np.testing.assert_allclose(ax6.get_lines()[2].get_ydata(), t["beam-pav"]["any_correct"]["mean"])


def test_fig5b_and_fig5c_axes(tmp_path):
    runs = load_search_runs([str(_write_run(tmp_path / f"k{k}", prover=f"bok:{k}", seed=k)) for k in (16, 2, 4)]
                            + [str(_write_run(tmp_path / "b", prover="model:/ckpt/strong", policy="/models/base-b",
                                              seed=9))])
    ax = fig5b_figure(runs).axes[0]
    assert _legend(ax) == ["PAV, Bo2(π) prover", "PAV, Bo4(π) prover", "PAV, Bo16(π) prover", "ORM best-of-N"]
    assert list(ax.get_lines()[0].get_xdata()) == [2, 4, 8]
    colours = [line.get_color() for line in ax.get_lines()]
    assert len(set(colours)) == 4 and colours[-1] == STYLE["bon-orm"]["color"]  # no prover in ORM's blue
    grid = base_prover_grid(runs, n=8)
    assert grid["bases"] == ["base-a", "base-b"] and grid["provers"] == ["Bo2(π)", "Bo4(π)", "Bo16(π)", "strong"]
    values, low, high = (np.array(grid[k]) for k in ("values", "low", "high"))
    ok = ~np.isnan(values)
    assert ((low[ok] <= values[ok]) & (values[ok] <= high[ok])).all() and (low[ok] < high[ok]).any()
    assert np.isnan(values[1, :3]).all() and np.isnan(values[0, 3])  # only the runs that exist
    t_a = search_table(runs[1].pool, runs[1].search, [8])
    orm_a = search_table(runs[0].pool, runs[0].search, [8])["bon-orm"]["accuracy"]["mean"][0]  # first base-a run
    assert values[0, 0] == pytest.approx(100 * (t_a["beam-pav"]["accuracy"]["mean"][0] - orm_a) / orm_a)
    ax_c = fig5c_figure(runs, n=8).axes[0]
    assert _legend(ax_c) == grid["provers"] and [t.get_text() for t in ax_c.get_xticklabels()] == grid["bases"]
    bars = [c for c in ax_c.containers if hasattr(c, "patches")]
    assert len(ax_c.patches) == 2 * 4 and len(bars) == 4 and all(c.errorbar is not None for c in bars)  # CIs


def test_relative_gain_ci_by_hand():
    ci = relative_gain_ci(np.array([1.0, 1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0, 1.0]))
    assert ci.mean == pytest.approx(50.0) and ci.low <= 50.0 <= ci.high and ci.low < ci.high
    same = relative_gain_ci(np.array([0.5, 0.5]), np.array([0.5, 0.5]))
    assert same.mean == same.low == same.high == 0.0
    assert np.isnan(relative_gain_ci(np.ones(3), np.zeros(3)).mean)
    with pytest.raises(ValueError):
        relative_gain_ci(np.ones(3), np.ones(2))


def test_curves_that_hide_each_other_are_marked():
    """Identical curves: dashed, "identical to" in the legend; a shared point: a larger hollow ring."""
    x = np.array([1.0, 2.0, 4.0])
    a, b = np.array([0.5, 0.6, 0.7]), np.array([0.1, 0.6, 0.2])
    curves = {"bon-orm": (x, a, a, a), "bon-pav": (x, a.copy(), a, a), "beam-q": (x, b, b, b),
              "PAV, Bo1(π) prover": (x[1:2], b[1:2], b[1:2], b[1:2])}
    assert coincident(curves) == {"bon-orm": (0, None), "bon-pav": (1, "bon-orm"), "beam-q": (2, None),
                                  "PAV, Bo1(π) prover": (3, None)}
    ax = plot_search_curves(curves)
    lines = ax.get_lines()
    assert _legend(ax)[1] == "PAV-as-ORM best-of-N (identical to ORM best-of-N)" and lines[1].get_linestyle() == "--"
    assert lines[0].get_markerfacecolor() != "none" and lines[2].get_markerfacecolor() == "none"
    assert lines[3].get_markersize() > lines[2].get_markersize() > lines[0].get_markersize()
    assert styles(["bon-orm", "X"])["X"]["color"] != STYLE["bon-orm"]["color"]


def test_load_search_runs_rejects_other_runs(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"prover": "gamma:10", "alpha": 1}))
    with pytest.raises(ValueError, match="not a `pavkit llm search` run"):
        load_search_runs([str(tmp_path)])
    assert isinstance(SearchRun("x", {"policy": "/a/b", "prover": "bok:4"}, [], []).base, str)


def test_plot_cli_writes_search_figures(tmp_path):
    from click.testing import CliRunner

    from pavkit.cli import main

    run = _write_run(tmp_path / "r")
    for kind in ("fig4", "fig5b", "fig5c", "fig6a", "fig10"):
        out = tmp_path / f"{kind}.png"
        extra = ["--n", "4"] if kind == "fig5c" else []
        result = CliRunner().invoke(main, ["plot", kind, str(run), "--out", str(out), *extra])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 1000
    bad = CliRunner().invoke(main, ["plot", "fig5c", str(run), "--out", str(tmp_path / "x.png"), "--n", "3"])
    assert bad.exit_code == 2 and "N = 3" in bad.output


def test_base_prover_grid_refuses_two_runs_of_one_base_and_prover(tmp_path):
    runs = load_search_runs([str(_write_run(tmp_path / "a")), str(_write_run(tmp_path / "b", pav_boost=0.0))])
    with pytest.raises(ValueError, match="second run"):
        base_prover_grid(runs, n=4)


def test_best_threshold_and_threshold_error_by_hand():
    # scores 0.1 0.4 0.35 0.8 with labels 0 0 1 1: τ = 0.35 misclassifies only 0.4 → error 1/4
    assert best_threshold([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == (0.35, 0.25)
    assert threshold_error([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.35) == 0.25
    assert best_threshold([0.2, 0.9], [1, 1]) == (0.2, 0.0)  # predict all 1
    tau, err = best_threshold([0.2, 0.9], [0, 0])
    assert tau == math.inf and err == 0.0  # predict all 0
    # against brute force over every candidate threshold
    rng = np.random.default_rng(3)
    s, y = rng.random(40).round(1), rng.random(40) < 0.4
    brute = min(np.mean((s >= t) != y) for t in [*np.unique(s), np.inf])
    assert best_threshold(s, y)[1] == pytest.approx(brute)
    with pytest.raises(ValueError):
        best_threshold([], [])


def test_pool_ranking_within_and_pooled():
    pool, _ = _records()
    r = pool_ranking(pool)
    assert set(r) == {"orm", "pqv", "logprob_mean"}
    from pavkit.llm.verifier import binary_auc

    aucs = [binary_auc(p["orm"], p["correct"]) for p in pool]
    aucs = [a for a in aucs if a is not None]
    assert r["orm"]["within_auc"] == pytest.approx(np.mean(aucs)) and r["orm"]["problems"] == len(aucs)
    flat = [x for p in pool for x in p["orm"]], [x for p in pool for x in p["correct"]]
    assert r["orm"]["pooled_auc"] == pytest.approx(binary_auc(*flat))
    assert "logprob_mean" not in pool_ranking([{k: v for k, v in p.items() if k != "logprob_mean"} for p in pool])


def test_search_table_has_bon_likelihood_only_when_recorded():
    pool, search = _records()
    t = search_table(pool, search, [2, 4])
    correct = np.array([r["correct"] for r in pool], dtype=float)
    np.testing.assert_allclose(t["bon-likelihood"]["accuracy"]["mean"],
                               exact_best_of_n(correct, np.array([r["logprob_mean"] for r in pool]), [2, 4]).mean(1))
    assert t["bon-likelihood"]["compute"] == t["bon-orm"]["compute"]  # π reads each response once, as a verifier
    old = [{k: v for k, v in r.items() if k != "logprob_mean"} for r in pool]
    assert "bon-likelihood" not in search_table(old, search, [2, 4])


def test_best_of_n_growth_by_hand():
    # problem 0: the ORM ranks the one correct response first (best-of-1 = 1/2, best-of-2 = 1); problem 1: it
    # ranks the wrong one first (best-of-1 = 1/2, best-of-2 = 0)
    pool = [{"correct": [True, False], "orm": [0.9, 0.1]}, {"correct": [True, False], "orm": [0.1, 0.9]}]
    g = best_of_n_growth(pool)
    assert g["n"] == 2 and g["best_of_1"] == 0.5 and g["best_of_n"] == 0.5 and g["gain"] == 0.0
    assert not g["grows"]
    good = best_of_n_growth([{"correct": [True, False], "orm": [0.9, 0.1]}] * 5)
    assert good["gain"] == 0.5 and good["gain_low"] == 0.5 and good["grows"]


def test_fig10_table_by_hand():
    # four problems, one response each; two steps. With K = 1 and α = 1 the effective reward of step h is
    # V(s_{h+1}) + (V(s_{h+1}) − V(s_h)) = 2 V(s_{h+1}) − V(s_h).
    pool = [{"problem_index": i, "correct": [c], "pqv_steps": [v]} for i, (c, v) in enumerate([
        (True, [0.5, 0.6, 0.9]), (False, [0.5, 0.6, 0.2]), (True, [0.5, 0.7, 0.8]), (False, [0.5, 0.4, 0.3])])]
    t = fig10_table(pool, alpha=1.0, k=1, valid_fraction=0.5, seed=0)
    assert t["steps"] == [1, 2] and t["valid_problems"] == 2 and t["test_problems"] == 2
    assert t["responses"] == [2, 2]
    # at step 2 both scores separate the outcomes on every problem, so any threshold tuned on the valid half
    # that separates it also separates the test half
    assert t["q"][1] == 0.0 and t["effective"][1] == 0.0
    assert all(0.0 <= e <= 1.0 for e in t["q"] + t["effective"] + t["base_rate"])
    with pytest.raises(ValueError, match="two problems"):
        fig10_table(pool[:1], alpha=1.0, k=1)
