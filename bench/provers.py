"""Does Theorem 3.1's ranking of provers predict which prover makes PAV beam search best? (Fig. 5(b)). One JSON line.

Needs an organism pipeline directory ORG (`pavkit llm pipeline --preset organism --out ORG`). For every prover
of --provers it reads or runs, each resumable:

1. the prover diagnostic, `pavkit llm diagnose-provers` on π = ORG/organism/base (OUT/diagnose): per prover,
   distinguishability E_s Var_π[A^μ] and alignment E_s E_π[A^μ A^π] by rollouts (model:ROLE provers roll out
   the checkpoint ORG/organism/ROLE);
2. PAV beam search with that prover at width --n for every α of --alphas (`drivers.search`, the pipeline's search
   settings; OUT/search-a{α}-{prover}; model:ROLE provers score with the Q^μ model ORG/qmu-ROLE), and the share
   of problems whose chosen response differs from the first prover's.

On organism problems it also checks the rollout estimates against exact values: a child whose steps leave the
worked solution (the exact step checker, ``OracleVerifier``) cannot succeed, so every estimate of it, Q̂^π and
each prover's Q̂^μ, must be 0 ("off_track": children, and how many have a nonzero estimate).

It prints, per prover, both terms, their sum (the bound's first-order improvement, up to the learning rate) and
the search accuracy at each α with its bootstrap 95 % interval, then Spearman's rank correlation between the
bound and each α's accuracy ("spearman"), and "distinct_responses" (how many problems' chosen responses differ
from the first prover's: 0 means the search cannot tell the provers apart).

Usage: python bench/provers.py --organism runs/organism-cpu [--out runs/bench-provers] [--alphas 0.5,3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def _prover_for(spec: str, org: Path, use: str) -> str:
    """``model:ROLE`` → the checkpoint (``use="rollouts"``) or its Q^μ model (``use="search"``); others as they are."""
    if not spec.startswith("model:"):
        return spec
    role = spec.split(":", 1)[1]
    return f"model:{org / 'organism' / role}" if use == "rollouts" else f"model:{org / f'qmu-{role}'}"


def off_track_check(records: list[dict], problems: str) -> dict | None:
    """Children off the worked solution's track (exact value 0 under every policy) and how many of them have a
    nonzero rollout estimate, Q̂^π or any prover's Q̂^μ (should be none); None for other than organism problems."""
    import numpy as np

    from pavkit import drivers
    from pavkit.llm.organism import OracleVerifier

    if not problems.startswith("organism:"):
        return None
    by_id = {p.id: p for p in drivers.problems_from_spec(problems)[0]}
    oracle, children, nonzero = OracleVerifier(), 0, 0
    for r in records:
        problem = by_id[r["problem_id"]]
        steps = [r["state"] + ([c] if c.strip() else []) for c in r["children"]]
        exact = [v[-1] for v in oracle.prefix_values([problem.problem + oracle.delimiter] * len(steps), steps)]
        estimates = np.array(r["q_pi"] + [q for mu in r["provers"].values() for q in mu["q_mu"]])  # (·, C)
        for i, value in enumerate(exact):
            if value == 0:
                children += 1
                nonzero += bool(estimates[:, i].any())
    return {"children": children, "nonzero_estimates": nonzero}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--organism", default="runs/organism-cpu", help="organism pipeline directory")
    p.add_argument("--out", default="runs/bench-provers", help="output directory (diagnose/, search-*/)")
    p.add_argument("--provers", default="bok:1,bok:2,bok:4,bok:8,bok:16,model:weak,model:strong",
                   help="provers: bok:K, or model:ROLE for the checkpoint ORG/organism/ROLE (Q^μ model ORG/qmu-ROLE)")
    p.add_argument("--problems", default="organism:test:0:60", help="problems of the diagnostic and the searches")
    p.add_argument("--rollouts", type=int, default=32, help="diagnose-provers --rollouts")
    p.add_argument("--alphas", default="0.5,3", help="α of the PAV beam searches")
    p.add_argument("--n", type=int, default=4, help="beam width")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    a = p.parse_args()

    import numpy as np
    from scipy.stats import spearmanr

    from pavkit import drivers
    from pavkit.analysis.metrics import bootstrap_ci
    from pavkit.llm.pipeline import PRESETS
    from pavkit.runs import read_records

    org, out = Path(a.organism), Path(a.out)
    provers = a.provers.split(",")
    diag = out / "diagnose"
    rollout_provers = ",".join(_prover_for(s, org, "rollouts") for s in provers)
    subprocess.run([sys.executable, "-m", "pavkit", "llm", "diagnose-provers", "--policy",
                    str(org / "organism" / "base"), "--problems", a.problems, "--rollouts", str(a.rollouts),
                    "--out", str(diag), "--threads", str(a.threads), "--provers", rollout_provers],
                   check=True, stdout=subprocess.DEVNULL)
    terms = json.loads((diag / "metrics.json").read_text())["provers"]
    off_track = off_track_check(read_records(diag, "states.jsonl"), a.problems)
    settings = {k: v for k, v in PRESETS["organism"].search.items() if k != "prover"}
    rows = []
    for spec, t in zip(provers, terms, strict=True):
        row = {"prover": spec, "distinguishability": t["distinguishability"], "alignment": t["alignment"],
               "distinguishability_se": t["distinguishability_se"], "alignment_se": t["alignment_se"],
               "bound": t["distinguishability"] + t["alignment"], "accuracy": {}, "responses": {}}
        for alpha in a.alphas.split(","):
            folder = out / f"search-a{alpha}-{spec.replace(':', '')}"
            cfg, probs = drivers.search_config(str(org / "organism" / "base"), str(org / "orm"), str(org / "pqv"),
                                               a.problems, methods=("beam-pav",), ns=(a.n,),
                                               prover=_prover_for(spec, org, "search"),
                                               **{**settings, "alpha": float(alpha)})
            drivers.search(cfg, probs, folder, threads=a.threads)
            records = sorted(read_records(folder, "search.jsonl"), key=lambda r: r["problem_index"])
            correct = np.array([float(r["correct"]) for r in records])
            ci = bootstrap_ci(correct)
            row["accuracy"][alpha] = {"mean": float(ci.mean), "ci": [float(ci.low), float(ci.high)]}
            row["responses"][alpha] = [r["response"] for r in records]
        rows.append(row)
    line = {"off_track": off_track, "provers": [], "spearman": {}, "distinct_responses": {}, "problems": a.problems,
            "n": a.n}
    for alpha in a.alphas.split(","):
        acc = [r["accuracy"][alpha]["mean"] for r in rows]
        rho = spearmanr([r["bound"] for r in rows], acc).statistic if len(set(acc)) > 1 else None
        line["spearman"][alpha] = None if rho is None or np.isnan(rho) else round(float(rho), 3)
        first = rows[0]["responses"][alpha]
        line["distinct_responses"][alpha] = {r["prover"]: sum(x != y for x, y in zip(r["responses"][alpha], first,
                                                                                      strict=True)) for r in rows[1:]}
    for r in rows:
        r.pop("responses")
        line["provers"].append({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()})
    (out / "summary.json").write_text(json.dumps(line, indent=1) + "\n")
    print(json.dumps(line))


if __name__ == "__main__":
    main()
