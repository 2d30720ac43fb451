r"""pavkit's PAV as dense rewards in verl (0.9): a reward manager and an advantage estimator for RL at scale.

verl's PPO trainer samples responses, asks a *reward manager* for token-level scores ``rm_scores`` (B, T) and
turns them, through an *advantage estimator*, into per-token advantages. Importing this module registers both
(verl's ``register`` decorators), so a verl config names them (`examples/verl/`):

- :class:`PAVRewardManager` (reward manager "pavkit_pav"): for one response it splits the text into steps with
  pavkit's one step format (``pavkit.llm.rl.response_steps``: a token belongs to the step of its last character,
  so a delimiter token ends its step, and a token that straddles a boundary counts to the later step, exactly as
  pavkit's own RL credits it), scores every
  prefix with the PAV (the PQV ``verifier`` and the prover ``prover``: ``bok:K`` or a Q^μ ``model:DIR``) and
  grades the response with Rex (``pavkit.llm.grading``). Rewards (:func:`token_rewards`): α·A^μ(s_h, a_h) =
  α·(V̂^μ(s_{h+1}) − V̂^μ(s_h)) on the last token of step h, plus the outcome r(y) ∈ {0, 1} on the last token.
- :func:`pav_advantage` (advantage estimator "pavkit_pav"): Eq. 5 with rewards-to-go and a leave-one-out
  baseline. At token t of response i,

      A_t = Σ_{t' ≥ t} rewards_{i,t'} − b_i,   b_i = mean over the other responses of i's group of Σ_t rewards_{j,t}

  which at a token of step h is r(y_i) + α·Σ_{h' ≥ h} A^μ(s_h', a_h') − b_i (verl's KL-in-reward, if on, is part
  of the rewards). Why rewards-to-go and not Eq. 5's immediate α·A^μ_h (pavkit's default): verl hands an
  estimator only the summed token rewards, in which the outcome and the last step's α·A^μ share the last token,
  so the immediate form cannot be recovered from them; the to-go form needs no such separation. It is pavkit's
  ``pavkit llm rl --rewards-to-go`` credit; the baseline differs (here the group's other *returns*, there its
  other *outcomes*): both leave the gradient unbiased.

Settings come from verl's config, ``reward.reward_kwargs.pavkit``: ``verifier`` (a PQV path), ``prover``
("bok:4"), ``alpha`` (1.0), ``delimiter`` ("\n"), ``strict`` (False), ``device`` (default: cuda if available).
verl 0.9.1 pins transformers < 5.11: it lives in its own environment (``ci/test-verl.sh`` builds
``.venv-verl``), and its trainer needs GPUs; this module and its tests run on CPU.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from verl import DataProto
from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.trainer.ppo.core_algos import register_adv_est

from pavkit.llm.steps import DEFAULT_DELIMITER
from pavkit.losses import leave_one_out_baseline, rewards_to_go

NAME = "pavkit_pav"  # the reward manager's and the advantage estimator's name in verl's registries


def token_rewards(token_texts: Sequence[str], outcome: float, v_mu: np.ndarray | None, alpha: float,
                  delimiter: str = DEFAULT_DELIMITER) -> np.ndarray:
    """(T,) rewards of one response: α·(V^μ(s_{h+1}) − V^μ(s_h)) on the last token of step h (h = 1 … H) and
    the outcome on the last token.

    ``token_texts``: the response's tokens as text (T,), special tokens as ""; steps and the step of each token
    come from ``pavkit.llm.rl.response_steps``. ``v_mu``: (H+1,) V^μ of s_1 … s_{H+1}, or None (α = 0).
    """
    from pavkit.llm.rl import response_steps

    rewards = np.zeros(len(token_texts))
    if not len(token_texts):
        return rewards
    steps, token_steps = response_steps(token_texts, delimiter)
    if steps and v_mu is not None and alpha:
        v = np.asarray(v_mu, dtype=float)
        if v.shape != (len(steps) + 1,):
            raise ValueError(f"v_mu has shape {v.shape}, the response has {len(steps)} steps")
        last = np.full(len(steps), -1)
        for t, h in enumerate(token_steps):
            last[h] = t
        rewards[last] += alpha * np.diff(v)
    rewards[-1] += outcome
    return rewards


@register(NAME)
class PAVRewardManager(RewardManagerBase):
    """verl reward manager: pavkit's PAV rewards on step-end tokens plus the outcome (see the module docstring).

    ``run_single`` returns {"reward_score": the response's token rewards (a list), "reward_extra_info": {"acc":
    outcome, "steps": H}}; :meth:`assemble_rm_scores` writes the lists into the (B, T) ``rm_scores``.
    """

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, reward_router_address: Any = None,
                 reward_model_tokenizer: Any = None, **_: Any):
        super().__init__(config, tokenizer, compute_score)
        settings = dict((config.get("reward", {}) or {}).get("reward_kwargs", {}).get("pavkit", {}))
        self.alpha = float(settings.get("alpha", 1.0))
        self.delimiter = settings.get("delimiter", DEFAULT_DELIMITER)
        self.strict = bool(settings.get("strict", False))
        self.values = None
        if self.alpha:
            from pavkit.llm.rl import prover_values

            if not settings.get("verifier") and not str(settings.get("prover", "")).startswith("model:"):
                raise ValueError("reward.reward_kwargs.pavkit.verifier: the PQV behind a bok:K prover is required "
                                 "when alpha > 0")
            self.values = prover_values(settings.get("verifier", ""), settings.get("prover", "bok:4"),
                                        self.delimiter, settings.get("device"))
        self._lock = threading.Lock()  # one verifier forward pass at a time (run_single is awaited concurrently)

    def score(self, prompt_ids: Sequence[int], response_ids: Sequence[int], ground_truth: str) -> dict:
        """The reward of one (prompt, response) pair, synchronously: {"reward_score", "reward_extra_info"}."""
        from pavkit.llm.grading import CORRECT, grade
        from pavkit.llm.rl import response_steps

        tok = self.tokenizer
        texts = tok.batch_decode([[int(t)] for t in response_ids], skip_special_tokens=True)
        steps, _ = response_steps(texts, self.delimiter)
        outcome = float(grade("".join(texts), str(ground_truth), strict=self.strict) == CORRECT)
        v_mu = None
        if self.values is not None and steps:
            prompt = tok.decode(list(prompt_ids), skip_special_tokens=False)
            if tok.bos_token and prompt.startswith(tok.bos_token):  # re-tokenising the text adds it again
                prompt = prompt[len(tok.bos_token):]
            with self._lock:
                v_mu = self.values([prompt], [steps])[0]
        rewards = token_rewards(texts, outcome, v_mu, self.alpha, self.delimiter)
        return {"reward_score": rewards.tolist(), "reward_extra_info": {"acc": outcome, "steps": len(steps)}}

    async def run_single(self, data: DataProto) -> dict:
        item = data[-1]
        prompt_ids, response_ids = item.batch["prompts"], item.batch["responses"]
        mask = item.batch["attention_mask"]
        prompt_ids = prompt_ids[mask[:len(prompt_ids)].bool()]  # prompts are left-padded
        response_ids = response_ids[:int(mask[len(item.batch["prompts"]):].sum())]
        ground_truth = item.non_tensor_batch["reward_model"]["ground_truth"]
        return await self.loop.run_in_executor(None, self.score, prompt_ids.tolist(), response_ids.tolist(),
                                               ground_truth)

    @classmethod
    def assemble_rm_scores(cls, data: DataProto, scores: list) -> torch.Tensor:
        """(B, T) ``rm_scores``: row i holds response i's token rewards on its first len(scores[i]) tokens."""
        rm_scores = torch.zeros_like(data.batch["responses"], dtype=torch.float32)
        for i, rewards in enumerate(scores):
            rm_scores[i, :len(rewards)] = torch.as_tensor(rewards, dtype=torch.float32)
        return rm_scores


@register_adv_est(NAME)
def pav_advantage(token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: np.ndarray | None = None,
                  config: Any = None, **_: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns), both (B, T): rewards-to-go minus the leave-one-out mean of the group's other whole
    returns (module docstring); 0 on masked tokens. ``index``: each response's group id (verl's "uid");
    without it every response is its own group (baseline 0)."""
    with torch.no_grad():
        mask = response_mask.bool().cpu().numpy()
        rewards = np.where(mask, token_level_rewards.detach().float().cpu().numpy(), 0.0)
        groups = np.asarray(index) if index is not None else np.arange(len(rewards))
        baseline = leave_one_out_baseline(rewards.sum(axis=1), groups)
        advantages = np.where(mask, rewards_to_go(rewards, mask) - baseline[:, None], 0.0)
        out = torch.as_tensor(advantages, dtype=token_level_rewards.dtype, device=token_level_rewards.device)
    return out, out
