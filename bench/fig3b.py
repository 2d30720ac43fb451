"""Fig. 3(b) at the paper's settings: the μ_γ prover-strength sweep over seeds, and whether it is an inverted U.

Runs (or resumes) `pavkit toy sweep fig3b` with Q^π from 100 rollouts of π, α = 1, batch 64, Adam 1e-3, exact
A^μ, one run per (γ, seed) plus outcome-only (α = 0) per seed, then prints one JSON line:

    {"reading", "gammas", "mean_accuracy", "ci_low", "ci_high", "seeds", "outcome_only", "peak_gamma",
     "inverted_u", "fig3a", "terms_at_sft", "minutes", "cpu_minutes"}

mean_accuracy is each run's accuracy averaged over its evaluations after iteration 0, averaged over seeds, with
95 % bootstrap CIs over seeds. inverted_u is true when the peak's CI lies entirely above the CIs at the smallest
and at the largest γ (and the peak is neither); null with a single seed. fig3a is the Fig. 3(a) comparison read
from the same runs: the iterations the mean curves of γ = 10 (or the γ nearest it) and of outcome-only need to
reach accuracy 0.9.
minutes is this call's wall time (a resumed sweep only pays for the runs it adds); cpu_minutes sums the
training time every run recorded (one torch thread each), the cost of the whole sweep from scratch.
terms_at_sft holds Theorem 3.1's distinguishability E_s Var_π[A^μ] and alignment E_s E_π[A^μ A^π] of each μ_γ
at the states of 64 samples of the first seed's SFT policy (``pavkit.toy.rl.sft_prover_terms``, Q^π from 100
rollouts per child): the paper explains the inverted U by A^μ ≈ 0 on most states outside γ ∈ [8, 15].

Usage: python bench/fig3b.py --mu-reading pooled --out runs/sweep-paper-pooled [--seeds 0,1,2] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def inverted_u(low: list[float], high: list[float], mean: list[float], seeds: list[int]) -> tuple[int, bool | None]:
    """(index of the peak mean, whether its CI lies above the CIs at both ends and it is an interior point);
    None with fewer than 2 seeds anywhere, where a bootstrap CI collapses to the mean and cannot decide."""
    peak = max(range(len(mean)), key=mean.__getitem__)
    if min(seeds) < 2:
        return peak, None
    interior = 0 < peak < len(mean) - 1
    return peak, bool(interior and low[peak] > high[0] and low[peak] > high[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mu-reading", choices=["per-token", "pooled"], default="pooled")
    p.add_argument("--out", default=None, help="sweep directory (default runs/sweep-paper-READING)")
    p.add_argument("--gammas", default="1,2,3,5,8,10,13,15,17", help="comma-separated γ of μ_γ")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--iters", type=int, default=120, help="RL iterations per run")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--workers", type=int, default=2, help="runs in parallel, one torch thread each")
    p.add_argument("--extra", default="", help="further `pavkit toy sweep` options, e.g. '--optimizer sgd --lr 1'")
    a = p.parse_args()
    out = Path(a.out or f"runs/sweep-paper-{a.mu_reading}")
    gammas = [float(g) for g in a.gammas.split(",")]
    provers = ",".join(f"gamma:{g:g}" for g in gammas)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pavkit", "toy", "sweep", "fig3b", "--provers", provers,
                    "--seeds", a.seeds, "--iters", str(a.iters), "--n-mc", "100", "--eval-every", str(a.eval_every),
                    "--mu-reading", a.mu_reading, "--workers", str(a.workers), "--threads", "1",
                    *a.extra.split(), "--out", str(out)], check=True, stdout=subprocess.DEVNULL)
    minutes = (time.perf_counter() - t0) / 60

    from pavkit.analysis.loaders import load_rl_runs
    from pavkit.analysis.tables import fig3_summary, sweep_table

    seeds = [int(s) for s in a.seeds.split(",")]
    names = [f"gamma-{g:g}" for g in gammas] + ["outcome-only"]
    runs = load_rl_runs([str(out / f"{n}-seed{s}") for n in names for s in seeds])
    t = sweep_table(runs)
    peak, is_u = inverted_u(t["low"], t["high"], t["mean"], t["seeds"])
    near10 = min(gammas, key=lambda g: abs(g - 10))
    fig3a = fig3_summary([r for r in runs if r.config["alpha"] == 0 or r.config["prover"] == f"gamma:{near10:g}"])
    import torch

    from pavkit.toy.rl import RLConfig, sft_prover_terms

    torch.set_num_threads(1)
    terms = sft_prover_terms(RLConfig.from_dict(runs[0].config), [f"gamma:{g:g}" for g in gammas])
    print(json.dumps({
        "reading": a.mu_reading, "gammas": t["strength"], "mean_accuracy": [round(x, 4) for x in t["mean"]],
        "ci_low": [round(x, 4) for x in t["low"]], "ci_high": [round(x, 4) for x in t["high"]],
        "seeds": t["seeds"], "outcome_only": [round(x, 4) for x in t["baseline"]],
        "peak_gamma": t["strength"][peak], "inverted_u": is_u,
        "fig3a": {"gamma": near10, **fig3a.get("reach", {}),
                  "final_effective": fig3a["effective_reward"]["final_accuracy"],
                  "final_outcome_only": fig3a["outcome_only"]["final_accuracy"]},
        "terms_at_sft": {k: [float(f"{x:.3g}") for x in terms[k]] for k in ("distinguishability", "alignment")},
        "iters": a.iters, "minutes": round(minutes, 1),
        "cpu_minutes": round(sum(sum(rec.get("seconds", 0.0) for rec in r.records) for r in runs) / 60, 1)}))


if __name__ == "__main__":
    main()
