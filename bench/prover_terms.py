"""Theorem 3.1's terms of each μ_γ at the SFT policy's states, by reading and sequence length. One JSON line.

The paper explains Fig. 3(b)'s inverted U by A^μ ≈ 0 on most states outside γ ∈ [8, 15] (a weak μ cannot
complete y*, a strong one completes it from everywhere). For each μ_γ reading and each sequence length this
script takes the seed-0 SFT policy of `pavkit toy rl` (50 steps on μ_5 samples), samples 64 sequences, and
prints ``pavkit.toy.rl.sft_prover_terms`` at their unsettled prefixes (π and A^{μ_γ} exact, Q^π from 100 rollouts
per child), plus π's mean probability of EOS there (a strong μ's A^μ(s, EOS) = −V^μ(s) ≈ −1):

    {"gammas": [...], "rows": [{"reading", "length", "states", "pi_eos", "distinguishability": [...],
                                "alignment": [...]}, ...], "minutes": M}

Usage: python bench/prover_terms.py [--lengths 10,20,30] [--gammas 1,3,5,8,10,13,17,100]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", default="10,20,30")
    p.add_argument("--gammas", default="1,3,5,8,10,13,17,100")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    from pavkit.toy.planted import MU_READINGS
    from pavkit.toy.rl import RLConfig, sft_prover_terms

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    gammas = [float(g) for g in a.gammas.split(",")]
    rows = []
    for reading in MU_READINGS:
        for length in (int(n) for n in a.lengths.split(",")):
            terms = sft_prover_terms(RLConfig(mu_reading=reading, length=length, seed=a.seed),
                                     [f"gamma:{g:g}" for g in gammas])
            rows.append({"reading": reading, "length": length, "states": terms["states"],
                         "pi_eos": round(terms["pi_eos"], 3),
                         **{k: [float(f"{x:.3g}") for x in terms[k]] for k in ("distinguishability", "alignment")}})
    print(json.dumps({"gammas": gammas, "rows": rows, "minutes": round((time.perf_counter() - t0) / 60, 1)}))


if __name__ == "__main__":
    main()
