"""The lm-features verifier (pavkit.llm.lmfeatures): the statistics by hand, prefix consistency, training,
save/load, and the within-problem AUC (pavkit.llm.verifier.within_problem_auc) by hand.

Model-side tests run the tiny Llama of `tests/conftest.py: tiny_model_dir` (built in memory) with one thread.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from click.testing import CliRunner
from test_llm_verifier import _random_trajectories, one_thread, synthetic_records, train_cli  # noqa: F401

from pavkit.cli import main
from pavkit.llm.verifier import VerifierConfig, credit_profile, step_kinds, within_problem_auc

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("one_thread")  # test_llm_verifier's: one torch thread, restored after


def test_within_problem_auc_by_hand():
    # problem a: positives 0.9, 0.2 vs negative 0.5 → 1/2; problem b: positive 0.7 vs negative 0.1 → 1;
    # problem c has one class only and does not count. Pooled, the same scores give 4/6 (0.9, 0.7 beat 0.5, 0.1;
    # 0.2 beats 0.1 only).
    scores = [0.9, 0.2, 0.5, 0.7, 0.1, 0.3, 0.4]
    labels = [1, 1, 0, 1, 0, 1, 1]
    groups = ["a", "a", "a", "b", "b", "c", "c"]
    out = within_problem_auc(scores, labels, groups)
    assert out["auc"] == pytest.approx(0.75) and out["problems"] == 2
    assert out["se"] == pytest.approx(np.std([0.5, 1.0], ddof=1) / math.sqrt(2))
    # a verifier that only knows difficulty: every response of problem x gets x's accuracy
    diff = within_problem_auc([0.8, 0.8, 0.8, 0.2, 0.2], [1, 1, 0, 1, 0], [0, 0, 0, 1, 1])
    assert diff["auc"] == 0.5
    assert within_problem_auc([0.1, 0.2], [1, 1], [0, 0]) == {"auc": None, "se": None, "problems": 0}
    assert within_problem_auc([0.1, 0.2], [1, 0], [0, 0])["se"] is None  # one problem: no standard error


def test_step_kinds_and_credit_profile_by_hand():
    assert step_kinds(np.array([0.1, 0.05, -0.5, 0.0, 0.2])).tolist() == [0, 0, 1, 2, 2]
    assert step_kinds(np.array([-0.3, 0.0])).tolist() == [1, 2]
    assert step_kinds(np.array([0.1, -0.1])).tolist() == [0, 0]  # −0.1 itself is not a slip
    # response 0 slips at step 2 (kinds 0 0 1 2), response 1 never (0 0), response 2 at step 1 (0 1 2)
    learned = [np.array([0.3, 0.2, -0.4, 0.0]), np.array([0.1, 0.1]), np.array([-0.2, 0.5, 0.6])]
    exact = [np.array([0.1, 0.1, -0.6, 0.0]), np.array([0.05, 0.05]), np.array([0.1, -0.5, 0.0])]
    out = credit_profile(learned, exact, bins=2)
    assert out["steps"]["before_slip"] == {"n": 5, "learned": pytest.approx(0.1), "exact": pytest.approx(0.08)}
    assert out["steps"]["slip"] == {"n": 2, "learned": pytest.approx(0.05), "exact": pytest.approx(-0.55)}
    assert out["steps"]["after_slip"] == {"n": 2, "learned": pytest.approx(0.3), "exact": pytest.approx(0.0)}
    # bins of h·2 // H: response 0 → 0 0 1 1, response 1 → 0 1, response 2 → 0 0 1
    assert out["by_position"]["n"] == [5, 4]
    assert out["by_position"]["learned"] == pytest.approx([0.18, 0.075])
    assert out["by_position"]["exact"] == pytest.approx([-0.03, -0.1375])
    # on-track AUC per response: 0 → 1 (0.3, 0.2 above −0.4, 0.0); 2 → 0 (−0.2 below 0.5, 0.6); 1 has one kind
    assert out["on_track_auc"] == pytest.approx(0.5) and out["on_track_auc_responses"] == 2
    assert out["on_track_auc_se"] == pytest.approx(0.5)
    # slip AUC: 0 → 1 (−0.4 below 0.3, 0.2, 0.0); 2 → 1/2 (0.5 below 0.6, above −0.2); 1 has no slip
    assert out["slip_auc"] == pytest.approx(0.75) and out["slip_auc_responses"] == 2
    assert out["slip_auc_se"] == pytest.approx(np.std([1.0, 0.5], ddof=1) / math.sqrt(2))
    empty = credit_profile([], [], bins=2)
    assert empty["steps"]["slip"] == {"n": 0, "learned": None, "exact": None} and empty["on_track_auc"] is None


def test_token_statistics_by_hand():
    from pavkit.llm.lmfeatures import DISAGREE_GAP, FEATURES, token_statistics

    # vocabulary of 3; row of 4 tokens [0, 1, 2, 2]; response starts at position 2
    logits = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 3.0], [9.0, 9.0, 9.0]]])
    ids = torch.tensor([[0, 1, 2, 2]])
    mask = torch.ones_like(ids)
    f = token_statistics(logits, ids, mask, torch.tensor([2]))
    assert f.shape == (1, 4, len(FEATURES))
    logp1 = torch.log_softmax(logits[0, 1], -1)  # predicts token 2 (= id 2), a response token
    logp2 = torch.log_softmax(logits[0, 2], -1)  # predicts token 3 (= id 2)
    lp = [float(logp1[2]), float(logp2[2])]
    gap = [float(logp1[2] - logp1.max()), float(logp2[2] - logp2.max())]
    assert torch.all(f[0, :2] == 0)  # the prompt: no response token yet
    expect2 = [lp[0], gap[0], lp[0], gap[0], float(gap[0] < DISAGREE_GAP), 0.01]
    expect3 = [min(lp), min(gap), sum(lp) / 2, sum(gap), sum(g < DISAGREE_GAP for g in gap), 0.02]
    torch.testing.assert_close(f[0, 2], torch.tensor(expect2), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(f[0, 3], torch.tensor(expect3), rtol=1e-5, atol=1e-6)
    assert gap[0] < DISAGREE_GAP and gap[1] == 0  # token 2 after [1, 2, 0] logits is not the first choice
    # padding after the row's end is masked: a padded copy gives the same values on the real positions
    padded = token_statistics(torch.cat([logits, logits[:, :1]], 1), torch.cat([ids, ids[:, :1]], 1),
                              torch.tensor([[1, 1, 1, 1, 0]]), torch.tensor([2]))
    torch.testing.assert_close(padded[0, :4], f[0])


def _feature_verifier(tiny_model_dir, seed=0):
    from pavkit.llm.lmfeatures import init_lm_feature_verifier

    model, tok = init_lm_feature_verifier(tiny_model_dir, "cpu", seed=seed)
    torch.manual_seed(seed)
    for p in model.head.parameters():  # a head that reads every input, so the checks below can fail
        torch.nn.init.normal_(p, std=0.5)
    model.head.f_std.fill_(2.0)
    return model, tok


def test_prefix_alone_equals_whole_trajectory_and_batching(tiny_model_dir):
    from pavkit.llm.verifier import Verifier

    model, tok = _feature_verifier(tiny_model_dir)
    prompts, steps = _random_trajectories(random.Random(1), 7)
    whole = Verifier(model, tok, batch_size=3).prefix_values(prompts, steps)
    single = Verifier(model, tok, batch_size=1).prefix_values(prompts, steps)
    for w, s in zip(whole, single, strict=True):
        np.testing.assert_allclose(w, s, atol=1e-5)
    for b in range(3):
        for h in range(len(steps[b]) + 1):
            alone = Verifier(model, tok).prefix_values([prompts[b]], [steps[b][:h]])[0]
            assert alone[-1] == pytest.approx(whole[b][h], abs=1e-5)
    # values do vary with the steps (the features and hidden states are read)
    assert np.std(np.concatenate(whole)) > 1e-3


def test_lm_features_learns_and_the_lm_stays_frozen(tiny_model_dir):
    from pavkit.llm.lmfeatures import init_lm_feature_verifier
    from pavkit.llm.verifier import train_verifier

    model, tok = init_lm_feature_verifier(tiny_model_dir, "cpu", seed=0)
    lm_before = {k: v.clone() for k, v in model.lm.state_dict().items()}
    records = synthetic_records(60, seeds=4, seed=0)
    cfg = VerifierConfig(kind="pqv", iters=150, batch_size=16, lr=1e-2, warmup=10, eval_fraction=0.25,
                         eval_every=150, seed=0)
    log = list(train_verifier(model, tok, records, cfg))
    first, last = [r for r in log if "eval_bce" in r][0], [r for r in log if "eval_bce" in r][-1]
    assert first["eval_bce"] == pytest.approx(first["eval_bce_const"], abs=0.1)
    # a frozen random LM separates the texts less cleanly than a fine-tuned one: 0.54 vs the constant's 0.69
    # (the labels' entropy floor is 0.33), but clearly below every constant predictor
    assert last["eval_bce"] < 0.85 * last["eval_bce_const"] and last["eval_auc"] > 0.9
    assert last["eval_within_auc"] > 0.9 and last["eval_within_problems"] >= 5
    assert all(r["tokens"] == 0 for r in log if "loss" in r)  # the head trains on cached readings
    for k, v in model.lm.state_dict().items():
        assert torch.equal(v, lm_before[k])


def test_arch_must_match_the_model(tiny_model_dir):
    from pavkit.llm.verifier import VerifierTrainer, init_verifier

    model, tok = init_verifier(tiny_model_dir, device="cpu")
    with pytest.raises(ValueError, match="arch is 'lm-features' but the model is a token classifier"):
        VerifierTrainer(model, tok, synthetic_records(4, seeds=1), VerifierConfig(kind="orm"))
    with pytest.raises(ValueError, match="VerifierConfig.arch"):
        VerifierConfig(kind="orm", arch="mlp")


def test_cli_lm_features_saves_and_loads(tiny_model_dir, tmp_path):
    from transformers import AutoModelForCausalLM

    from pavkit import runs
    from pavkit.llm.verifier import Verifier

    out, args, summary = train_cli(tiny_model_dir, tmp_path, "orm", "--lr", "0.01")  # the default arch
    info = json.loads((out / "model" / "verifier.json").read_text())
    assert info["arch"] == "lm-features" and info["config"]["arch"] == "lm-features"
    assert type(AutoModelForCausalLM.from_pretrained(out / "model", local_files_only=True)).__name__ == \
        "LlamaForCausalLM"  # the LM folder loads with plain transformers
    prompts, steps = _random_trajectories(random.Random(3), 4)
    from pavkit.llm.folders import model_problem

    assert model_problem(out, "verifier") is None and model_problem(out / "model", "verifier") is None
    v = Verifier.from_path(out, device="cpu")
    assert v.info["arch"] == "lm-features"
    vals = v.prefix_values(prompts, steps)
    again = Verifier.from_path(out / "model", device="cpu").prefix_values(prompts, steps)
    for a, b in zip(vals, again, strict=True):
        assert np.array_equal(a, b) and np.all((a > 0) & (a < 1))
    assert summary["iters"] == 6 and [r["iter"] for r in runs.read_records(out) if "eval_bce" in r] == [0, 3, 6]
    # a rerun with another arch is a config change, refused
    changed = CliRunner().invoke(main, args[:-1] + ["--arch", "token-classification"])
    assert changed.exit_code == 2 and "arch" in changed.output


def test_ablation_zeroes_one_input(tiny_model_dir):
    from pavkit.llm.lmfeatures import init_lm_feature_verifier

    ids = torch.tensor([[1, 5, 6, 7, 8, 9]])
    mask, start = torch.ones_like(ids), torch.tensor([2])
    full, _ = init_lm_feature_verifier(tiny_model_dir, "cpu")
    h, f = full.hidden_and_features(ids, mask, start)
    assert h.abs().sum() > 0 and f.abs().sum() > 0
    for ablate, zero in (("hidden", 0), ("features", 1)):
        model, _ = init_lm_feature_verifier(tiny_model_dir, "cpu", ablate=ablate)
        parts = model.hidden_and_features(ids, mask, start)
        assert parts[zero].abs().sum() == 0 and torch.equal(parts[1 - zero], (h, f)[1 - zero])
    with pytest.raises(ValueError, match="ablate"):
        init_lm_feature_verifier(tiny_model_dir, "cpu", ablate="both")


def test_features_read_in_row_chunks_equal_one_pass(tiny_model_dir, monkeypatch):
    import pavkit.llm.lmfeatures as lmf

    model, _ = lmf.init_lm_feature_verifier(tiny_model_dir, "cpu")
    ids = torch.tensor([[1, 5, 6, 7, 8, 9], [1, 9, 8, 7, 0, 0], [1, 4, 4, 4, 4, 0]])
    mask, start = (ids > 0).long(), torch.tensor([2, 1, 3])
    whole = model.hidden_and_features(ids, mask, start)
    monkeypatch.setattr(lmf, "LOGIT_BUDGET", 1)  # one row at a time
    chunked = model.hidden_and_features(ids, mask, start)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b)
