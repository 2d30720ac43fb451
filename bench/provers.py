"""Does Theorem 3.1's ranking of provers predict which prover makes PAV beam search best? (Fig. 5(b)). One JSON line.

Needs an organism pipeline directory ORG (`pavkit llm pipeline --preset organism --out ORG`). For every prover
of --provers it reads or runs, each resumable:

1. the prover diagnostic, `pavkit llm diagnose-provers` on π = ORG/organism/base (OUT/diagnose): per prover,
   distinguishability E_s Var_π[A^μ] and alignment E_s E_π[A^μ A^π] by rollouts (model:ROLE provers roll out
   the checkpoint ORG/organism/ROLE);
2. PAV beam search with that prover at width --n for every α of --alphas (`drivers.search`, the pipeline's search
   settings; OUT/search-a{α}-{prover}; model:ROLE provers score with the Q^μ model ORG/qmu-ROLE), and the share
   of problems whose chosen response differs from the first prover's.

On organism problems it also counts the children whose steps leave the worked solution (the exact step checker,
``OracleVerifier``, values them 0) and how many of them still have a nonzero rollout estimate, Q̂^π or any
prover's Q̂^μ ("off_track"): a slip is not always fatal (a policy can recover, e.g. by carrying on from the
right running value), so these are recoveries, not errors.

"fit" asks whether each prover's *learned* form (what search and RL score with) agrees with its rollout values at
the same children (``learned_fit``): ORG/qmu-ROLE against model:ROLE's rollouts, and Bo-K from the PQV against
Bo-K of the PQV's own policy ORG/organism/base (π's halves when --policy is that policy, else model:base's).
--policy runs the diagnostic at another π (e.g. the RFT policy RL starts from: which provers are complementary to
it, and are their learned forms fit for it?); --alphas "" skips the searches.

It prints, per prover, both terms, their sum (the bound's first-order improvement, up to the learning rate) and
the search accuracy at each α with its bootstrap 95 % interval, then Spearman's rank correlation between the
bound and each α's accuracy ("spearman"), and "distinct_responses" (how many problems' chosen responses differ
from the first prover's: 0 means the search cannot tell the provers apart).

Usage: python bench/provers.py --organism runs/organism-cpu [--out runs/bench-provers] [--alphas 0.5,3]
       python bench/provers.py --organism ORG --policy RFT --alphas "" --provers bok:1,bok:4,model:base,model:weak
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
    """Children off the worked solution's track (the checker's value 0) and how many of them have a nonzero
    rollout estimate, Q̂^π or any prover's Q̂^μ (recoveries from the slip); None for other than organism problems."""
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


