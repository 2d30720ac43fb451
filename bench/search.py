"""Test-time search on the model organism (paper §4, Fig. 4): PAV beam search vs ORM best-of-N. One JSON line.

Runs (or resumes) the whole pipeline `pavkit llm pipeline --preset organism --out OUT`: train the organism,
Monte Carlo labels, ORM and PQV verifiers, search, figures. Then prints

    {"compute_ratio": ..., "accuracy_gain": ..., "n": ..., "minutes": ...}

compute_ratio = compute (generated + verifier tokens) ORM best-of-N needs at its largest N ÷ compute PAV beam
search needs to reach the same accuracy (a lower bound, marked, when ORM best-of-N never gets there);
accuracy_gain = PAV-beam − ORM-best-of-N accuracy at the largest N both ran; minutes = wall time of the
pipeline's stages (summed over resumed sessions). Usage: python bench/search.py [--out runs/bench-search]
[--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/bench-search")
    parser.add_argument("--preset", default="organism")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pavkit", "llm", "pipeline", "--preset", args.preset, "--out", args.out,
           "--threads", str(args.threads)]
    subprocess.run(cmd, check=True)
    summary = json.loads((Path(args.out) / "summary.json").read_text())
    print(json.dumps({"compute_ratio": summary["compute_ratio"], "compute_ratio_is_lower_bound":
                      summary["compute_ratio_is_lower_bound"], "accuracy_gain": summary["accuracy_gain"],
                      "n": summary["n"], "minutes": round(summary["seconds"] / 60, 1),
                      "minutes_this_call": round((time.perf_counter() - t0) / 60, 1),
                      "accuracy": summary["accuracy_at_n"]}))


if __name__ == "__main__":
    main()
