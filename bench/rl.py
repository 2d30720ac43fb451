"""Online RL on the model organism (paper §5, Fig. 7-8): PAV-RL vs outcome-only RL over seeds. One JSON line.

Needs an organism pipeline directory (`pavkit llm pipeline --preset organism --out ORG`: the base policy
ORG/organism/base, or --policy, and the PQV ORG/pqv). Runs, each through the CLI and each resumable:

1. `pavkit llm rft` of the base (the RL initialisation);
2. evaluation-only runs (`--iters 0`): the SFT base with --sft-samples per held-out problem (the Fig. 8(b)
   reference) and the RFT policy;
3. `pavkit llm rl` for every seed, α = 0 (outcome-only) and α = --alpha with --prover and --verifier (PAV-RL),
   --workers at a time with --threads torch threads each;

then `pavkit plot fig7|fig8` and prints

    {"sample_efficiency": ..., "accuracy_gain": ..., "pass_at_n_gain": ..., "samples_per_second": ..., "minutes": ...}

sample_efficiency = iterations outcome-only RL needs to reach its final accuracy ÷ iterations PAV-RL needs to
reach it (mean curves over seeds); accuracy_gain = final PAV-RL − final outcome-only accuracy; pass_at_n_gain =
the same for Pass@N at the largest N; samples_per_second = RL training samples (iterations × problems × group)
per second of the RL iterations' wall time (their evaluations included), averaged over the RL runs; minutes =
wall time of the stages (summed over resumed calls, kept in OUT/stages.jsonl).
Usage: python bench/rl.py --organism runs/organism-cpu [--out runs/bench-rl] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _pavkit(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pavkit", *args], check=True, stdout=subprocess.DEVNULL)


def _stage(out: Path, name: str, fn) -> None:
    """Run fn once; its wall time goes to OUT/stages.jsonl (a stage already recorded there is skipped)."""
    from pavkit import runs

    if name in {r["stage"] for r in runs.read_records(out, "stages.jsonl")}:
        return
    t0 = time.perf_counter()
    fn()
    runs.append_record(out, {"stage": name, "seconds": round(time.perf_counter() - t0, 1)}, "stages.jsonl")


def samples_per_second(run_dirs: list[str]) -> float | None:
    """Mean over runs of training samples per second of the run's RL iterations (records with iteration ≥ 1)."""
    from pavkit import runs

    rates = []
    for d in run_dirs:
        cfg = runs.read_json(d, "config.json")
        its = [r for r in runs.read_records(d) if r["iteration"] >= 1]
        if its:
            rates.append(len(its) * cfg["problems_per_iter"] * cfg["group"] / sum(r["seconds"] for r in its))
    return round(sum(rates) / len(rates), 2) if rates else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--organism", default="runs/organism-cpu", help="organism pipeline directory (base, pqv)")
    p.add_argument("--policy", default=None, help="the SFT policy to start from (default ORGANISM/organism/base)")
    p.add_argument("--out", default="runs/bench-rl")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--iters", type=int, default=150)
    p.add_argument("--alpha", type=float, default=3.0)
    p.add_argument("--prover", default="bok:4")
    p.add_argument("--verifier", default=None, help="default ORGANISM/pqv; organism-oracle for the exact control")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--problems-per-iter", type=int, default=16)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--eval-problems", default="organism:test:0:100")
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--final-samples", type=int, default=32)
    p.add_argument("--sft-samples", type=int, default=256)
    p.add_argument("--control-verifier", default="organism-oracle",
                   help="verifier of a control arm (α = --control-alpha, same prover) on --control-seeds; '' skips")
    p.add_argument("--control-alpha", type=float, default=1.0)
    p.add_argument("--control-seeds", default="0,1")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    org, out = Path(a.organism), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    verifier = a.verifier or str(org / "pqv")
    common = ["--eval-problems", a.eval_problems, "--threads", str(a.threads)]
    rl_common = [*common, "--iters", str(a.iters), "--lr", str(a.lr), "--eval-every", str(a.eval_every),
                 "--problems-per-iter", str(a.problems_per_iter), "--group", str(a.group),
                 "--final-samples", str(a.final_samples)]
    rft_policy = str(out / "rft" / "model")
    sft_policy = a.policy or str(org / "organism" / "base")

    _stage(out, "rft", lambda: _pavkit("llm", "rft", "--policy", sft_policy,
                                       "--out", str(out / "rft"), "--threads", str(a.workers * a.threads)))
    jobs = [("llm", "rl", "--policy", sft_policy, "--alpha", "0", "--iters", "0",
             "--final-samples", str(a.sft_samples), *common, "--out", str(out / "sft")),
            ("llm", "rl", "--policy", rft_policy, "--alpha", "0", "--iters", "0", "--final-samples",
             str(a.final_samples), *common, "--out", str(out / "rft-eval"))]
    for seed in a.seeds.split(","):
        jobs.append(("llm", "rl", "--policy", rft_policy, "--alpha", "0", "--seed", seed, *rl_common,
                     "--out", str(out / f"outcome-s{seed}")))
        jobs.append(("llm", "rl", "--policy", rft_policy, "--alpha", str(a.alpha), "--prover", a.prover,
                     "--verifier", verifier, "--seed", seed, *rl_common, "--out", str(out / f"pav-s{seed}")))

    controls = a.control_seeds.split(",") if a.control_verifier and a.control_seeds else []
    for seed in controls:
        jobs.append(("llm", "rl", "--policy", rft_policy, "--alpha", str(a.control_alpha), "--prover", a.prover,
                     "--verifier", a.control_verifier, "--seed", seed, *rl_common,
                     "--out", str(out / f"control-s{seed}")))

    def run_all() -> None:
        with ThreadPoolExecutor(a.workers) as pool:
            for f in [pool.submit(_pavkit, *job) for job in jobs]:
                f.result()

    _stage(out, "rl", run_all)
    dirs = [str(out / d) for d in ("sft", "rft-eval")] + [str(out / f"{arm}-s{s}") for s in a.seeds.split(",")
                                                          for arm in ("outcome", "pav")]
    (out / "figures").mkdir(exist_ok=True)
    for fig in ("fig7", "fig8"):
        _pavkit("plot", fig, *dirs, "--out", str(out / "figures" / f"{fig}.png"))

    from pavkit import runs
    from pavkit.analysis.figures import load_rl_runs, rl_llm_summary

    summary = rl_llm_summary(load_rl_runs(dirs))
    seconds = sum(r["seconds"] for r in runs.read_records(out, "stages.jsonl"))
    summary["minutes"] = round(seconds / 60, 1)
    rl_dirs = dirs[2:] + [str(out / f"control-s{s}") for s in controls]
    summary["samples_per_second"] = samples_per_second(rl_dirs)
    if controls:  # the same comparison with the control arm in PAV-RL's place
        control = [str(out / f"control-s{s}") for s in controls]
        (out / "figures" / "control").mkdir(exist_ok=True)
        cdirs = dirs[:2] + [d for d in dirs[2:] if "outcome" in d] + control
        _pavkit("plot", "fig7", *cdirs, "--out", str(out / "figures" / "control" / "fig7.png"))
        c = rl_llm_summary(load_rl_runs(cdirs))
        summary["control"] = {k: c.get(k) for k in ("sample_efficiency", "accuracy_gain", "pass_at_n_gain", "reach",
                                                     "effective_reward")}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    gain = summary.get("pass_at_n_gain") or {}
    print(json.dumps({"sample_efficiency": summary.get("sample_efficiency"),
                      "sample_efficiency_is_lower_bound": summary.get("reach", {}).get("ratio_is_lower_bound"),
                      "accuracy_gain": summary.get("accuracy_gain"), "pass_at_n_gain": gain.get("gain"),
                      "pass_at_n": gain.get("n"), "samples_per_second": summary["samples_per_second"],
                      "minutes": summary["minutes"],
                      "final_accuracy": {k: summary[k]["final_accuracy"] for k in ("outcome_only", "effective_reward")
                                         if k in summary},
                      "unsolved_by_sft": {k: v if not isinstance(v, dict) else v["mean"][-1]
                                          for k, v in summary.get("unsolved_by_sft", {}).items()},
                      "control": summary.get("control", {}).get("sample_efficiency"),
                      "control_accuracy_gain": summary.get("control", {}).get("accuracy_gain")}))


if __name__ == "__main__":
    main()
