"""Prover diagnostics (pavkit.llm.diagnose, estimators.sampled_complementarity): the split-half estimator against
hand-computed arrays and against exact values on a sampled tabular problem; the CLI on the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from pavkit.estimators import bok, complementarity, pass_at_k, sampled_complementarity


def test_sampled_complementarity_by_hand():
    mu_a, mu_b = np.array([[1.0, 0.0, 0.5]]), np.array([[0.5, 0.0, 1.0]])
    pi_a, pi_b = np.array([[1.0, 0.0, 0.0]]), np.array([[1.0, 0.0, 1.0]])
    dist, align = sampled_complementarity(mu_a, mu_b, pi_a, pi_b)
    # centred: mu_a (0.5, −0.5, 0), mu_b (0, −0.5, 0.5): Σ products 0.25, / (C − 1) = 0.125
    assert dist.tolist() == [0.125]
    # pi_a centred (2/3, −1/3, −1/3), pi_b (1/3, −2/3, 1/3): mu_a·pi_b = 1/6 + 1/3 = 0.5, mu_b·pi_a = 1/6 − 1/6 = 0
    assert align.tolist() == [pytest.approx(0.5 / 4)]
    with pytest.raises(ValueError, match="C >= 2"):
        sampled_complementarity(mu_a[:, :1], mu_b[:, :1], pi_a[:, :1], pi_b[:, :1])


def test_sampled_complementarity_matches_exact_terms_within_standard_errors():
    """A tabular problem with exact answers: S states, 3 actions, π's probabilities and Q^π known, μ = Bo4(π).
    Sampled actions and Bernoulli rollouts (16 per action, two halves) give the terms within 3 SE."""
    rng = np.random.default_rng(7)
    s, a, c, m, k = 3000, 3, 4, 8, 4
    pi = rng.dirichlet(np.ones(a), size=s)
    q_pi = rng.uniform(0, 1, size=(s, a))
    q_mu = bok(q_pi, k)
    v_pi, v_mu = (pi * q_pi).sum(1, keepdims=True), (pi * q_mu).sum(1, keepdims=True)
    exact = complementarity(pi, q_mu - v_mu, q_pi - v_pi)
    actions = np.array([rng.choice(a, size=c, p=p) for p in pi])  # (S, C) a ~ π(·|s)
    q = np.take_along_axis(q_pi, actions, 1)
    c_a, c_b = rng.binomial(m, q), rng.binomial(m, q)
    dist, align = sampled_complementarity(pass_at_k(m, c_a, k), pass_at_k(m, c_b, k), c_a / m, c_b / m)
    for est, want in ((dist, exact.distinguishability), (align, exact.alignment)):
        se = est.std(ddof=1) / np.sqrt(s)
        assert abs(est.mean() - want) < 3 * se, (est.mean(), want, se)
    # the plain variance of one noisy half is biased upwards by the rollout noise: the reason for two halves
    plain = np.var(pass_at_k(m, c_a, k), axis=1, ddof=1).mean()
    assert plain - exact.distinguishability > 5 * dist.std(ddof=1) / np.sqrt(s)


def test_config_refuses_k_above_a_half():
    from pavkit.llm.diagnose import DiagnoseConfig

    with pytest.raises(ValueError, match="K = 8 needs rollouts >= 16"):
        DiagnoseConfig(policy="p", problems="x", provers=("bok:8",), rollouts=8)
    with pytest.raises(ValueError, match="even"):
        DiagnoseConfig(policy="p", problems="x", rollouts=7)


@pytest.mark.slow
def test_diagnose_provers_cli_on_the_tiny_model(tiny_model_dir, tmp_path):
    """The whole path on a real (tiny) policy: records per state, bok:1 = pi (A^μ = A^π: distinguishability =
    alignment), a temp: prover rolled out by its own engine, resume with nothing to do."""
    from pavkit.cli import main
    from pavkit.runs import read_records

    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"q{i}", "problem": f"Q: What is {a}+{b}*2?", "answer": a + 2 * b})
                                + "\n" for i, (a, b) in enumerate([(3, 4), (5, 1), (2, 2)])))
    out = tmp_path / "dg"
    args = ["llm", "diagnose-provers", "--policy", str(tiny_model_dir), "--problems", str(problems),
            "--provers", "bok:1,pi,bok:2,temp:0.5", "--children", "3", "--rollouts", "4", "--max-step-tokens", "8",
            "--max-new-tokens", "24", "--prompt-format", "plain", "--out", str(out), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    m = json.loads(result.stdout.strip().splitlines()[-1])
    rows = {r["prover"]: r for r in m["provers"]}
    assert list(rows) == ["bok:1", "pi", "bok:2", "temp:0.5"] and m["states"] == 3
    assert rows["bok:1"]["distinguishability"] == pytest.approx(rows["pi"]["distinguishability"])
    assert rows["pi"]["distinguishability"] == pytest.approx(rows["pi"]["alignment"])
    assert rows["bok:1"]["distinguishability_vs_first"] == 0 and rows["pi"]["alignment_vs_first"] == pytest.approx(0)
    d = [r["provers"]["bok:2"]["distinguishability"] - r["provers"]["bok:1"]["distinguishability"]
         for r in read_records(out, "states.jsonl")]
    assert rows["bok:2"]["distinguishability_vs_first"] == pytest.approx(np.mean(d))
    records = read_records(out, "states.jsonl")
    assert [len(r["children"]) for r in records] == [3, 3, 3]
    for r in records:
        for spec in rows:
            assert all(0 <= x <= 1 for half in r["provers"][spec]["q_mu"] for x in half)
    before = (out / "states.jsonl").read_text()
    assert CliRunner().invoke(main, args).exit_code == 0 and (out / "states.jsonl").read_text() == before
    assert (out / "provers.png").stat().st_size > 0
    bad = CliRunner().invoke(main, [*args[:-3], "--provers", "bok:3", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "needs rollouts >= 6" in bad.output


def test_fit_to_rollouts_by_hand():
    from pavkit.llm.diagnose import fit_to_rollouts

    states = np.array([7, 7, 3, 3])  # any state keys
    learned = np.array([0.9, 0.1, 0.6, 0.4])
    halves = np.array([1.0, 0.0, 0.5, 0.5])  # both halves agree: the ceiling is 1
    fit = fit_to_rollouts(learned, halves, halves, states, off_track=np.array([0, 1, 0, 1]))
    # deviations: learned (.4, -.4, .1, -.1), rollouts (.5, -.5, 0, 0), pooled and within each state alike
    assert fit["corr"] == pytest.approx(0.4 / np.sqrt(0.34 * 0.5))
    assert fit["within_corr"] == pytest.approx(0.4 / np.sqrt(0.34 * 0.5))
    assert fit["within_ceiling"] == pytest.approx(1.0)
    assert fit["spread"] == pytest.approx((0.32 + 0.02) / 2)  # variances (ddof 1) of (.9, .1) and (.6, .4)
    assert fit["spread_rollout"] == pytest.approx((0.5 + 0.0) / 2)
    assert fit["mean_q"] == pytest.approx(0.5) and fit["mean_q_rollout"] == pytest.approx(0.5)
    assert fit["off_track_auc"] == pytest.approx(1.0)  # the off-track child is below in both states
    assert fit["off_track_auc_rollout"] == pytest.approx(0.75)  # a tie (.5, .5) in the second state
    assert fit["off_track_states"] == 2
    assert fit["children"] == 4


def test_fit_to_rollouts_ceiling_from_split_halves():
    from pavkit.llm.diagnose import fit_to_rollouts

    states = np.array([0, 0, 1, 1])
    a, b = np.array([1.0, 0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.5, 0.5])
    r = 0.5 / np.sqrt(1.0 * 0.5)  # within-state deviations (.5, -.5, .5, -.5) and (.5, -.5, 0, 0)
    fit = fit_to_rollouts(np.array([0.2, 0.1, 0.3, 0.0]), a, b, states)
    assert fit["within_ceiling"] == pytest.approx(np.sqrt(2 * r / (1 + r)))
    assert "off_track_auc" not in fit
    assert fit_to_rollouts(a, a, np.array([1.0, 0.0, 0.0, 1.0]), states)["within_ceiling"] == 0.0  # r = 0