def learned_fit(records: list[dict], problems: str, policy: str, org: Path, provers: list[str],
                rollouts: int, qmu: dict[str, list[str]], pqvs: list[str]) -> list[dict]:
    """Each learned prover of ``provers`` against its rollout values at the diagnostic's children
    (``diagnose.fit_to_rollouts``): ORG/qmu-ROLE and the Q^μ models ``qmu[ROLE]`` against model:ROLE's rollouts;
    Bo-K from each PQV of ``pqvs`` (each trained on labels of ORG/organism/base) against Bo-K of
    the PQV's own policy ORG/organism/base, from π's halves when ``policy`` is that policy, else from model:base's
    (when it is among the provers). A child's learned Q̂^μ is the learned value of its full prefix. Each row also
    has Theorem 3.1's terms at π of the prover the learned form stands for (from its rollout halves, as
    diagnose-provers: for "bok:K of model:base" the diagnostic itself has no row)."""
    import numpy as np
    from transformers import AutoTokenizer

    from pavkit import drivers
    from pavkit.estimators import pass_at_k, sampled_complementarity
    from pavkit.llm.diagnose import fit_to_rollouts
    from pavkit.llm.label import build_prompt
    from pavkit.llm.organism import OracleVerifier
    from pavkit.llm.rl import prover_values

    base = org / "organism" / "base"
    rollout_specs = {_prover_for(s, org, "rollouts") for s in provers}
    pairs = []  # (learned prover, its PQV or "", the records' rollout key, K of Bo-K over its halves or None)
    for spec in provers:
        if spec.startswith("model:"):
            role = spec.split(":", 1)[1]
            models = ([str(org / f"qmu-{role}")] if (org / f"qmu-{role}").exists() else []) + qmu.get(role, [])
            pairs += [(f"model:{m}", "", _prover_for(spec, org, "rollouts"), None) for m in models]
        elif spec.startswith("bok:"):
            k = int(spec.split(":")[1])
            if Path(policy).resolve() == base.resolve():
                pairs += [(spec, pqv, "pi", k) for pqv in pqvs]
            elif f"model:{base}" in rollout_specs:
                pairs += [(spec, pqv, f"model:{base}", k) for pqv in pqvs]
    if not pairs:
        return []
    by_id = {p.id: p for p in drivers.problems_from_spec(problems)[0]}
    tok = AutoTokenizer.from_pretrained(policy, local_files_only=True)
    prompts, steps, states = [], [], []
    for r in records:
        prompt = build_prompt(by_id[r["problem_id"]].problem, tok)
        for c in r["children"]:
            prompts.append(prompt)
            steps.append(r["state"] + ([c] if c.strip() else []))
            states.append(r["index"])
    off = None
    if problems.startswith("organism:"):
        oracle = OracleVerifier()
        texts = [by_id[r["problem_id"]].problem + oracle.delimiter for r in records for _ in r["children"]]
        off = np.array([v[-1] == 0 for v in oracle.prefix_values(texts, steps)], dtype=float)
    def recorded(r: dict, key: str) -> list:  # the CLI records model: provers by their resolved path
        if key == "pi":
            return r["q_pi"]
        return r["provers"].get(key, r["provers"].get(f"model:{Path(key[6:]).resolve()}"))["q_mu"]

    rows = []
    for learned_spec, verifier, key, k in pairs:
        learned = np.array([v[-1] for v in prover_values(verifier, learned_spec)(prompts, steps)])
        halves = [np.array([q for r in records for q in recorded(r, key)[h]]) for h in (0, 1)]
        if k is not None:  # Bo-K of that policy from each half's success count (a finished child's 0/1 stays)
            halves = [pass_at_k(rollouts // 2, np.rint(q * (rollouts // 2)), k) for q in halves]
        fit = fit_to_rollouts(learned, *halves, np.array(states), off)
        shape = (len(records), -1)  # (S, C): every state has C children
        q_pi = [np.array([r["q_pi"][h] for r in records]) for h in (0, 1)]
        dist, align = sampled_complementarity(*(q.reshape(shape) for q in halves), *q_pi)
        fit.update(distinguishability=float(dist.mean()), alignment=float(align.mean()))
        rows.append({"learned": learned_spec if k is None else f"{learned_spec} of {verifier}",
                     "rollouts": key if k is None else f"bok:{k} of {key}",
                     **{n: round(v, 4) if isinstance(v, float) else v for n, v in fit.items()}})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--organism", default="runs/organism-cpu", help="organism pipeline directory")
    p.add_argument("--out", default="runs/bench-provers", help="output directory (diagnose/, search-*/)")
    p.add_argument("--provers", default="bok:1,bok:2,bok:4,bok:8,bok:16,model:weak,model:strong",
                   help="provers: bok:K, or model:ROLE for the checkpoint ORG/organism/ROLE (Q^μ model ORG/qmu-ROLE)")
    p.add_argument("--policy", default=None,
                   help="π of the diagnostic (default ORG/organism/base, the π of search; e.g. RL's RFT policy)")
    p.add_argument("--problems", default="organism:test:0:60", help="problems of the diagnostic and the searches")
    p.add_argument("--rollouts", type=int, default=32, help="diagnose-provers --rollouts")
    p.add_argument("--alphas", default="0.5,3", help='α of the PAV beam searches ("": no searches)')
    p.add_argument("--n", type=int, default=4, help="beam width")
    p.add_argument("--qmu", action="append", default=[], metavar="ROLE=DIR",
                   help="another Q^μ model of the checkpoint ROLE for the fit (beside ORG/qmu-ROLE); repeatable")
    p.add_argument("--pqv", action="append", default=[], metavar="DIR",
                   help="PQV(s) whose Bo-K the fit checks (default ORG/pqv; the searches use the first); repeatable")
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
    policy = a.policy or str(org / "organism" / "base")
    alphas = [x for x in a.alphas.split(",") if x]
    pqvs = a.pqv or [str(org / "pqv")]
    qmu: dict[str, list[str]] = {}
    for item in a.qmu:
        role, _, folder = item.partition("=")
        if not folder:
            p.error(f"--qmu {item}: give ROLE=DIR")
        qmu.setdefault(role, []).append(folder)
    diag = out / "diagnose"
    rollout_provers = ",".join(_prover_for(s, org, "rollouts") for s in provers)
    subprocess.run([sys.executable, "-m", "pavkit", "llm", "diagnose-provers", "--policy", policy,
                    "--problems", a.problems, "--rollouts", str(a.rollouts),
                    "--out", str(diag), "--threads", str(a.threads), "--provers", rollout_provers],
                   check=True, stdout=subprocess.DEVNULL)
    terms = json.loads((diag / "metrics.json").read_text())["provers"]
    records = read_records(diag, "states.jsonl")
    off_track = off_track_check(records, a.problems)
    settings = {k: v for k, v in PRESETS["organism"].search.items() if k != "prover"}
    rows = []
    for spec, t in zip(provers, terms, strict=True):
        row = {"prover": spec, "distinguishability": t["distinguishability"], "alignment": t["alignment"],
               "distinguishability_se": t["distinguishability_se"], "alignment_se": t["alignment_se"],
               "bound": t["distinguishability"] + t["alignment"], "accuracy": {}, "responses": {}}
        for alpha in alphas:
            folder = out / f"search-a{alpha}-{spec.replace(':', '')}"
            cfg, probs = drivers.search_config(policy, str(org / "orm"), pqvs[0],
                                               a.problems, methods=("beam-pav",), ns=(a.n,),
                                               prover=_prover_for(spec, org, "search"),
                                               **{**settings, "alpha": float(alpha)})
            drivers.search(cfg, probs, folder, threads=a.threads)
            found = sorted(read_records(folder, "search.jsonl"), key=lambda r: r["problem_index"])
            correct = np.array([float(r["correct"]) for r in found])
            ci = bootstrap_ci(correct)
            row["accuracy"][alpha] = {"mean": float(ci.mean), "ci": [float(ci.low), float(ci.high)]}
            row["responses"][alpha] = [r["response"] for r in found]
        rows.append(row)
    fit = learned_fit(records, a.problems, policy, org, provers, a.rollouts, qmu, pqvs)
    line = {"policy": policy, "off_track": off_track, "provers": [], "spearman": {}, "distinct_responses": {},
            "problems": a.problems, "n": a.n, "fit": fit}
    for alpha in alphas:
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
