"""Online RL on the model organism (paper §5, Fig. 7-8): PAV-RL vs outcome-only RL over seeds. One JSON line.

Needs an organism pipeline directory (`pavkit llm pipeline --preset organism --out ORG`: the base policy
ORG/organism/base, or --policy, and the PQV ORG/pqv for bok:K provers; with onpolicy:ROLE provers only
ORG/organism, the pipeline's first stage, is read). Runs, each through the CLI and each resumable:

1. `pavkit llm rft` of the base (the RL initialisation);
2. evaluation-only runs (`--iters 0`): the SFT base with --sft-samples per held-out problem (the Fig. 8(b)
   reference) and the RFT policy;
3. `pavkit llm rl` for every seed: OUT/outcome-sS (α = 0) and OUT/pav-sS (α = --alpha, --prover, --verifier,
   --baseline: the headline PAV-RL arm); OUT/control-sS on --control-seeds (α = --control-alpha, the same
   prover, --control-verifier: the exact-advantage control); and every --arm NAME=SEEDS:OPTIONS, OUT/NAME-sS
   with the common options plus OPTIONS, which win over them (e.g. --arm "pav-a1=0,1:--alpha 1 --prover bok:4",
   or "--lr 2e-4" beside an α = 0 arm of the same lr; the verifier is ORG/pqv where the prover is bok:K and
   OPTIONS name none; model:, const: and α = 0 arms need none). --workers runs at a time, --threads torch threads
   each. A run already complete in OUT is read, not rerun (the CLI resumes it at its last iteration);
4. for every prover onpolicy:ROLE named by --prover or an --arm (ROLE a checkpoint of the organism, e.g. weak),
   before the RL runs: OUT/labels-ROLE, Q^μ labels at the *RFT policy's* own prefixes rolled out by
   ORG/organism/ROLE, and OUT/qmu-ROLE, a qmu verifier on them, both with --preset's label problems and options
   and its verifier options and base (the pipeline's `labels-ROLE` and `qmu-ROLE` stages, but at RL's start
   policy instead of the base: a Q^μ model labelled at another policy's prefixes was exploited until the policy
   collapsed, README RL section); the runs get the prover model:OUT/qmu-ROLE;

then `pavkit plot fig7|fig8` (OUT/figures/, with arms.png: every arm's gain and its interval) and prints

    {"sample_efficiency": ..., "sample_efficiency_ci": ..., "accuracy_gain": ..., "accuracy_gain_ci": ...,
     "pass_at_n_gain": ..., "samples_per_second": ..., "minutes": ..., "arms": [...]}

sample_efficiency = iterations outcome-only RL needs to reach its final accuracy ÷ iterations PAV-RL needs to
reach it (mean curves over seeds), sample_efficiency_ci its 95 % interval resampling seeds (0 where PAV-RL
never reaches), sample_efficiency_by_level the same ratio at a quarter, half, three quarters and all of the way
from outcome-only's first evaluation to its final accuracy (how much the ratio hangs on where the level sits);
accuracy_gain = final PAV-RL − final outcome-only accuracy, and
accuracy_gain_ci its 95 % interval resampling problems and seeds; pass_at_n_gain = the same for Pass@N at the
largest N; samples_per_second = RL training samples (iterations × problems × group) per second of the RL
iterations' wall time (their evaluations included), averaged over the RL runs; minutes = wall time of the
stages (OUT/stages.jsonl keeps each stage's start and seconds: the union of those intervals, so parallel runs
count once and resumed calls add up); core_minutes = the RFT stage plus every RL run's
own time (what one core spent). "arms" has one row per PAV arm (headline, control, each --arm with α > 0),
each against the α = 0 runs with the same baseline ("loo-effective" equals "loo" at α = 0) and training
settings (lr, group, iterations, …: every config field but PAV_FIELDS) — an --arm with α = 0 and --baseline
value is the value-baseline reference, one with α = 0 and --lr 2e-4 that of the --lr 2e-4 arms — or the
headline outcome-only runs; OUT/table.md is
the same as a Markdown table. With --minutes M, the RL runs get the iterations that fit M minutes of wall time,
as a timed probe of all of them at once (OUT/probe/, figures in OUT/probe.json) predicts (`budgeted_iters`).
Usage: python bench/rl.py --organism runs/organism-cpu [--out runs/bench-rl] [--seeds 0,1,2] [--arm ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ONPOLICY = "onpolicy:"  # the prover spec of stage 4, resolved here to model:OUT/qmu-ROLE
# run-config fields in which a PAV arm may differ from its α = 0 reference (arm_rows); the rest must match
PAV_FIELDS = ("alpha", "prover", "verifier", "verifier_engine", "terminal_value", "shuffle_advantages",
              "rewards_to_go", "seed", "engine", "vllm_options", "microbatch")


def _pavkit(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pavkit", *args], check=True, stdout=subprocess.DEVNULL)


def _stage(out: Path, name: str, fn) -> None:
    """Run fn once; its wall time goes to OUT/stages.jsonl (a stage already recorded there is skipped)."""
    from pavkit import runs

    if name in {r["stage"] for r in runs.read_records(out, "stages.jsonl")}:
        return
    start, t0 = time.time(), time.perf_counter()
    fn()
    runs.append_record(out, {"stage": name, "seconds": round(time.perf_counter() - t0, 1), "start": round(start, 1)},
                       "stages.jsonl")


def wall_seconds(records: list[dict]) -> float:
    """Wall time of stage records: the length of the union of their [start, start + seconds] intervals (jobs
    run in parallel overlap); a record without a start (written before starts were kept) adds its seconds."""
    spans = sorted((r["start"], r["start"] + r["seconds"]) for r in records if "start" in r)
    total, reach = sum(r["seconds"] for r in records if "start" not in r), -float("inf")
    for lo, hi in spans:
        total += max(0.0, hi - max(lo, reach))
        reach = max(reach, hi)
    return total


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


def run_jobs(jobs: dict[str, tuple[str, ...]], out: Path, workers: int) -> None:
    """Every `pavkit` job as its own stage of OUT (one recorded already is skipped), ``workers`` at a time."""
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(_stage, out, f"rl {name}", lambda job=job: _pavkit(*job)) for name, job in jobs.items()]:
            f.result()


def _with_option(job: tuple[str, ...], option: str, value: str) -> tuple[str, ...]:
    """The job with ``option``'s value replaced (every occurrence)."""
    return tuple(value if i and job[i - 1] == option else x for i, x in enumerate(job))


