#!/usr/bin/env bash
# PAV-RL at scale with verl (paper §5): outcome + α·A^μ token rewards from a pavkit PQV and a Bo-K prover, the
# "pavkit_pav" estimator (rewards-to-go, leave-one-out baseline), vLLM rollouts. Not run on a GPU by pavkit yet;
# tests/test_verl.py composes exactly these overrides on a CPU and resolves the manager and the estimator.
#   POLICY=... PQV=... DATA=... examples/verl/run_pav.sh [more overrides]
# DATA holds verl's parquet files (prompt, data_source, reward_model.ground_truth), e.g. from
# verl/examples/data_preprocess/gsm8k.py; PQV is a `pavkit llm train-verifier --kind pqv` folder on POLICY's
# tokenizer; α = 3 is the paper's choice for Gemma 9B (5 for 2B).
set -euo pipefail
cd "$(dirname "$0")"
python main_pav.py \
    algorithm.adv_estimator=pavkit_pav \
    data.train_files="$DATA/train.parquet" \
    data.val_files="$DATA/test.parquet" \
    data.train_batch_size=128 \
    data.max_prompt_length=512 \
    data.max_response_length=512 \
    actor_rollout_ref.model.path="$POLICY" \
    actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.use_kl_loss=true \
    actor_rollout_ref.actor.kl_loss_coef=0.001 \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=4 \
    reward.reward_manager.source=importlib \
    reward.reward_manager.name=PAVRewardManager \
    reward.reward_manager.module.path=pkg://pavkit.integrations.verl \
    +reward.reward_kwargs.pavkit.verifier="$PQV" \
    +reward.reward_kwargs.pavkit.prover=bok:4 \
    +reward.reward_kwargs.pavkit.alpha=3.0 \
    +reward.reward_kwargs.pavkit.strict=false \
    trainer.n_gpus_per_node=8 \
    trainer.nnodes=1 \
    "$@"
