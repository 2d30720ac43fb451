"""pavkit.integrations.verl on verl's own data structures (DataProto) and registries, on CPU.

Skipped unless verl imports; ci/test-verl.sh runs it in .venv-verl with PAVKIT_REQUIRE_VERL=1 (fail, not skip).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

if importlib.util.find_spec("verl") is None:
    if os.environ.get("PAVKIT_REQUIRE_VERL"):
        raise RuntimeError("PAVKIT_REQUIRE_VERL is set but verl is not importable")
    pytest.skip("verl not installed (ci/test-verl.sh runs these in .venv-verl)", allow_module_level=True)

import torch  # noqa: E402

from pavkit.integrations.verl import NAME, PAVRewardManager, pav_advantage, token_rewards  # noqa: E402


def test_token_rewards_by_hand_with_tokens_that_straddle_step_boundaries():
    # steps "a=1", "b=2", "Answer: 2"; the token "1\nb" straddles the first boundary, "=2\nAns" the second; "" is
    # EOS. A token belongs to the step of its last character (pavkit's RL convention), so "1\nb" is step 2's and
    # step 1 ends at "a="; "=2\nAns" is step 3's, so step 2 ends at "1\nb"; EOS ends step 3.
    texts = ["a=", "1\nb", "=2\nAns", "wer: 2", ""]
    v_mu = np.array([0.2, 0.5, 0.4, 1.0])
    got = token_rewards(texts, outcome=1.0, v_mu=v_mu, alpha=2.0)
    # 2·(0.5 − 0.2) at token 0; 2·(0.4 − 0.5) at token 1; 2·(1.0 − 0.4) + the outcome 1 at the last token
    np.testing.assert_allclose(got, [0.6, -0.2, 0.0, 0.0, 2.2])
    # with clean boundaries the delimiter's token ends its step
    np.testing.assert_allclose(token_rewards(["a=1", "\n", "b=2", "\n", "x"], 0.0, v_mu, 1.0),
                               [0.0, 0.3, 0.0, -0.1, 0.6])
    np.testing.assert_allclose(token_rewards(texts, 0.0, None, 0.0), [0, 0, 0, 0, 0])
    np.testing.assert_allclose(token_rewards(["x"], 1.0, None, 1.0), [1.0])  # no delimiter: one step, no v_mu
    assert token_rewards([], 1.0, None, 1.0).shape == (0,)
    with pytest.raises(ValueError, match="3 steps"):
        token_rewards(texts, 1.0, np.zeros(3), 1.0)


def test_advantage_estimator_is_registered_and_equals_a_hand_computation():
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    assert get_adv_estimator_fn(NAME) is pav_advantage
    rewards = torch.tensor([[0.5, 0.0, 1.0, 0.0],   # group "p": return 1.5
                            [0.0, -0.5, 0.0, 0.0],  # group "p": return -0.5 (last token masked)
                            [0.0, 0.0, 0.0, 1.0],   # group "q" alone: baseline 0
                            [0.2, 0.2, 0.2, 0.2]])  # group "p": return 0.8 (two tokens masked)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]])
    adv, returns = pav_advantage(rewards, mask, index=np.array(["p", "p", "q", "p"]))
    # returns-to-go minus b = the mean of the other whole returns of the group (masked tokens count 0):
    # row 0: b = (−0.5 + 0.4) / 2 = −0.05; row 1: (1.5 + 0.4) / 2 = 0.95; row 3: (1.5 − 0.5) / 2 = 0.5; row 2: 0
    want = torch.tensor([[1.55, 1.05, 1.05, 0.05],
                         [-1.45, -1.45, -0.95, 0.0],
                         [1.0, 1.0, 1.0, 1.0],
                         [-0.1, -0.3, 0.0, 0.0]])
    torch.testing.assert_close(adv, want.float(), atol=1e-6, rtol=0)
    assert returns is adv
    alone, _ = pav_advantage(rewards[:1], mask[:1])  # no index: its own group
    torch.testing.assert_close(alone, torch.tensor([[1.5, 1.0, 1.0, 0.0]]))


@pytest.fixture(scope="module")
def pqv_dir(tmp_path_factory):
    """A tiny LM and an untrained token-classification PQV on it (a random head), saved."""
    from llm_fixtures import save_tiny_model_dir

    from pavkit.llm.verifier import init_verifier, save_verifier

    base = save_tiny_model_dir(tmp_path_factory.mktemp("lm"))
    torch.manual_seed(5)
    model, tokenizer = init_verifier(base, device="cpu")
    out = tmp_path_factory.mktemp("pqv")
    save_verifier(model, tokenizer, out, {"kind": "pqv", "config": {"delimiter": "\n"}})
    return out


def _batch(tokenizer, prompts: list[str], responses: list[str], answers: list[str]):
    """A DataProto as verl's rollout leaves it: left-padded prompts, right-padded responses, one mask over both."""
    from verl import DataProto

    p_ids = [tokenizer(p)["input_ids"] for p in prompts]
    r_ids = [tokenizer(r, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for r in responses]
    pw, rw, pad = max(map(len, p_ids)), max(map(len, r_ids)), tokenizer.pad_token_id
    prompts_t = torch.tensor([[pad] * (pw - len(x)) + x for x in p_ids])
    responses_t = torch.tensor([x + [pad] * (rw - len(x)) for x in r_ids])
    mask = torch.tensor([[0] * (pw - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (rw - len(r))
                         for p, r in zip(p_ids, r_ids, strict=True)])
    return DataProto.from_dict(
        tensors={"prompts": prompts_t, "responses": responses_t, "attention_mask": mask,
                 "input_ids": torch.cat([prompts_t, responses_t], dim=1)},
        non_tensors={"reward_model": np.array([{"ground_truth": a} for a in answers], dtype=object),
                     "uid": np.array(["u0"] * len(prompts), dtype=object)}), r_ids


def test_reward_manager_puts_pav_rewards_on_step_ends_of_a_dataproto(pqv_dir):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer

    from pavkit.llm.rl import prover_values, response_steps

    tok = AutoTokenizer.from_pretrained(pqv_dir)
    config = OmegaConf.create({"reward": {"reward_kwargs": {"pavkit": {
        "verifier": str(pqv_dir), "prover": "bok:4", "alpha": 1.5, "device": "cpu"}}}})
    manager = PAVRewardManager(config, tok, None)
    prompts = ["Q: What is 3+4*2?\n", "Q: What is 5+1?\n"]
    responses = ["Step: 4*2=8\nStep: 3+8=11\nThe answer is 11", "Step: 5+1=7\nThe answer is 7"]
    data, r_ids = _batch(tok, prompts, responses, ["11", "6"])
    # verl awaits run_single on the manager's own event loop (RewardManagerBase.loop)
    outs = [manager.loop.run_until_complete(manager.run_single(data[i:i + 1])) for i in range(len(data))]
    assert [o["reward_extra_info"]["acc"] for o in outs] == [1.0, 0.0]
    values = prover_values(str(pqv_dir), "bok:4", device="cpu")
    for out, prompt, ids in zip(outs, prompts, r_ids, strict=True):
        texts = tok.batch_decode([[t] for t in ids], skip_special_tokens=True)
        steps, token_steps = response_steps(texts)
        v = values([prompt], [steps])[0]
        rewards = np.array(out["reward_score"])
        assert len(rewards) == len(ids) and out["reward_extra_info"]["steps"] == len(steps) == len(v) - 1
        ends = [int(np.flatnonzero(token_steps == h).max()) for h in range(len(steps))]
        want = np.zeros(len(ids))
        want[ends] += 1.5 * np.diff(v)
        want[-1] += out["reward_extra_info"]["acc"]
        np.testing.assert_allclose(rewards, want, atol=1e-9)
    rm = PAVRewardManager.assemble_rm_scores(data, [o["reward_score"] for o in outs])
    assert rm.shape == data.batch["responses"].shape
    np.testing.assert_allclose(rm[1, :len(r_ids[1])].numpy(), outs[1]["reward_score"], atol=1e-6)
    assert rm[1, len(r_ids[1]):].abs().sum() == 0
    adv, _ = pav_advantage(rm, (data.batch["attention_mask"][:, data.batch["prompts"].shape[1]:]),
                           index=data.non_tensor_batch["uid"])
    assert adv.shape == rm.shape and adv[1, len(r_ids[1]):].abs().sum() == 0


def test_outcome_only_manager_needs_no_verifier(pqv_dir):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pqv_dir)
    manager = PAVRewardManager(OmegaConf.create({"reward": {"reward_kwargs": {"pavkit": {"alpha": 0}}}}), tok)
    out = manager.score(tok("Q: 1+1?\n")["input_ids"], tok("The answer is 2", add_special_tokens=False)["input_ids"],
                        "2")
    assert out["reward_score"][-1] == 1.0 and sum(out["reward_score"]) == 1.0
    with pytest.raises(ValueError, match="verifier"):
        PAVRewardManager(OmegaConf.create({"reward": {"reward_kwargs": {"pavkit": {"alpha": 1}}}}), tok)


def test_the_example_recipe_composes_and_resolves_to_pavkit(monkeypatch):
    """examples/verl/run_pav.sh's overrides, composed with verl's own ppo_trainer config (hydra): verl resolves
    the reward manager to PAVRewardManager and the estimator to pav_advantage (the trainer itself needs GPUs)."""
    import re
    import shlex
    from pathlib import Path

    from hydra import compose, initialize_config_module
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    script = (Path(__file__).parents[1] / "examples" / "verl" / "run_pav.sh").read_text()
    words = shlex.split(script[script.index("python main_pav.py"):].replace("\\\n", " ").split("\n")[0])
    env = {"DATA": "/data", "POLICY": "/policy", "PQV": "/pqv"}
    overrides = [re.sub(r"\$(\w+)", lambda m: env[m.group(1)], w) for w in words[2:] if w != "$@"]
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(config_name="ppo_trainer", overrides=overrides)
    assert resolve_reward_manager_cls(config) is PAVRewardManager
    assert get_adv_estimator_fn(config.algorithm.adv_estimator) is pav_advantage
    assert dict(config.reward.reward_kwargs.pavkit) == {"verifier": "/pqv", "prover": "bok:4", "alpha": 3.0,
                                                       "strict": False}
    assert config.actor_rollout_ref.model.path == "/policy" and config.data.train_files == "/data/train.parquet"