PROBE_ITERS = 4  # iterations of the timing probe; the last one also runs the probe's (2-sample) final evaluation


def budgeted_iters(jobs: dict[str, tuple[str, ...]], out: Path, workers: int, seconds: float, most: int,
                   eval_every: int) -> int:
    """The iterations every RL run can have so that all of them end within ``seconds`` (probe included).

    Runs each job still missing from OUT for PROBE_ITERS iterations at once into OUT/probe/NAME (the same
    contention as the real runs) and reads, from the slowest run's records, the seconds of a training iteration
    t (median of iterations 1 … PROBE_ITERS−1), of a 2-sample evaluation e, and the start-up overhead o (wall
    time not in any record). With w waves of runs (``ceil(missing / workers)``) and the final evaluation's
    cost at most e·(final samples / 2), the budget left after the probe buys
    n = (left / w − o − e·final/2) / (t + e / eval_every) iterations, rounded down to a multiple of
    ``eval_every`` and capped at ``most``. The figures go to OUT/probe.json.
    """
    import math
    import statistics

    from pavkit import runs

    done = {r["stage"] for r in runs.read_records(out, "stages.jsonl")}
    missing = {n: j for n, j in jobs.items() if f"rl {n}" not in done}
    if not missing:
        return most
    t0 = time.perf_counter()
    probe = {n: _with_option(_with_option(_with_option(j, "--iters", str(PROBE_ITERS)), "--final-samples", "2"),
                             "--out", str(out / "probe" / n)) for n, j in missing.items()}
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(_pavkit, *job) for job in probe.values()]:
            f.result()
    wall = time.perf_counter() - t0
    waves = math.ceil(len(missing) / workers)
    per_run = []
    for n in missing:
        records = runs.read_records(out / "probe" / n)
        train = [r["seconds"] for r in records if 0 < r["iteration"] < PROBE_ITERS]
        per_run.append((statistics.median(train), records[0]["seconds"], sum(r["seconds"] for r in records)))
    t, e, recorded = max(per_run)
    overhead = max(wall / waves - recorded, 0.0)
    final = int(_option(next(iter(missing.values())), "--final-samples")) / 2
    left = seconds - wall
    n = (left / waves - overhead - e * final) / (t + e / max(eval_every, 1))
    iters = max(eval_every, min(most, int(n // eval_every) * eval_every))
    figures = {"runs": len(missing), "workers": workers, "probe_seconds": round(wall, 1),
               "iteration_seconds": round(t, 3), "eval_seconds": round(e, 3), "overhead_seconds": round(overhead, 1),
               "budget_seconds": seconds, "iters": iters}
    (out / "probe.json").write_text(json.dumps(figures) + "\n")
    return iters


def onpolicy_qmu(org: Path, role: str, policy: str, out: Path, preset: str, threads: int) -> None:
    """Stages labels-ROLE and qmu-ROLE of OUT: checkpoint ORG/organism/ROLE as the prover μ of POLICY, labelled
    at POLICY's own prefixes with PRESET's label problems and options, and a qmu verifier on those labels with
    PRESET's verifier options on its verifier base (``pipeline.label_stage``, ``pipeline.verifier_stage``)."""
    from pavkit.cli import REPORT
    from pavkit.llm import pipeline

    p = pipeline.PRESETS[preset]
    mu = org / "organism" / role
    _stage(out, f"labels-{role}", lambda: pipeline.label_stage(
        policy, p.label_problems, {**p.label, "prover": f"model:{mu}"}, out / f"labels-{role}", threads=threads,
        report=REPORT))
    _stage(out, f"qmu-{role}", lambda: pipeline.verifier_stage(
        out / f"labels-{role}", org / "organism" / p.verifier_base, "qmu", out / f"qmu-{role}", p.verifier,
        threads=threads, report=REPORT))


def _option(job: tuple[str, ...], option: str) -> str:
    return job[job.index(option) + 1]


def _reads_verifier(options: list[str]) -> bool:
    """Whether `pavkit llm rl` with OPTIONS reads --verifier: α > 0 with a bok:K prover (the default prover);
    model: and const: provers never read it, and a run given one that does not exist is refused."""
    from pavkit.llm.rl import RLConfig
    from pavkit.provers import RL_PROVERS, parse_prover

    if "--verifier" in options or float(_option(options, "--alpha") if "--alpha" in options else RLConfig.alpha) == 0:
        return False
    prover = _option(options, "--prover") if "--prover" in options else RLConfig.prover
    return parse_prover(prover, RL_PROVERS).kind == "bok"


def _arm_spec(text: str) -> tuple[str, list[str], list[str]]:
    """--arm "NAME=SEEDS:OPTIONS" → (NAME, seeds, options); ValueError naming the text otherwise."""
    import shlex

    name, eq, rest = text.partition("=")
    seeds, colon, options = rest.partition(":")
    if not (eq and colon and name.strip() and seeds.strip()):
        raise ValueError(f"--arm {text!r}: expected NAME=SEEDS:OPTIONS, e.g. 'pav-a1=0,1:--alpha 1'")
    return name.strip(), [s.strip() for s in seeds.split(",")], shlex.split(options)


def arm_rows(dirs: dict[str, list[str]], reference: list[str], initial: list[str]) -> list[dict]:
    """One row per PAV arm (name → its run directories): final accuracy over seeds, the gain over the α = 0 runs
    with the same baseline and training settings (every config field but ``PAV_FIELDS``; else ``reference``)
    with its seed × problem interval, sample efficiency, Pass@N at the largest N overall and on the problems SFT
    never solved, and the mean step weight over all iterations."""
    import numpy as np

    from pavkit import runs
    from pavkit.analysis.loaders import load_rl_runs
    from pavkit.analysis.tables import rl_llm_summary

    def setting(d: str) -> str:  # what an arm and its α = 0 reference share: all but the PAV terms
        cfg = {k: v for k, v in runs.read_json(d, "config.json").items() if k not in PAV_FIELDS}
        cfg["baseline"] = "loo" if cfg.get("baseline", "loo") == "loo-effective" else cfg.get("baseline", "loo")
        return json.dumps(cfg, sort_keys=True)

    outcome = {setting(ds[0]): ds for ds in dirs.values()
               if runs.read_json(ds[0], "config.json")["alpha"] == 0}
    rows = []
    for name, ds in dirs.items():
        cfg = runs.read_json(ds[0], "config.json")
        if cfg["alpha"] == 0:
            continue
        ref = outcome.get(setting(ds[0]), reference)
        s = rl_llm_summary(load_rl_runs(initial + ref + ds))
        eff, hard = s["effective_reward"], s.get("unsolved_by_sft", {})
        weights = [r["mean_weight"] for d in ds for r in runs.read_records(d) if "mean_weight" in r]
        rows.append({"arm": name, "alpha": cfg["alpha"], "prover": cfg["prover"], "baseline": cfg["baseline"],
                     "verifier": "—" if not cfg["prover"].startswith("bok:") else Path(cfg["verifier"]).name,
                     "seeds": eff["runs"],
                     "reference": Path(ref[0]).name.rsplit("-s", 1)[0],
                     "final_accuracy": round(eff["final_accuracy"], 4),
                     "final_ci": [round(x, 4) for x in eff["final_ci"]],
                     "reference_accuracy": round(s["outcome_only"]["final_accuracy"], 4),
                     "accuracy_gain": round(s["accuracy_gain"], 4),
                     "accuracy_gain_ci": [round(x, 4) for x in s.get("accuracy_gain_ci", [np.nan, np.nan])],
                     "sample_efficiency": s.get("sample_efficiency"),
                     "sample_efficiency_ci": s.get("sample_efficiency_ci"),
                     "pass_at_n": {"n": eff["pass_at_n"]["n"][-1], "value": round(eff["pass_at_n"]["values"][-1], 3),
                                   "reference": round(s["outcome_only"]["pass_at_n"]["values"][-1], 3)},
                     "unsolved": {"problems": hard.get("hard"),
                                  "value": round(hard["effective_reward"]["mean"][-1], 3) if "effective_reward" in hard
                                  else None,
                                  "reference": round(hard["outcome_only"]["mean"][-1], 3) if "outcome_only" in hard
                                  else None},
                     "mean_step_weight": round(float(np.mean(weights)), 3) if weights else None})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The arm rows as the README's Markdown table."""
    head = ("| arm | α | prover | baseline | verifier | seeds | final accuracy [95 % CI] | vs α = 0 | gain [95 % CI] "
            "| sample eff. [95 % CI] | Pass@N (α = 0) | Pass@N on unsolved (α = 0) | mean step weight |\n"
            + "|---" * 13 + "|\n")
    lines = []
    for r in rows:
        eff = "—" if r["sample_efficiency"] is None else f"{r['sample_efficiency']:.2f}×"
        if r["sample_efficiency"] is not None and r.get("sample_efficiency_ci"):
            eff += " [{:.2f}, {:.2f}]".format(*r["sample_efficiency_ci"])
        unsolved = ("—" if r["unsolved"]["value"] is None else
                    f"{r['unsolved']['value']:.3f} ({r['unsolved']['reference']:.3f})")
        lines.append(f"| {r['arm']} | {r['alpha']:g} | {r['prover']} | {r['baseline']} | {r['verifier']} | "
                     f"{r['seeds']} | {r['final_accuracy']:.3f} [{r['final_ci'][0]:.3f}, {r['final_ci'][1]:.3f}] | "
                     f"{r['reference']} {r['reference_accuracy']:.3f} | {r['accuracy_gain']:+.3f} "
                     f"[{r['accuracy_gain_ci'][0]:+.3f}, {r['accuracy_gain_ci'][1]:+.3f}] | {eff} | "
                     f"{r['pass_at_n']['value']:.3f} ({r['pass_at_n']['reference']:.3f}) | {unsolved} | "
                     f"{r['mean_step_weight']} |")
    return head + "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--organism", default="runs/organism-cpu", help="organism pipeline directory (base, pqv)")
    p.add_argument("--policy", default=None, help="the SFT policy to start from (default ORGANISM/organism/base)")
    p.add_argument("--out", default="runs/bench-rl", help="output directory (runs, figures, summary.json, table.md)")
    p.add_argument("--seeds", default="0,1,2", help="seeds of the headline arms (outcome-only and PAV-RL)")
    p.add_argument("--iters", type=int, default=150, help="RL iterations of every run")
    p.add_argument("--alpha", type=float, default=3.0, help="α of the headline PAV-RL arm")
    p.add_argument("--prover", default="bok:4",
                   help="prover of the headline PAV-RL arm and of the control: a `pavkit llm rl --prover` spec, or "
                        "onpolicy:ROLE (checkpoint ORGANISM/organism/ROLE through a Q^μ model labelled at the RFT "
                        "policy's prefixes, stage 4; it has no exact control, so give --control-seeds '')")
    p.add_argument("--baseline", default="loo", help="baseline of the headline arms (`pavkit llm rl --baseline`)")
    p.add_argument("--verifier", default=None, help="default ORGANISM/pqv; organism-oracle for the exact control")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam peak learning rate of every RL run")
    p.add_argument("--problems-per-iter", type=int, default=16, help="problems per RL iteration")
    p.add_argument("--group", type=int, default=4, help="responses per problem")
    p.add_argument("--eval-problems", default="organism:test:0:100", help="held-out problems of every evaluation")
    p.add_argument("--eval-every", type=int, default=10, help="iterations between evaluations (the curves)")
    p.add_argument("--eval-samples", type=int, default=None,
                   help="samples per held-out problem at each evaluation (default: `pavkit llm rl`'s); more samples "
                        "make the curves, and so the sample-efficiency ratio, less noisy; they draw no training RNG")
    p.add_argument("--final-samples", type=int, default=32, help="samples per problem at the last iteration")
    p.add_argument("--sft-samples", type=int, default=256, help="samples per problem of the SFT reference")
    p.add_argument("--control-verifier", default="organism-oracle",
                   help="verifier of a control arm (α = --control-alpha, same prover) on --control-seeds; '' skips")
    p.add_argument("--control-alpha", type=float, default=1.0, help="α of the control arm")
    p.add_argument("--control-seeds", default="0,1", help="seeds of the control arm")
    p.add_argument("--arm", action="append", default=[], metavar="NAME=SEEDS:OPTIONS",
                   help="an extra arm: OUT/NAME-sS for each seed, the common options plus OPTIONS, which win over "
                        "them (repeatable)")
    p.add_argument("--preset", default="organism", choices=("organism", "organism-gpu"),
                   help="the `pavkit llm pipeline` preset whose label and verifier options onpolicy:ROLE uses")
    p.add_argument("--minutes", type=float, default=None,
                   help="fit the RL runs into this wall time: time PROBE_ITERS iterations of every missing run at "
                        "once (OUT/probe), then set --iters to what the rest of the budget allows (a multiple of "
                        "--eval-every, at most --iters); for leased machines")
    p.add_argument("--workers", type=int, default=2, help="runs at a time")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    a = p.parse_args()
    try:
        extra_arms = [_arm_spec(t) for t in a.arm]
    except ValueError as e:
        p.error(str(e))
    org, out = Path(a.organism), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    verifier = a.verifier or str(org / "pqv")
    common = ["--eval-problems", a.eval_problems, "--threads", str(a.threads)]
    rl_common = [*common, "--iters", str(a.iters), "--lr", str(a.lr), "--eval-every", str(a.eval_every),
                 "--problems-per-iter", str(a.problems_per_iter), "--group", str(a.group),
                 "--final-samples", str(a.final_samples)]
    if a.eval_samples is not None:
        rl_common += ["--eval-samples", str(a.eval_samples)]
    rft_policy = str(out / "rft" / "model")
    sft_policy = a.policy or str(org / "organism" / "base")

    evals = {"sft": ("--policy", sft_policy, "--final-samples", str(a.sft_samples)),
             "rft-eval": ("--policy", rft_policy, "--final-samples", str(a.final_samples))}
    jobs = {name: ("llm", "rl", *opts, "--alpha", "0", "--iters", "0", *common, "--out", str(out / name))
            for name, opts in evals.items()}
    arms: dict[str, tuple[list[str], list[str]]] = {  # name → (seeds, options beyond the common ones)
        "outcome": (a.seeds.split(","), ["--alpha", "0", "--baseline", a.baseline]),
        "pav": (a.seeds.split(","), ["--alpha", str(a.alpha), "--prover", a.prover, "--baseline", a.baseline])}
    if a.control_verifier and a.control_seeds:
        if a.prover.startswith(ONPOLICY):
            p.error(f"--prover {a.prover} has no exact-advantage control: give --control-seeds ''")
        arms["control"] = (a.control_seeds.split(","), ["--alpha", str(a.control_alpha), "--prover", a.prover,
                                                        "--verifier", a.control_verifier, "--baseline", a.baseline])
    for name, seeds, options in extra_arms:
        arms[name] = (seeds, options)
    roles = sorted({o.removeprefix(ONPOLICY) for _, options in arms.values() for o in options
                    if o.startswith(ONPOLICY)})
    arms = {name: (seeds, [f"model:{out / f'qmu-{o.removeprefix(ONPOLICY)}'}" if o.startswith(ONPOLICY) else o
                           for o in options]) for name, (seeds, options) in arms.items()}
    arms = {name: (seeds, options + (["--verifier", verifier] if _reads_verifier(options) else []))
            for name, (seeds, options) in arms.items()}
    run_dirs = {name: [str(out / f"{name}-s{s}") for s in seeds] for name, (seeds, _) in arms.items()}
    for name, (seeds, options) in arms.items():
        for s in seeds:
            jobs[f"{name}-s{s}"] = ("llm", "rl", "--policy", rft_policy, "--seed", s, *rl_common, *options,
                                    "--out", str(out / f"{name}-s{s}"))  # an arm's options win over the common

    for role in roles:
        if not (org / "organism" / role / "config.json").exists():
            p.error(f"onpolicy:{role}: no checkpoint {org / 'organism' / role}")
    _stage(out, "rft", lambda: _pavkit("llm", "rft", "--policy", sft_policy,
                                       "--out", str(out / "rft"), "--threads", str(a.workers * a.threads)))
    for role in roles:
        onpolicy_qmu(org, role, rft_policy, out, a.preset, a.workers * a.threads)
    if a.minutes is not None:
        run_jobs({n: jobs[n] for n in evals}, out, a.workers)  # the evaluations first: not part of the budget
        jobs = {n: j for n, j in jobs.items() if n not in evals}
        iters = budgeted_iters(jobs, out, a.workers, a.minutes * 60, a.iters, a.eval_every)
        jobs = {n: _with_option(j, "--iters", str(iters)) for n, j in jobs.items()}
    run_jobs(jobs, out, a.workers)
    initial = [str(out / d) for d in evals]
    dirs = initial + run_dirs["outcome"] + run_dirs["pav"]
    (out / "figures").mkdir(exist_ok=True)
    for fig in ("fig7", "fig8"):
        _pavkit("plot", fig, *dirs, "--out", str(out / "figures" / f"{fig}.png"))

    from pavkit import runs
    from pavkit.analysis.loaders import load_rl_runs
    from pavkit.analysis.tables import rl_llm_summary

    summary = rl_llm_summary(load_rl_runs(dirs))
    stages = runs.read_records(out, "stages.jsonl")
    seconds = wall_seconds(stages)
    summary["minutes"] = round(seconds / 60, 1)
    rl_dirs = [d for ds in run_dirs.values() for d in ds]
    summary["samples_per_second"] = samples_per_second(rl_dirs)
    rft_seconds = sum(r["seconds"] for r in stages if r["stage"] == "rft")
    summary["core_minutes"] = round((rft_seconds + sum(r.get("seconds", 0.0) for d in initial + rl_dirs
                                                        for r in runs.read_records(d))) / 60, 1)
    if "control" in run_dirs:  # the same comparison with the control arm in PAV-RL's place
        (out / "figures" / "control").mkdir(exist_ok=True)
        cdirs = initial + run_dirs["outcome"] + run_dirs["control"]
        _pavkit("plot", "fig7", *cdirs, "--out", str(out / "figures" / "control" / "fig7.png"))
        c = rl_llm_summary(load_rl_runs(cdirs))
        summary["control"] = {k: c.get(k) for k in ("sample_efficiency", "sample_efficiency_ci", "accuracy_gain",
                                                     "accuracy_gain_ci", "pass_at_n_gain", "reach",
                                                     "effective_reward")}
    summary["arms"] = arm_rows(run_dirs, run_dirs["outcome"], initial)
    from pavkit.analysis.figures import rl_arms_figure, save_figure

    arms_title = "gain over α = 0 (95 % CI over seeds × problems); dotted: +0.03, +0.06"
    save_figure(rl_arms_figure(summary["arms"], marks=(0.03, 0.06), title=arms_title), out / "figures" / "arms.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "table.md").write_text(markdown_table(summary["arms"]))
    gain = summary.get("pass_at_n_gain") or {}
    print(json.dumps({"sample_efficiency": summary.get("sample_efficiency"),
                      "sample_efficiency_ci": summary.get("sample_efficiency_ci"),
                      "sample_efficiency_is_lower_bound": summary.get("reach", {}).get("ratio_is_lower_bound"),
                      "sample_efficiency_by_level": {str(r["fraction"]): r["ratio"]
                                                     for r in summary.get("reach_by_level", [])},
                      "accuracy_gain": summary.get("accuracy_gain"),
                      "accuracy_gain_ci": summary.get("accuracy_gain_ci"),
                      "pass_at_n_gain": gain.get("gain"), "pass_at_n": gain.get("n"),
                      "samples_per_second": summary["samples_per_second"], "minutes": summary["minutes"],
                      "core_minutes": summary["core_minutes"],
                      "final_accuracy": {k: summary[k]["final_accuracy"] for k in ("outcome_only", "effective_reward")
                                         if k in summary},
                      "unsolved_by_sft": {k: v if not isinstance(v, dict) else v["mean"][-1]
                                          for k, v in summary.get("unsolved_by_sft", {}).items()},
                      "control": summary.get("control", {}).get("sample_efficiency"),
                      "control_accuracy_gain": summary.get("control", {}).get("accuracy_gain"),
                      "arms": summary["arms"]}))


if __name__ == "__main__":
    main()
