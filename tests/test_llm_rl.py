"""Online RL on an LLM (pavkit.llm.rl, `pavkit llm rl|rft`, Fig. 7/8 analysis) on a tiny organism model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from pavkit.analysis.loaders import RLRun
from pavkit.analysis.tables import hard_problem_curves, rl_llm_summary
from pavkit.cli import main
from pavkit.llm.organism import OrganismConfig, init_model, organism_problems, organism_tokenizer
from pavkit.llm.rl import (
    RFTConfig,
    RLConfig,
    baselined_step_weights,
    checkpoint,
    init_state,
    load_prover_values,
    prover_values,
    response_steps,
    restore,
    rft,
    sample_batch,
    shuffled_values,
    step_weights,
    terminal_outcome_values,
    token_logprobs,
    train,
)

TINY = {"hidden": 16, "layers": 1, "heads": 2, "intermediate": 32}


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    """An untrained tiny organism Llama saved as an HF folder (RL mechanics do not need a good policy)."""
    path = tmp_path_factory.mktemp("tiny-organism")
    tok = organism_tokenizer()
    model = init_model(OrganismConfig(**TINY), tok)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _cfg(policy: str, **kw) -> RLConfig:
    base = dict(policy=policy, verifier="organism-oracle", prover="bok:2", alpha=1.0, iters=3, problems_per_iter=2,
                group=2, eval_problems="organism:test:0:3", eval_every=1, eval_samples=1, final_samples=2,
                pass_ns=(1, 2), max_new_tokens=24, seed=0)
    return RLConfig(**{**base, **kw})


# -- steps and weights -----------------------------------------------------------------------------------------


def test_response_steps_by_hand():
    steps, idx = response_steps(["a", "\n", "b", "\n", "\n", "c", ""])  # a blank line, then EOS (no characters)
    assert steps == ["a", "b", "c"] and idx.tolist() == [0, 0, 1, 1, 1, 2, 2]
    # a token holding text of two steps goes to the step of its last character
    steps, idx = response_steps(["ab", "c\nd", "e\n", ""])
    assert steps == ["abc", "de"] and idx.tolist() == [0, 1, 1, 1]
    steps, idx = response_steps(["\n", "a"])  # a leading blank piece goes to the first step
    assert steps == ["a"] and idx.tolist() == [0, 0]
    steps, idx = response_steps([""])  # no step at all: one pseudo-step
    assert steps == [] and idx.tolist() == [0]
    steps, idx = response_steps(["x", "|", "|", "y"], delimiter="||")
    assert steps == ["x", "y"] and idx.tolist() == [0, 0, 0, 1]


def test_step_weights_by_hand():
    v_mu = [np.array([0.5, 0.6, 0.9]), np.array([0.5, 0.2])]
    w, mask = step_weights(np.array([1.0, 0.0]), v_mu, [2, 1], alpha=2.0, baseline=np.array([0.5, 0.5]))
    np.testing.assert_allclose(w, [[1 + 0.2 - 0.5, 1 + 0.6 - 0.5], [0 - 0.6 - 0.5, 0.0]])
    assert mask.tolist() == [[True, True], [True, False]]
    w, _ = step_weights(np.array([1.0, 0.0]), v_mu, [2, 1], alpha=2.0, baseline=np.array([0.5, 0.5]), to_go=True)
    np.testing.assert_allclose(w, [[1 + 0.8 - 0.5, 1 + 0.6 - 0.5], [-1.1, 0.0]])
    w, mask = step_weights(np.array([1.0, 0.0]), None, [0, 3], alpha=0.0, baseline=np.zeros(2))
    np.testing.assert_allclose(w, [[1, 0, 0], [0, 0, 0]])  # outcome only; no steps → one pseudo-step
    assert mask.tolist() == [[True, False, False], [True, True, True]]


def test_constant_advantage_control_by_hand():
    # const:C is no prover: V^μ(s_h) = C·(h − 1), so every step gets α·C on top of r − b (a response with no
    # step keeps its single value, A^μ = 0 on its pseudo-step)
    values = prover_values("", "const:0.05")(["p", "q", "r"], [["a", "b"], ["c"], []])
    np.testing.assert_allclose(values[0], [0.0, 0.05, 0.1])
    np.testing.assert_allclose(values[1], [0.0, 0.05])
    np.testing.assert_allclose(values[2], [0.0])
    w, _ = step_weights(np.array([1.0, 0.0]), values[:2], [2, 1], alpha=2.0, baseline=np.array([0.25, 0.25]))
    np.testing.assert_allclose(w, [[0.75 + 0.1, 0.75 + 0.1], [-0.25 + 0.1, 0.0]])


def test_only_bok_provers_need_the_pqv():
    with pytest.raises(ValueError, match="bok:4 needs a verifier"):
        RLConfig(policy="p", alpha=1.0, prover="bok:4")
    for prover in ("const:0.05", "model:/some/qmu"):  # they never read it
        assert RLConfig(policy="p", alpha=1.0, prover=prover).verifier == ""


def test_terminal_outcome_values_by_hand():
    # a verifier that rates a wrong final answer 0.9: the steps gain +0.4 on the prefixes' values; anchored at
    # r = 0 the last step loses 0.6 and the advantages telescope to 0 − 0.5
    v_mu = [np.array([0.5, 0.6, 0.9]), np.array([0.5, 0.2]), np.array([0.3])]
    anchored = terminal_outcome_values(v_mu, np.array([0.0, 1.0, 1.0]))
    np.testing.assert_allclose(anchored[0], [0.5, 0.6, 0.0])
    np.testing.assert_allclose(anchored[1], [0.5, 1.0])
    np.testing.assert_allclose(anchored[2], [0.3])  # no step: the pseudo-step keeps A^μ = 0
    w, _ = step_weights(np.array([0.0]), anchored[:1], [2], alpha=1.0, baseline=np.zeros(1))
    np.testing.assert_allclose(w, [[0.1, -0.6]])
    assert v_mu[0][-1] == 0.9  # the input is not modified
    with pytest.raises(ValueError, match="terminal_value"):
        RLConfig(policy="p", alpha=0.0, terminal_value="oracle")


def _advantages(v_mu, members):
    return sorted(np.round(np.concatenate([np.diff(v_mu[b]) for b in members]), 12).tolist())


def test_shuffled_advantages_keep_what_they_say_they_keep():
    # group 0: responses 0 (A = +0.1, +0.2, −0.5) and 1 (A = +0.4); group 1: response 2 (A = −0.3, +0.6) and 3
    # (no step)
    v_mu = [np.array([0.5, 0.6, 0.8, 0.3]), np.array([0.5, 0.9]), np.array([0.4, 0.1, 0.7]), np.array([0.4])]
    groups = np.array([0, 0, 1, 1])
    assert all(a is b for a, b in zip(shuffled_values(v_mu, groups, "none", np.random.default_rng(0)), v_mu,
                                      strict=True))
    seen_step_orders, seen_crossings = set(), set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        by_response = shuffled_values(v_mu, groups, "response", rng)
        by_group = shuffled_values(v_mu, groups, "group", rng)
        for out in (by_response, by_group):
            assert [len(v) for v in out] == [4, 2, 3, 1]  # step counts and V^μ(s_1) stay
            np.testing.assert_allclose([v[0] for v in out], [0.5, 0.5, 0.4, 0.4])
            assert _advantages(out, [0, 1]) == _advantages(v_mu, [0, 1])  # each group keeps its values
            assert _advantages(out, [2, 3]) == _advantages(v_mu, [2, 3])
        for b in range(4):  # "response" keeps each response's values, so its sum Σ_h A^μ = V(s_H+1) − V(s_1)
            assert _advantages(by_response, [b]) == _advantages(v_mu, [b])
        seen_step_orders.add(tuple(np.round(np.diff(by_response[0]), 12)))
        seen_crossings.add(round(float(np.diff(by_group[1])[0]), 12))
    assert len(seen_step_orders) == 6  # all orders of response 0's three steps occur
    assert seen_crossings == {0.1, 0.2, -0.5, 0.4}  # response 1's step takes each of its group's values
    with pytest.raises(ValueError, match="shuffle_advantages"):
        RLConfig(policy="p", alpha=0.0, shuffle_advantages="batch")


def test_sample_batch_shuffles_the_provers_advantages_within_groups(tiny_policy):
    # the same samples (same seed and iteration) with and without the control: each group's A^μ are the same
    # values, each response keeps its steps and V^μ(s_1), and some step gets another step's value. The prover
    # stands in for a verifier with a distinct advantage at every step (0.01·(b+1)·h at step h of response b).
    def distinct(prompts, steps):
        return [np.concatenate([[0.5], 0.5 + np.cumsum(0.01 * (b + 1) * np.arange(1, len(s) + 1))])
                for b, s in enumerate(steps)]

    cfg = _cfg(tiny_policy, problems_per_iter=3, group=3, max_new_tokens=48)
    state = init_state(cfg, device="cpu")
    problems = organism_problems(20, 1, "train")
    plain = sample_batch(state, cfg, problems, distinct)
    shuffled = sample_batch(state, _cfg(tiny_policy, problems_per_iter=3, group=3, max_new_tokens=48,
                                        shuffle_advantages="group"), problems, distinct)
    assert shuffled.token_ids == plain.token_ids and shuffled.num_steps == plain.num_steps
    assert sum(plain.num_steps) > 3  # steps to shuffle
    np.testing.assert_allclose([v[0] for v in shuffled.v_mu], [v[0] for v in plain.v_mu])
    for g in range(3):
        members = range(3 * g, 3 * g + 3)
        assert _advantages(shuffled.v_mu, members) == _advantages(plain.v_mu, members)
    assert not np.allclose(shuffled.weights, plain.weights)


def test_baselined_step_weights_by_hand():
    # group 0: responses 0 (right, steps A = +0.2, +0.4) and 1 (wrong, A = −0.6); group 1: response 2 alone
    v_mu = [np.array([0.2, 0.4, 0.8]), np.array([0.8, 0.2]), np.array([0.3, 0.3])]
    out, groups, steps = np.array([1.0, 0.0, 1.0]), np.array([0, 0, 1]), [2, 1, 1]
    w, mask = baselined_step_weights(out, v_mu, steps, 1.0, groups, "loo")
    np.testing.assert_allclose(w, [[1.2 - 0, 1.4 - 0], [-0.6 - 1, 0], [1.0, 0]])  # b = the other's outcome
    w, _ = baselined_step_weights(out, v_mu, steps, 1.0, groups, "loo-effective")
    # mean step weights: response 0 (1.2 + 1.4) / 2 = 1.3, response 1 −0.6; each is the other's baseline
    np.testing.assert_allclose(w, [[1.2 + 0.6, 1.4 + 0.6], [-0.6 - 1.3, 0], [1.0, 0]])
    w, _ = baselined_step_weights(out, v_mu, steps, 1.0, groups, "value")
    np.testing.assert_allclose(w, [[1.2, 1.4], [-0.6, 0], [1.0, 0]])
    assert mask.tolist() == [[True, True], [True, False], [True, False]]


def test_token_logprobs_match_unpadded_rows(tiny_policy, monkeypatch):
    from transformers import AutoModelForCausalLM

    import pavkit.llm.rl as rl

    model = AutoModelForCausalLM.from_pretrained(tiny_policy)
    # rows 0 and 2 share a prompt (run once); two rows per forward, so the tails run in two batches
    monkeypatch.setattr(rl, "LOGPROB_ROWS", 2)
    prompts, responses = [[1, 10, 11], [1, 12], [1, 10, 11]], [[13, 14, 2], [15], [16, 2]]
    logp, resp = token_logprobs(model, prompts, responses, pad_id=0)
    wants = []
    for b, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        ids = torch.tensor([p + r])
        full = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
        wants.append(full[torch.arange(len(p) - 1, len(p) + len(r) - 1), torch.tensor(r)])
        torch.testing.assert_close(logp[b][resp[b]], wants[-1], rtol=1e-5, atol=1e-5)
    assert resp.sum(1).tolist() == [3, 1, 2] and logp[~resp].abs().sum() == 0
    # the gradient flows through the shared prompt's keys and values as through each unpadded row
    params = list(model.parameters())
    got = torch.autograd.grad(logp.sum(), params)
    want = torch.autograd.grad(sum(w.sum() for w in wants), params)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


# -- the loop ---------------------------------------------------------------------------------------------------


def _strip(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@pytest.mark.parametrize("baseline", ["loo", "loo-effective", "value"])
def test_train_records_and_exact_resume(tiny_policy, baseline):
    cfg = _cfg(tiny_policy, baseline=baseline)
    train_p, eval_p = organism_problems(50, 1, "train"), organism_problems(3, 0, "test")
    prover = load_prover_values(cfg)
    state = init_state(cfg, device="cpu")
    before = [p.detach().clone() for p in state.policy.parameters()]
    straight = list(train(cfg, state, train_p, eval_p, prover))
    assert [r["iteration"] for r in straight] == [0, 1, 2, 3]
    assert all(np.isfinite(r["loss"]) and r["kl"] >= 0 for r in straight[1:])
    assert straight[-1]["pass_at_n"]["n"] == [1, 2] and len(straight[-1]["correct_counts"]) == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, state.policy.parameters(), strict=True))
    if baseline == "value":  # the value model learns (its loss is recorded) from a zero head
        assert all(r["value_loss"] > 0 for r in straight[1:]) and state.value.score.weight.abs().sum() > 0

    state = init_state(cfg, device="cpu")
    first = []
    for r in train(cfg, state, train_p, eval_p, prover):
        first.append(r)
        if r["iteration"] == 1:
            break
    saved = checkpoint(state)
    resumed = restore(cfg, saved, device="cpu")
    rest = list(train(cfg, resumed, train_p, eval_p, prover))
    got, want = _strip(first + rest), _strip(straight)
    assert [r["iteration"] for r in got] == [0, 1, 2, 3]
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for k in g:
            same = g[k] == w[k] if isinstance(g[k], dict | list) else g[k] == pytest.approx(w[k], rel=1e-5, abs=1e-6)
            assert same, k


def test_rft_raises_the_likelihood_of_its_data(tiny_policy):
    from transformers import AutoModelForCausalLM

    tok = organism_tokenizer()
    model = AutoModelForCausalLM.from_pretrained(tiny_policy)
    p = organism_problems(4, 0, "train")
    pairs = [(q.problem + "\n", "\n".join(q.solution)) for q in p]
    p_ids = [tok(a)["input_ids"] for a, _ in pairs]
    r_ids = [tok(b, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for _, b in pairs]

    def mean_logp() -> float:
        with torch.no_grad():
            logp, resp = token_logprobs(model, p_ids, r_ids, pad_id=0)
        return float(logp[resp].mean())

    start = mean_logp()
    records = list(rft(model, tok, pairs, RFTConfig(policy=tiny_policy, epochs=20, batch=2, lr=3e-3)))
    assert len(records) == 40 and mean_logp() > start + 0.5


# -- CLI --------------------------------------------------------------------------------------------------------


def _rl_args(policy: str, out, *extra: str) -> list[str]:
    return ["llm", "rl", "--policy", policy, "--iters", "2", "--eval-every", "1", "--eval-samples", "1",
            "--final-samples", "2", "--problems-per-iter", "2", "--group", "2", "--max-new-tokens", "16",
            "--eval-problems", "organism:test:0:3", "--train-problems", "organism:train:1:40", "--out", str(out),
            *extra]


def test_cli_rl_runs_resumes_refuses_changes_and_plots(tiny_policy, tmp_path):
    runner = CliRunner()
    dirs = {"outcome": tmp_path / "outcome", "pav": tmp_path / "pav", "sft": tmp_path / "sft"}
    r = runner.invoke(main, _rl_args(tiny_policy, dirs["outcome"], "--alpha", "0", "--json"))
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["iterations"] == 2 and 0 <= m["final_accuracy"] <= 1
    lines = (dirs["outcome"] / "train.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in lines] == [0, 1, 2]
    assert (dirs["outcome"] / "policy" / "config.json").exists() and (dirs["outcome"] / "checkpoint.pt").exists()
    again = runner.invoke(main, _rl_args(tiny_policy, dirs["outcome"], "--alpha", "0"))
    assert again.exit_code == 0 and (dirs["outcome"] / "train.jsonl").read_text().splitlines() == lines
    changed = runner.invoke(main, _rl_args(tiny_policy, dirs["outcome"], "--alpha", "0", "--lr", "0.01"))
    assert changed.exit_code == 2 and "lr" in changed.output
    no_verifier = runner.invoke(main, _rl_args(tiny_policy, tmp_path / "x", "--alpha", "1"))
    assert no_verifier.exit_code == 2 and "verifier" in no_verifier.output
    bad = runner.invoke(main, _rl_args(tiny_policy, tmp_path / "y", "--eval-problems", "organism:test:x"))
    assert bad.exit_code == 2 and "organism:SPLIT:SEED:COUNT" in bad.output

    r = runner.invoke(main, _rl_args(tiny_policy, dirs["pav"], "--alpha", "1", "--verifier", "organism-oracle",
                                     "--prover", "bok:2", "--terminal-value", "outcome"))
    assert r.exit_code == 0, r.output
    assert json.loads((dirs["pav"] / "config.json").read_text())["terminal_value"] == "outcome"
    records = [json.loads(x) for x in (dirs["pav"] / "train.jsonl").read_text().splitlines()]
    assert records[1]["mean_abs_adv_mu"] >= 0 and "pass_at_n" in records[-1]
    r = runner.invoke(main, ["llm", "rl", "--policy", tiny_policy, "--alpha", "0", "--iters", "0",
                             "--final-samples", "4", "--eval-problems", "organism:test:0:3", "--max-new-tokens", "16",
                             "--out", str(dirs["sft"])])
    assert r.exit_code == 0, r.output
    sft = [json.loads(x) for x in (dirs["sft"] / "train.jsonl").read_text().splitlines()]
    assert len(sft) == 1 and sft[0]["eval_samples"] == 4 and sft[0]["pass_at_n"]["n"] == [1, 2, 4]
    for fig in ("fig7", "fig8"):
        png = tmp_path / f"{fig}.png"
        r = runner.invoke(main, ["plot", fig, *map(str, dirs.values()), "--out", str(png)])
        assert r.exit_code == 0, r.output
        assert png.stat().st_size > 1000


def test_arms_figure_draws_each_arm_with_its_interval():
    from pavkit.analysis.figures import rl_arms_figure

    rows = [{"arm": "pav", "seeds": 3, "accuracy_gain": 0.025, "accuracy_gain_ci": [0.003, 0.049]},
            {"arm": "const-0.05", "seeds": 1, "accuracy_gain": -0.01, "accuracy_gain_ci": [-0.04, 0.02]}]
    fig = rl_arms_figure(rows, marks=(0.03,))
    ax = fig.axes[0]
    ticks = dict(zip([t.get_text() for t in ax.get_yticklabels()], ax.get_yticks(), strict=True))
    assert ticks == {"pav (3 seeds)": 1, "const-0.05 (1 seed)": 0}  # the first row on top
    points = ax.lines[0].get_xydata()  # the markers, in the rows' order, the first row on top
    np.testing.assert_allclose(points, [[0.025, 1], [-0.01, 0]])
    (bars,) = [c for c in ax.collections if len(c.get_segments()) == 2]  # the intervals
    np.testing.assert_allclose([seg[:, 0] for seg in bars.get_segments()], [[0.003, 0.049], [-0.04, 0.02]])
    vertical = [line.get_xdata()[0] for line in ax.lines if list(line.get_ydata()) == [0, 1]]  # axvline
    assert sorted(vertical) == [0.0, 0.03]  # zero and the mark


def test_cli_rft_refuses_when_no_sample_is_correct(tiny_policy, tmp_path):
    r = CliRunner().invoke(main, ["llm", "rft", "--policy", tiny_policy, "--problems", "organism:train:2:2",
                                  "--samples", "2", "--max-new-tokens", "8", "--out", str(tmp_path / "rft")])
    assert r.exit_code == 2 and "none of the 4 samples" in r.output


# -- analysis ---------------------------------------------------------------------------------------------------


def _run(path: str, alpha: float, curve: list[float], *, iters: int = 30, policy: str = "rft", counts=None,
         samples: int = 4, pass_values=None) -> RLRun:
    its = [0, 10, 20, 30] if iters else [0]
    records = [{"iteration": i, "accuracy": a} for i, a in zip(its, curve, strict=True)]
    records[-1].update(eval_samples=samples, correct_counts=counts or [0, 0, 0, 0],
                       pass_at_n={"n": [1, 2, 4], "values": pass_values or [0.0, 0.0, 0.0]})
    cfg = {"prover": "bok:4", "alpha": alpha, "iters": iters, "eval_problems": "organism:test:0:4", "policy": policy}
    return RLRun(path, cfg, records)


def test_rl_llm_summary_by_hand():
    runs = [_run("o0", 0.0, [0.5, 0.55, 0.6, 0.7], pass_values=[0.7, 0.8, 0.85]),
            _run("o1", 0.0, [0.5, 0.55, 0.6, 0.7], pass_values=[0.7, 0.8, 0.85]),
            _run("p0", 3.0, [0.5, 0.7, 0.75, 0.8], pass_values=[0.8, 0.9, 0.95]),
            _run("p1", 3.0, [0.5, 0.6, 0.75, 0.8], pass_values=[0.8, 0.9, 0.97]),
            _run("s", 0.0, [0.4], iters=0, policy="base", samples=8)]
    s = rl_llm_summary(runs)
    # outcome-only reaches its final 0.7 at iteration 30; PAV-RL's mean curve (0.65 at 10) at 20, and stays
    assert s["reach"] == {"level": 0.7, "sustained": True, "pav_iters": 20, "outcome_iters": 30,
                          "ratio_is_lower_bound": False}
    assert s["sample_efficiency"] == pytest.approx(1.5)
    # resampling PAV-RL's seeds: p0 twice reaches at 10 (3×, a quarter of the draws), any draw with p1 at 20 (1.5×)
    assert s["sample_efficiency_ci"] == [1.5, 3.0]
    assert s["accuracy_gain"] == pytest.approx(0.1)
    assert s["pass_at_n_gain"] == {"n": 4, "gain": pytest.approx(0.96 - 0.85)}
    assert s["sft"]["accuracy"] == 0.4 and "rft" not in s
    assert s["accuracy_gain_ci"] == [0.0, 0.0]  # every run's final per-problem counts are 0: no spread to find
    spiky = [runs[0], runs[1], _run("p2", 3.0, [0.5, 0.75, 0.6, 0.65])]  # above 0.7 once, then below: never
    assert rl_llm_summary(spiky)["sample_efficiency"] is None
    assert rl_llm_summary(spiky)["sample_efficiency_ci"] == [0.0, 0.0]  # never reaching counts as 0
    with pytest.raises(ValueError, match="different problems"):
        rl_llm_summary([*runs, RLRun("z", {**runs[0].config, "eval_problems": "gsm8k"}, runs[0].records)])


def test_rl_llm_summary_reads_the_ratio_along_outcome_onlys_gain():
    runs = [_run("o0", 0.0, [0.1, 0.12, 0.14, 0.2]), _run("o1", 0.0, [0.1, 0.12, 0.14, 0.2]),
            _run("p0", 1.0, [0.1, 0.18, 0.21, 0.25]), _run("p1", 1.0, [0.1, 0.18, 0.21, 0.25])]
    by_level = rl_llm_summary(runs)["reach_by_level"]
    # levels 0.125, 0.15, 0.175, 0.2: outcome-only holds them from 20, 30, 30, 30; PAV-RL from 10, 10, 10, 20
    assert [r["fraction"] for r in by_level] == [0.25, 0.5, 0.75, 1.0]
    np.testing.assert_allclose([r["level"] for r in by_level], [0.125, 0.15, 0.175, 0.2])
    assert [(r["outcome_iters"], r["pav_iters"]) for r in by_level] == [(20, 10), (30, 10), (30, 10), (30, 20)]
    assert [r["ratio"] for r in by_level] == pytest.approx([2.0, 3.0, 3.0, 1.5])
    assert by_level[-1]["ratio"] == rl_llm_summary(runs)["sample_efficiency"]  # fraction 1 is the headline
    flat = [_run("o0", 0.0, [0.2, 0.1, 0.15, 0.2]), _run("p0", 1.0, [0.2, 0.3, 0.3, 0.3])]
    assert "reach_by_level" not in rl_llm_summary(flat)  # outcome-only gained nothing: no fractions to read


def test_fig7_names_the_exact_advantage_control():
    from pavkit.analysis.figures import fig7_figure

    runs = [_run("o0", 0.0, [0.5, 0.55, 0.6, 0.7]), _run("p0", 1.0, [0.5, 0.7, 0.75, 0.8])]
    a, b = fig7_figure(runs).axes
    assert [t.get_text() for t in a.get_xticklabels()] == ["outcome-only RL", "PAV RL"]
    runs[1].config["verifier"] = "organism-oracle"
    a, b = fig7_figure(runs).axes
    assert [t.get_text() for t in a.get_xticklabels()] == ["outcome-only RL", "exact-advantage control"]
    assert "exact-advantage control" in [t.get_text() for t in b.get_legend().get_texts()]
    assert "exact-advantage control reaches" in b.get_title() and "1 seed × 2 arms" in b.get_title()
    assert "3.0× [3.0, 3.0] sooner" in b.get_title()  # one seed per arm: the seed bootstrap has no spread


def test_accuracy_gain_ci_resamples_problems_and_seeds():
    # per-problem accuracy (counts / 4): outcome-only 0.25 everywhere; PAV-RL +0.5 on problem 0 in both seeds
    runs = [_run("o0", 0.0, [0.5] * 4, counts=[1, 1, 1, 1]), _run("p0", 3.0, [0.5] * 4, counts=[3, 1, 1, 1]),
            _run("p1", 3.0, [0.5] * 4, counts=[3, 1, 1, 1])]
    s = rl_llm_summary(runs)
    # the gain is 0.5 · (draws of problem 0 among 4) / 4, the draws Binomial(4, 1/4): P(≤ 2) = 0.949, P(≤ 3) = 0.996
    assert s["accuracy_gain_ci"][0] == pytest.approx(0.0) and s["accuracy_gain_ci"][1] == pytest.approx(0.375)
    runs[2].records[-1]["correct_counts"] = [1, 1, 1, 1]  # seed 1 gains nothing: the seed draw narrows the top
    low, high = rl_llm_summary(runs)["accuracy_gain_ci"]
    assert low == pytest.approx(0.0) and 0.0 < high < 0.375


def test_seed_problem_gain_ci_by_hand():
    from pavkit.analysis.metrics import seed_problem_gain_ci

    same = seed_problem_gain_ci(np.full((3, 5), 0.4), np.full((2, 5), 0.3))
    assert same.mean == pytest.approx(0.1) and same.low == pytest.approx(0.1) and same.high == pytest.approx(0.1)
    # one problem, seeds 0 and 1 of the method at 0 and 1: the seed draw alone gives means 0, 0.5 or 1
    seeds = seed_problem_gain_ci(np.array([[0.0], [1.0]]), np.array([[0.0]]), resamples=4000)
    assert seeds.mean == 0.5 and seeds.low == 0.0 and seeds.high == 1.0
    # one seed each, problems differ: the problem bootstrap of the paired difference (1, 0): 0 … 1
    probs = seed_problem_gain_ci(np.array([[1.0, 0.0]]), np.array([[0.0, 0.0]]), resamples=4000)
    assert probs.mean == 0.5 and probs.low == 0.0 and probs.high == 1.0
    with pytest.raises(ValueError, match="same P|S_m, P"):
        seed_problem_gain_ci(np.ones((2, 3)), np.ones((2, 4)))


def test_hard_problem_curves_by_hand():
    # SFT never solved problems 1 and 3 (of 4); PAV-RL solves 1 of 4 samples on problem 1, none on problem 3
    runs = [_run("s", 0.0, [0.4], iters=0, policy="base", counts=[3, 0, 5, 0], samples=8),
            _run("p0", 3.0, [0.5, 0.6, 0.7, 0.8], counts=[4, 1, 4, 0]),
            _run("o0", 0.0, [0.5, 0.6, 0.7, 0.8], counts=[4, 0, 4, 0])]
    h = hard_problem_curves(runs)
    assert h["hard"] == 2 and h["reference_samples"] == 8 and h["n"] == [1, 2, 4]
    # Pass@N of one success in 4 samples: 1/4, 1/2, 1; averaged with a problem at 0
    np.testing.assert_allclose(h["effective_reward"]["mean"], [0.125, 0.25, 0.5])
    np.testing.assert_allclose(h["outcome_only"]["mean"], [0.0, 0.0, 0.0])
    assert rl_llm_summary(runs)["unsolved_by_sft"]["hard"] == 2
    runs[0].records[-1]["correct_counts"] = [1, 1, 1, 1]  # SFT solved everything: no curves, no error
    assert hard_problem_curves(runs) == {"hard": 0, "problems": 4, "reference_samples": 8}


def test_checkpoints_load_on_the_cpu(tmp_path, monkeypatch):
    """A run checkpointed on a GPU must resume where there is none: load_checkpoint maps tensors to the CPU
    (torch.load's default restores them on the device they were saved from)."""
    from pavkit import runs

    assert runs.load_checkpoint(tmp_path) is None
    runs.save_checkpoint(tmp_path, {"iteration": 3, "w": torch.ones(2)})
    seen = {}
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: seen.update(kw) or real_load(*a, **kw))
    ckpt = runs.load_checkpoint(tmp_path)
    assert seen["map_location"] == "cpu" and ckpt["iteration"] == 3 and torch.equal(ckpt["w"], torch.ones(2))
