"""transformers against vLLM, in one process on the same model: generation and verifier scoring. One JSON line.

Runs in an environment with vllm (`.venv-vllm`, built by ci/test-vllm.sh) on SmolLM2-135M-Instruct (a folder:
`pavkit llm pipeline --preset smollm2` makes one, or `pavkit.llm.pipeline.gguf_to_folder`):

- labelling-shaped generation: --prefixes GSM8K prompts × --n continuations to EOS (`complete`), ≤ --tokens
  new tokens each: HFEngine against VLLMEngine (float32 and bfloat16), generated tokens per second;
- search-shaped generation: the same prompts × 3 next steps (`extend`, stop at the delimiter);
- verifier scoring: V̂ of every prefix of --trajectories GSM8K reference solutions by a token-classification
  verifier on the same LM (an untrained head: speed only), Verifier (transformers, batches of 32) against
  VLLMVerifier (vLLM's pooling runner, float32), prefixes (Σ H+1) per second, and the largest difference of
  the two verifiers' values.

Each measurement runs once after one warm-up call on other prompts. Tokens per second count generated tokens
only (prompt processing is part of the cost). Threads: torch's --threads for transformers; vLLM's CPU backend
binds its own threads.

Usage: .venv-vllm/bin/python bench/engines.py --model runs/smollm2 [--prefixes 6 --n 8 --tokens 48]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def _rate(fn, count) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return count(out) / (time.perf_counter() - t0), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="runs/smollm2", help="SmolLM2 (or any causal LM) folder")
    p.add_argument("--prefixes", type=int, default=6, help="GSM8K prompts of the generation workloads")
    p.add_argument("--n", type=int, default=8, help="continuations per prompt (labelling-shaped)")
    p.add_argument("--tokens", type=int, default=48, help="new-token cap of a continuation")
    p.add_argument("--trajectories", type=int, default=64, help="reference solutions scored by the verifiers")
    p.add_argument("--threads", type=int, default=2, help="torch threads of the transformers side")
    a = p.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    import numpy as np
    import torch

    from pavkit.llm.data import gsm8k_problems
    from pavkit.llm.engines import HFEngine, VLLMEngine
    from pavkit.llm.label import build_prompt
    from pavkit.llm.verifier import Verifier, VLLMVerifier, init_verifier, save_verifier

    torch.set_num_threads(a.threads)
    problems = gsm8k_problems()
    opts = {"max_step_tokens": a.tokens, "max_new_tokens": a.tokens, "temperature": 1.0}
    line: dict = {"model": os.path.basename(os.path.abspath(a.model)), "prefixes": a.prefixes, "n": a.n,
                  "max_new_tokens": a.tokens, "trajectories": a.trajectories, "torch_threads": a.threads}
    engines = {"hf": lambda: HFEngine.from_path(a.model, batch_size=64, **opts),
               "vllm": lambda: VLLMEngine.from_path(a.model, dtype="float32", max_model_len=1024,
                                                    enforce_eager=True, **opts),
               "vllm_bf16": lambda: VLLMEngine.from_path(a.model, dtype="bfloat16", max_model_len=1024,
                                                         enforce_eager=True, **opts)}
    generated = lambda rows: sum(c.num_tokens for row in rows for c in row)  # noqa: E731
    from transformers import AutoTokenizer

    prompts = [build_prompt(q.problem, AutoTokenizer.from_pretrained(a.model)) for q in problems]
    for name, make in engines.items():
        engine = make()
        engine.complete(prompts[-2:], 2, seed=1)  # warm-up
        line[f"{name}_tokens_per_second"] = round(_rate(
            lambda e=engine: e.complete(prompts[:a.prefixes], a.n, seed=0), generated)[0], 1)
        line[f"{name}_search_tokens_per_second"] = round(_rate(
            lambda e=engine: e.extend(prompts[:a.prefixes * 4], 3, seed=0), generated)[0], 1)
        del engine
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = init_verifier(a.model, device="cpu")
        save_verifier(model, tokenizer, tmp, {"kind": "pqv", "config": {"delimiter": "\n"}})
        del model
        chosen = problems[:a.trajectories]
        prompts = [build_prompt(q.problem, tokenizer) for q in chosen]
        steps = [list(q.solution) for q in chosen]
        prefixes = lambda values: sum(len(v) for v in values)  # noqa: E731
        values = {}
        for name, make in {"hf": lambda: Verifier.from_path(tmp, device="cpu"),
                           "vllm": lambda: VLLMVerifier.from_path(tmp, max_model_len=1024, enforce_eager=True)
                           }.items():
            verifier = make()
            verifier.prefix_values(prompts[-2:], steps[-2:])  # warm-up
            rate, values[name] = _rate(lambda v=verifier: v.prefix_values(prompts, steps), prefixes)
            line[f"{name}_verifier_prefixes_per_second"] = round(rate, 1)
            del verifier
        line["verifier_max_difference"] = float(max(np.abs(x - y).max()
                                                    for x, y in zip(values["hf"], values["vllm"], strict=True)))
    for key in ("tokens_per_second", "search_tokens_per_second", "verifier_prefixes_per_second"):
        line[f"vllm_over_hf_{key}"] = round(line[f"vllm_{key}"] / line[f"hf_{key}"], 2)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
