"""Theorem 3.1's terms of each μ_γ at the SFT policy's states, by reading and sequence length. One JSON line.

The paper explains Fig. 3(b)'s inverted U by A^μ ≈ 0 on most states outside γ ∈ [8, 15] (a weak μ cannot
complete y*, a strong one completes it from everywhere). For each μ_γ reading and each sequence length this
script takes the seed-0 SFT policy of `pavkit toy rl` (50 steps on μ_5 samples), samples 64 sequences, and
prints ``pavkit.toy.rl.prover_terms`` at their unsettled prefixes (π and A^{μ_γ} exact, Q^π from 100 rollouts
per child), plus π's mean probability of EOS there (a strong μ's A^μ(s, EOS) = −V^μ(s) ≈ −1):

    {"gammas": [...], "rows": [{"reading", "length", "states", "pi_eos", "distinguishability": [...],
                                "alignment": [...]}, ...], "minutes": M}

Usage: python bench/prover_terms.py [--lengths 10,20,30] [--gammas 1,3,5,8,10,13,17,100]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="10,20,30")
    p.add_argument("--gammas", default="1,3,5,8,10,13,17,100")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    from pavkit.toy.planted import MU_READINGS
    from pavkit.toy.policies import action_mask
    from pavkit.toy.rl import RLConfig, init_state, prover_terms

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    gammas = [float(g) for g in a.gammas.split(",")]
    rows = []
    for reading in MU_READINGS:
        for length in (int(n) for n in a.lengths.split(",")):
            state = init_state(RLConfig(mu_reading=reading, length=length, seed=a.seed))  # SFT only
            seqs = state.policy.sample(64, torch.Generator().manual_seed(a.seed + 20_000)).numpy()
            terms = prover_terms(state.policy, state.task, [f"gamma:{g:g}" for g in gammas], seqs, 100,
                                 torch.Generator().manual_seed(a.seed + 20_001))
            b, h = np.nonzero(action_mask(state.task, seqs))
            with torch.no_grad():
                logits = state.policy.logits(torch.as_tensor(state.task.prefixes_of(seqs)[b, h]))
                pi_eos = torch.softmax(logits[np.arange(len(h)), h], -1)[:, state.task.eos].mean().item()
            rows.append({"reading": reading, "length": length, "states": terms["states"], "pi_eos": round(pi_eos, 3),
                         **{k: [float(f"{x:.3g}") for x in terms[k]] for k in ("distinguishability", "alignment")}})
    print(json.dumps({"gammas": gammas, "rows": rows, "minutes": round((time.perf_counter() - t0) / 60, 1)}))


if __name__ == "__main__":
    main()
