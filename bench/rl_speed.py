"""Speed of the LLM RL loop: the same `pavkit llm rl` command on this tree and on an earlier commit. One JSON line.

Extracts ``pavkit/`` of ``--before`` (a git revision of this repository) into a temporary folder and runs the
same command with each source tree on PYTHONPATH, alternating over ``--repeats`` (each into a fresh run
directory; the best rate of each kept), so a machine shared with other jobs still gives a comparable ratio.
The command is PAV-RL on the organism (``--policy``, ``--verifier``, Bo4, α = 3, one torch thread) with no
evaluation but the initial and the final one, which are not timed: samples/s = iterations × problems × group
÷ the seconds of the iterations without an evaluation. Prints

    {"samples_per_second": ..., "samples_per_second_before": ..., "ratio": ..., "seconds_per_iteration": ...}

Usage: python bench/rl_speed.py --policy ORG/organism/weak --verifier ORG/pqv [--before REV] [--iters 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _extract(rev: str, folder: Path) -> None:
    """``pavkit/`` of git revision ``rev`` into ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "pavkit"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)


def _rate(src: Path, args: list[str], out: Path) -> tuple[float, float]:
    """(training samples/s, seconds per iteration) of one run of ``pavkit llm rl`` from the source tree ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "pavkit", "llm", "rl", *args, "--out", str(out)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg = json.loads((out / "config.json").read_text())
    records = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    timed = [r["seconds"] for r in records if r["iteration"] >= 1 and "accuracy" not in r]
    seconds = sum(timed) / len(timed)
    return cfg["problems_per_iter"] * cfg["group"] / seconds, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True)
    p.add_argument("--verifier", required=True)
    p.add_argument("--before", default="0eae45d", help="git revision to compare with (default: before the speed-up)")
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    args = ["--policy", a.policy, "--verifier", a.verifier, "--prover", "bok:4", "--alpha", "3", "--iters",
            str(a.iters), "--eval-every", "0", "--final-samples", "2", "--threads", "1"]
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        _extract(a.before, before)
        for r in range(a.repeats):
            for name, src in (("before", before), ("after", ROOT)):
                rate = _rate(src, args, Path(tmp) / f"{name}-{r}")
                best[name] = max(best.get(name, rate), rate)
    print(json.dumps({"samples_per_second": round(best["after"][0], 2),
                      "samples_per_second_before": round(best["before"][0], 2),
                      "ratio": round(best["after"][0] / best["before"][0], 2),
                      "seconds_per_iteration": round(best["after"][1], 3),
                      "seconds_per_iteration_before": round(best["before"][1], 3),
                      "before": a.before, "iters": a.iters, "repeats": a.repeats, "torch_threads": 1}))


if __name__ == "__main__":
    main()
