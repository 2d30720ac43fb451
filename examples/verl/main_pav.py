"""verl's PPO trainer with pavkit's PAV rewards (GPU machines): `python examples/verl/main_pav.py OVERRIDES...`.

Importing pavkit.integrations.verl registers the "pavkit_pav" advantage estimator in this (the driver) process,
where verl computes advantages; the reward workers load the reward manager themselves, from
reward.reward_manager.module.path=pkg://pavkit.integrations.verl. `run_pav.sh` beside this file gives the
overrides. Needs verl 0.9.1 and pavkit in one environment (transformers < 5.11, as verl pins).
"""

from verl.trainer.main_ppo import main

import pavkit.integrations.verl  # noqa: F401  (registers the estimator and the reward manager)

if __name__ == "__main__":
    main()
