"""analysis.metrics against hand-computed values, runs.py bookkeeping, and the Fig. 3 figure functions."""

from __future__ import annotations

import json
from math import comb

import numpy as np
import pytest

from pavkit import runs
from pavkit.analysis.figures import fig3a_figure, fig3b_figure, fig3c_figure
from pavkit.analysis.loaders import RLRun
from pavkit.analysis.metrics import (
    bootstrap_ci,
    growth_ratio,
    iterations_to_reach,
    reach_ratio,
    sustained_reach_ratio_ci,
)
from pavkit.analysis.tables import fig3_summary, sweep_table


def test_bootstrap_ci_mean_and_degenerate_cases():
    x = np.array([[0.0, 1.0], [1.0, 1.0], [0.5, 1.0]])
    ci = bootstrap_ci(x)
    np.testing.assert_allclose(ci.mean, [0.5, 1.0])
    assert ci.low[0] < 0.5 < ci.high[0] and 0 <= ci.low[0] and ci.high[0] <= 1
    assert ci.low[1] == ci.high[1] == 1.0  # no spread, no interval
    one = bootstrap_ci(np.array([0.3]))
    assert one.mean == one.low == one.high == pytest.approx(0.3)
    with pytest.raises(ValueError):
        bootstrap_ci(np.zeros((0, 3)))


def test_bootstrap_ci_covers_a_known_mean():
    """~95 % of 95 % intervals from normal samples cover the true mean (200 trials, ±4 SE)."""
    rng = np.random.default_rng(0)
    covered = 0
    for i in range(200):
        ci = bootstrap_ci(rng.normal(1.0, 1.0, size=30), resamples=500, seed=i)
        covered += ci.low <= 1.0 <= ci.high
    assert abs(covered / 200 - 0.95) < 4 * np.sqrt(0.95 * 0.05 / 200) + 0.02  # percentile CIs run a bit narrow


def test_iterations_to_reach_and_reach_ratio():
    it = [0, 10, 20, 30]
    assert iterations_to_reach(it, [0.0, 0.5, 0.95, 0.9], 0.9) == 20
    assert iterations_to_reach(it, [0.0, 0.1, 0.2, 0.3], 0.9) is None
    # sustained: the spike at 10 does not count; a curve ending below the level never reaches it
    assert iterations_to_reach(it, [0.0, 0.95, 0.5, 0.9], 0.9, sustained=True) == 30
    assert iterations_to_reach(it, [0.95, 0.95, 0.95, 0.8], 0.9, sustained=True) is None
    assert iterations_to_reach(it, [0.95, 0.95, 0.95, 0.9], 0.9, sustained=True) == 0
    r = reach_ratio(it, [0, 0.5, 0.95, 1], it, [0, 0.1, 0.2, 0.91], 0.9)
    assert (r.method_iters, r.baseline_iters, r.ratio, r.lower_bound) == (20, 30, 1.5, False)
    r = reach_ratio(it, [0, 0.95, 1, 1], [0, 100, 200], [0, 0, 0], 0.9)
    assert r.ratio == 20.0 and r.lower_bound and r.baseline_iters is None
    r = reach_ratio(it, [0, 0, 0, 0], it, [1, 1, 1, 1], 0.9)
    assert r.ratio is None


def test_sustained_reach_ratio_ci_against_hand_computed_curves():
    it = [0, 10, 20, 30]
    # identical seeds: every resample is the full mean; method reaches 0.91 at 20 for good, baseline at 30
    ci = sustained_reach_ratio_ci(it, [[0, 0.5, 0.95, 1]] * 2, [[0, 0.1, 0.2, 0.91]])
    assert (float(ci.mean), float(ci.low), float(ci.high)) == (1.5, 1.5, 1.5)
    # mean method curve [0, .5, .5, .5] holds the level 0.5 from 10, the baseline from 30: 3×. A quarter of the
    # resamples draw the flat seed twice, never reach, and count as 0: the 2.5th percentile is 0.
    ci = sustained_reach_ratio_ci(it, [[0, 1, 1, 1], [0, 0, 0, 0]], [[0, 0.2, 0.4, 0.5]])
    assert (float(ci.mean), float(ci.low), float(ci.high)) == (3.0, 0.0, 3.0)
    # the point estimate is reach_ratio's on the mean curves
    rng = np.random.default_rng(0)
    it = np.arange(0, 500, 10)
    for _ in range(20):
        m, b = rng.uniform(0, 1, (3, 50)).cumsum(axis=1), rng.uniform(0, 1, (2, 50)).cumsum(axis=1)
        m += rng.normal(0, 2, m.shape)
        r = reach_ratio(it, m.mean(0), it, b.mean(0), b.mean(0)[-1], sustained=True)
        assert float(sustained_reach_ratio_ci(it, m, b, resamples=10).mean) == (r.ratio or 0.0)
    with pytest.raises(ValueError, match="T = 4"):
        sustained_reach_ratio_ci([0, 1, 2, 3], [[0, 1, 2]], [[0, 1, 2, 3]])


