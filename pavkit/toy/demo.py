"""`pavkit demo`: the paper's Fig. 3 (didactic RL, §3.3) scaled to a laptop, as experiment = runs + analysis.

Fig. 3(a)/(c): RL with the effective reward (μ_10, α = 1) against outcome-only RL, ``seeds`` seeds each;
Fig. 3(b): a sweep of μ_γ provers (one seed, 3/4 of the iterations). Q^π is the sampled sequence's own reward
(``n_mc = 0``, so outcome-only RL sees the task's sparse reward as it is) and A^μ is exact; ``pavkit toy rl`` /
``toy sweep`` run the paper's settings (100 Monte Carlo rollouts per prefix).
"""

from __future__ import annotations

import json
from pathlib import Path

from pavkit.runs import QUIET, Reporter

SWEEP_PROVERS = ("gamma:1", "gamma:3", "gamma:5", "gamma:8", "gamma:10", "gamma:13", "gamma:17", "gamma:30",
                 "gamma:100")
PLANTED = (3, 6, 0, 3, 5)  # the paper's example y*


def demo_jobs(out, seeds: int = 3, iters: int = 200, mu_reading: str | None = None) -> list[tuple]:
    """(RLConfig, run directory) of every demo run: OUT/fig3a/{effective-gamma-10,outcome-only}-seedS and
    OUT/fig3b/{gamma-G,outcome-only}-seed0."""
    from pavkit.toy.config import RLConfig, SFTConfig
    from pavkit.toy.planted import DEFAULT_MU_READING

    base = dict(n_mc=0, prover_mc=0, batch=64, lr=1e-3, eval_every=10, eval_samples=1000, final_samples=2000,
                pass_at_iter=50, planted=PLANTED, sft=SFTConfig(gamma=5.0), mu_reading=mu_reading or DEFAULT_MU_READING)
    out = Path(out)
    jobs = []
    for seed in range(seeds):
        for alpha, name in ((1.0, "effective-gamma-10"), (0.0, "outcome-only")):
            jobs.append((RLConfig(prover="gamma:10", alpha=alpha, seed=seed, iters=iters, **base),
                         str(out / "fig3a" / f"{name}-seed{seed}")))
    sweep_iters = max(100, iters * 3 // 4)
    for prover in SWEEP_PROVERS:
        jobs.append((RLConfig(prover=prover, alpha=1.0, seed=0, iters=sweep_iters, **base),
                     str(out / "fig3b" / f"{prover.replace(':', '-')}-seed0")))
    jobs.append((RLConfig(prover="gamma:10", alpha=0.0, seed=0, iters=sweep_iters, **base),
                 str(out / "fig3b" / "outcome-only-seed0")))
    return jobs


def run_demo(out, seeds: int = 3, iters: int = 200, workers: int | None = None, mu_reading: str | None = None,
             report: Reporter = QUIET) -> str:
    """Run (or resume) the demo's runs in OUT, draw OUT/fig3a.png, fig3b.png, fig3c.png, write OUT/summary.txt
    and OUT/summary.json; the summary text."""
    from pavkit import drivers
    from pavkit.analysis import figures, loaders, tables
    from pavkit.toy.planted import DEFAULT_MU_READING

    mu_reading = mu_reading or DEFAULT_MU_READING
    out = Path(out)
    jobs = demo_jobs(out, seeds, iters, mu_reading)
    out.mkdir(parents=True, exist_ok=True)
    drivers.run_toy_rl_jobs(jobs, workers or drivers.default_workers(), 1, report)
    fig_a = loaders.load_rl_runs([o for _, o in jobs if Path(o).parent.name == "fig3a"])
    fig_b = loaders.load_rl_runs([o for _, o in jobs if Path(o).parent.name == "fig3b"])
    figures.save_figure(figures.fig3a_figure(fig_a), out / "fig3a.png")
    figures.save_figure(figures.fig3b_figure(fig_b), out / "fig3b.png")
    figures.save_figure(figures.fig3c_figure(fig_a), out / "fig3c.png")
    summary, sweep = tables.fig3_summary(fig_a), tables.sweep_table(fig_b)
    text = tables.fig3_text(summary, sweep, "Q^π = sampled reward (n_mc = 0), exact A^μ, α = 1, batch 64, Adam 1e-3, "
                                            f"μ_γ reading {mu_reading}")
    (out / "summary.txt").write_text(text)
    (out / "summary.json").write_text(json.dumps({"fig3": summary, "sweep": sweep}, indent=2) + "\n")
    return text
