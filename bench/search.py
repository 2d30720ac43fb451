"""Test-time search on the model organism (paper §4, Figs. 4–6, 10): learned verifiers that rank, PAV beam search
vs ORM best-of-N. One JSON line.

Runs (or resumes) the whole pipeline `pavkit llm pipeline --preset organism --out OUT`: train the organism,
Monte Carlo labels, ORM and PQV verifiers (lm-features on the `strong` checkpoint), search (pool, beams, the
Best-of-K sweep, the weak/strong Q^μ grid), figures. Then prints, from OUT/summary.json:

    within_auc_orm, within_auc_pqv, within_auc_likelihood   mean over the held-out test problems (with both
                              outcomes among their pool responses) of the AUC of the ORM / PQV / π's mean
                              log-prob between a problem's correct and wrong responses; *_se their standard errors
    train_eval_within_auc     the same on train-verifier's held-out label problems
    orm_accuracy_grows_with_n ORM best-of-M (M = pool) above best-of-1, paired bootstrap 95 % CI above 0
    compute_ratio             ORM best-of-N compute at its largest N ÷ compute PAV beam search needs to reach its
                              accuracy (compute = policy + verifier tokens); compute_ratio_is_lower_bound
    compute_ratio_by_n        per ORM best-of-N, each N: its compute ÷ the compute PAV beam search needs to reach
                              its accuracy (null where PAV beam never gets there)
    accuracy_gain             PAV beam − ORM best-of-N accuracy at the largest compute both cover
    accuracy_gain_at_n        the same at the largest N both ran
    pav_vs_q_beam_ratio       beam-q's compute at its largest N ÷ compute PAV beam needs to reach its accuracy
    bok_sweep                 PAV beam accuracy at the sweep's N per Best-of-K prover K (mean, 95 % CI)
    bon_likelihood_accuracy   best-of-M by π's likelihood (no training)
    accuracy_ci               every method's accuracy at every N with bootstrap 95 % CIs over problems
    minutes                   wall time of the pipeline's stages (summed over resumed sessions)

Usage: python bench/search.py [--out runs/bench-search] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

KEYS = ("within_auc_orm", "within_auc_pqv", "within_auc_likelihood", "train_eval_within_auc",
        "orm_accuracy_grows_with_n", "compute_ratio", "compute_ratio_is_lower_bound", "compute_ratio_by_n",
        "accuracy_gain",
        "accuracy_gain_at_n", "n", "orm_n", "pav_vs_q_beam_ratio", "pav_vs_q_beam_ratio_is_lower_bound",
        "bon_likelihood_accuracy", "bok_sweep", "orm_growth", "problems")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench-search", help="pipeline directory (resumed if it exists)")
    parser.add_argument("--preset", default="organism", help="pavkit llm pipeline --preset")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of every stage")
    args = parser.parse_args()
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pavkit", "llm", "pipeline", "--preset", args.preset, "--out", args.out,
           "--threads", str(args.threads)]
    subprocess.run(cmd, check=True)
    summary = json.loads((Path(args.out) / "summary.json").read_text())
    ranking = summary["ranking"]
    line = {k: summary[k] for k in KEYS}
    line.update({f"{name}_se": ranking.get(key, {}).get("within_auc_se")
                 for name, key in (("within_auc_orm", "orm"), ("within_auc_pqv", "pqv"),
                                   ("within_auc_likelihood", "logprob_mean"))})
    line.update(pooled_auc={k: v["pooled_auc"] for k, v in ranking.items()},
                accuracy_ci=summary["accuracy_ci"], minutes=round(summary["seconds"] / 60, 1),
                minutes_this_call=round((time.perf_counter() - t0) / 60, 1))
    print(json.dumps(line))


if __name__ == "__main__":
    main()
