"""pavkit: process advantage verifiers from "Rewarding Progress" (Setlur et al., arXiv 2410.08146).

The public API is the shared math; importing pavkit never imports torch, transformers or vllm.
"""

from pavkit.estimators import (
    advantages,
    bok,
    complementarity,
    effective_reward,
    first_pit,
    mc_estimate,
    mc_values,
    pass_at_k,
    q_values,
    step_mask,
)
from pavkit.search import beam_search, best_of_n

__all__ = [
    "advantages",
    "beam_search",
    "best_of_n",
    "bok",
    "complementarity",
    "effective_reward",
    "first_pit",
    "mc_estimate",
    "mc_values",
    "pass_at_k",
    "q_values",
    "step_mask",
]
__version__ = "0.1.0"
