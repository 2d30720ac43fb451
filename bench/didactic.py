"""Speed of the didactic RL loop at the paper's size (paper §3.3): one JSON line.

Setting: MADE 3×128, batch 64, sequences of 10 over 15 tokens, γ = 10 prover, α = 1, 100 Monte Carlo rollouts
of π per distinct unsettled prefix. Timed from the SFT initialisation, where sequences are longest and rollouts
most numerous (the slowest phase of a run). Usage: python bench/didactic.py [--iters 30] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from pavkit.toy.rl import RLConfig, init_state, rl_iteration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--n-mc", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = RLConfig(prover="gamma:10", alpha=1.0, n_mc=args.n_mc)
    state = init_state(cfg)
    rl_iteration(state, cfg)  # warm-up
    t0 = time.perf_counter()
    rollouts = sum(rl_iteration(state, cfg)["rollouts"] for _ in range(args.iters))
    seconds = time.perf_counter() - t0
    print(json.dumps({"iters_per_second": round(args.iters / seconds, 2),
                      "rollouts_per_second": round(rollouts / seconds),
                      "rollouts_per_iter": round(rollouts / args.iters), "n_mc": args.n_mc,
                      "threads": args.threads, "iters": args.iters, "seconds": round(seconds, 2)}))


if __name__ == "__main__":
    main()