def test_mean_pass_at_n_matches_the_closed_form():
    from pavkit.estimators import mean_pass_at_n

    n, c = 20, 3
    ns = [1, 2, 5, 17, 18, 20]
    expected = [1 - comb(n - c, k) / comb(n, k) for k in ns]
    np.testing.assert_allclose(mean_pass_at_n([c], n, ns), expected, rtol=1e-10)
    both = [(e + 1 - comb(n - 1, k) / comb(n, k)) / 2 for e, k in zip(expected, ns, strict=True)]
    np.testing.assert_allclose(mean_pass_at_n([c, 1], n, ns), both, rtol=1e-10)  # the mean over problems
    assert growth_ratio([1, 8], [0.1, 0.6], [0.1, 0.2]) == pytest.approx(5.0)
    assert growth_ratio([1, 8], [0.1, 0.6], [0.0, 0.0]) is None


def test_open_run_records_and_truncation(tmp_path):
    assert runs.open_run(tmp_path, {"a": 1, "b": {"c": [1, 2]}}, seed=3) is False
    assert runs.open_run(tmp_path, {"a": 1, "b": {"c": (1, 2)}}) is True  # tuples read back as lists
    with pytest.raises(runs.RunConfigMismatch, match="'b.c'"):
        runs.open_run(tmp_path, {"a": 1, "b": {"c": [1, 3]}})
    for i in range(3):
        runs.append_record(tmp_path, {"iteration": i})
    with open(tmp_path / "train.jsonl", "a") as f:
        f.write('{"iteration": 3, "acc')  # a writer killed mid-line
    assert [r["iteration"] for r in runs.read_records(tmp_path)] == [0, 1, 2]
    assert runs.truncate_records(tmp_path, lambda r: r["iteration"] < 2) == 2
    assert (tmp_path / "train.jsonl").read_text() == '{"iteration": 0}\n{"iteration": 1}\n'
    (tmp_path / "bad.jsonl").write_text('{"x": 1}\nnot json\n{"x": 2}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        runs.read_records(tmp_path, "bad.jsonl")
    runs.write_metrics(tmp_path, {"final_accuracy": 0.5})
    assert runs.read_json(tmp_path, "metrics.json") == {"final_accuracy": 0.5}
    assert json.loads((tmp_path / "meta.json").read_text())["resumed"] is True


def _fake_run(prover: str, alpha: float, accs: list[float], seed: int, pass_values=(0.1, 0.3)) -> RLRun:
    """A run record set written by hand (analysis code under test, not RL)."""
    records = [{"iteration": 10 * i, "accuracy": a} for i, a in enumerate(accs)]
    records[0]["pass_at_n"] = {"n": [1, 4], "values": [0.0, 0.0]}
    records[1]["pass_at_n"] = {"n": [1, 4], "values": list(pass_values)}
    cfg = {"prover": prover, "alpha": alpha, "pass_at_iter": 10, "sft": {"gamma": 5.0}, "seed": seed}
    return RLRun(f"run-{prover}-{alpha}-{seed}", cfg, records)


def test_fig3_tables_and_figures_from_hand_written_runs():
    runs_ = [_fake_run("gamma:10", 1.0, [0, 0.5, 0.95], 0), _fake_run("gamma:10", 1.0, [0, 0.7, 0.93], 1),
             _fake_run("gamma:10", 0.0, [0, 0.0, 0.1], 0, (0.0, 0.02)),
             _fake_run("gamma:10", 0.0, [0, 0.0, 0.2], 1, (0.0, 0.04)),
             _fake_run("gamma:2", 1.0, [0, 0.1, 0.3], 0)]
    table = sweep_table(runs_)
    assert table["strength"] == [2.0, 10.0] and table["seeds"] == [1, 2]
    np.testing.assert_allclose(table["mean"], [0.2, (0.725 + 0.815) / 2])
    assert table["baseline"][0] == pytest.approx(0.075)
    s = fig3_summary(runs_[:4], level=0.9)
    assert s["reach"] == {"effective_iters": 20, "outcome_iters": None, "ratio": 1.0, "ratio_is_lower_bound": True}
    assert s["effective_reward"]["final_accuracy"] == pytest.approx(0.94)
    assert s["pass_at_n_growth_ratio"] == pytest.approx(0.2 / 0.03)
    for make in (fig3a_figure, fig3b_figure, fig3c_figure):
        fig = make(runs_)
        ax = fig.axes[0]
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("effective reward" in t for t in labels)


def test_fig3_titles_count_seeds_and_arms_and_mark_identical_curves():
    runs_ = [_fake_run("gamma:10", 1.0, [0, 0.5, 0.95], s) for s in (0, 1)]
    runs_ += [_fake_run("gamma:10", 0.0, [0, 0.0, 0.0], s, (0.0, 0.0)) for s in (0, 1)]
    assert "(prover gamma:10; 2 seeds × 2 arms)" in fig3a_figure(runs_).axes[0].get_title()
    uneven = fig3a_figure([*runs_, _fake_run("gamma:10", 1.0, [0, 0.5, 0.9], 2)]).axes[0].get_title()
    assert "effective reward: 3 seeds, outcome only: 2 seeds" in uneven
    # only-Q^π's Pass@N is 0 at every N, as is the initial π's: one of them says it hides the other
    ax = fig3c_figure(runs_).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum("(identical to " in t for t in labels) == 1
