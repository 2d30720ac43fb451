"""Data-parallel verifier training: `torchrun --nproc-per-node P` (one thread each) against one process with P
threads, the same command, the same global batch. One JSON line.

Trains the same verifier (`pavkit llm train-verifier LABELS --base BASE --arch ARCH ...`) twice into OUT/one and
OUT/ddp (removed first), and prints the wall time of each command, their ratio, the seconds of the training
steps alone (the records' "seconds"), and the largest difference between the two loss curves (what the data
parallel run changes: float rounding only, when the model has no dropout; the token classifier's classifier
dropout is 0.1 unless the base's config sets it, and then each process draws its own masks).

Usage: python bench/ddp.py --labels runs/organism-cpu/labels --base runs/organism-cpu/organism/strong
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", default="runs/organism-cpu/labels", help="labels run directory or .jsonl")
    p.add_argument("--base", default="runs/organism-cpu/organism/strong", help="the verifier's LM folder")
    p.add_argument("--arch", default="token-classification", help="train-verifier --arch")
    p.add_argument("--iters", type=int, default=100, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=32, help="global batch (rows)")
    p.add_argument("--processes", type=int, default=2, help="torchrun processes (and threads of the other run)")
    p.add_argument("--out", default="runs/bench-ddp", help="output directory")
    a = p.parse_args()
    out = Path(a.out)
    common = ["-m", "pavkit", "llm", "train-verifier", a.labels, "--base", a.base, "--kind", "pqv", "--arch", a.arch,
              "--iters", str(a.iters), "--batch-size", str(a.batch_size), "--eval-every", str(a.iters)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {"one": [sys.executable, *common, "--threads", str(a.processes), "--out", str(out / "one")],
            "ddp": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                    f"--nproc-per-node={a.processes}", *common, "--threads", "1", "--out", str(out / "ddp")]}
    line: dict = {"arch": a.arch, "iters": a.iters, "batch_size": a.batch_size, "processes": a.processes}
    losses = {}
    for name, cmd in runs.items():
        shutil.rmtree(out / name, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        line[f"{name}_seconds"] = round(time.perf_counter() - t0, 1)
        records = [json.loads(x) for x in (out / name / "train.jsonl").read_text().splitlines()]
        steps = [r for r in records if "loss" in r]
        line[f"{name}_step_seconds"] = steps[-1]["seconds"]
        losses[name] = [r["loss"] for r in steps]
    line["speedup"] = round(line["one_seconds"] / line["ddp_seconds"], 2)
    line["step_speedup"] = round(line["one_step_seconds"] / line["ddp_step_seconds"], 2)
    line["max_loss_difference"] = max(abs(x - y) for x, y in zip(losses["one"], losses["ddp"], strict=True))
    print(json.dumps(line))


if __name__ == "__main__":
    main()
