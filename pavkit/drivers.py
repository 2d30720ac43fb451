"""Run drivers: one function per computing command, from a config to a finished run directory.

Each driver opens the run directory (or reopens it to resume), restores or initialises the state, drops the
records a checkpoint does not cover, runs the loop through :func:`pavkit.runs.run_loop` (records, progress,
checkpoints), and writes ``metrics.json``. They are what the CLI, the §4 pipeline and the demo call; a person's
messages go through a :class:`pavkit.runs.Reporter` (``runs.QUIET`` says nothing), and bad input raises
:class:`pavkit.runs.UserInputError`. Resume is the same for all of them, and tested once, on ``run_loop``.

    toy_rl           pavkit toy rl (and every run of toy sweep / demo, through run_toy_rl_jobs)
    organism         pavkit llm organism
    train_verifier   pavkit llm train-verifier
    rft, llm_rl      pavkit llm rft, pavkit llm rl
    labels, search   pavkit llm label, pavkit llm search (append-only records keyed by what they cover)

and the config builders (``label_config``, ``search_config``, ``organism_config``, ``problems_from_spec``,
``check_model``, ``decode_delimiter``) that turn what a person types into those configs.

Heavy imports (torch, transformers) happen inside the drivers, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pavkit import runs
from pavkit.runs import QUIET, Reporter, UserInputError


def _engine(cfg, path: str, **kw):
    """The engine ``cfg.engine`` over the model at ``path`` with ``cfg``'s sampling settings (and its vLLM options
    on vLLM); a UserInputError naming --engine for settings the engine refuses."""
    from pavkit.llm.engines import engine_from_path

    vllm = cfg.vllm_options if cfg.engine == "vllm" else {}
    try:
        return engine_from_path(cfg.engine, path, **cfg.engine_options(), **vllm, **kw)
    except ValueError as e:  # e.g. vllm_llm_kwargs: a step budget below the context length
        raise UserInputError(f"--engine {cfg.engine}: {e}") from None


def open_run(out, config: dict, seed: int | None, report: Reporter = QUIET, ignore=(),
             defaults: dict | None = None) -> dict | None:
    """:func:`pavkit.runs.open_run`, and the run's checkpoint when it resumes one (else None); a resumed run says
    so ("resuming OUT from iteration N", or "resuming OUT" for a run without a checkpoint: labels, search)."""
    resumed = runs.open_run(out, config, seed=seed, ignore=ignore, defaults=defaults)
    ckpt = runs.load_checkpoint(out) if resumed else None
    if resumed:
        at = ckpt.get("iteration", ckpt.get("iter")) if ckpt else None
        report.note(f"resuming {out}" + (f" from iteration {at}" if at is not None else ""))
    return ckpt


def open_run_shared(out, config: dict, seed: int | None, report: Reporter, process, **kw) -> dict | None:
    """:func:`open_run` by rank 0 alone under torchrun (``pavkit.distributed``); every process gets the checkpoint
    (the others read it once rank 0 has checked the run), and a refusal stops every process, not only rank 0."""
    from pavkit import distributed

    ckpt, error = None, None
    if process.main:
        try:
            ckpt = open_run(out, config, seed, report, **kw)
        except UserInputError as e:
            error = e
    if not distributed.agree(error is None, process):
        raise error or UserInputError(f"{out}: rank 0 refused the run (see its message)")
    if not process.main and (Path(out) / "checkpoint.pt").exists():
        ckpt = runs.load_checkpoint(out)
    return ckpt


def _torch_setup(threads: int | None) -> None:
    """Set torch's CPU threads and quiet transformers' own progress bars (one bar per command: ours)."""
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------------------
# The didactic RL (paper §3.3).


def toy_rl(cfg, out, report: Reporter = QUIET, threads: int | None = None) -> dict:
    """Run (or resume) one didactic RL run (``pavkit.toy.rl.RLConfig``) in OUT; its metrics. Safe to kill."""
    import torch

    from pavkit.toy.config import ADDED_FIELDS
    from pavkit.toy.rl import checkpoint, init_state, restore, run_metrics, train

    if threads:
        torch.set_num_threads(threads)
    ckpt = open_run(out, cfg.to_dict(), cfg.seed, report, defaults=ADDED_FIELDS)
    state = restore(cfg, ckpt) if ckpt else init_state(cfg)
    runs.drop_records_after(out, ckpt, state.iteration)
    bar = report.bar(f"toy rl {cfg.prover} α={cfg.alpha:g} seed {cfg.seed}", cfg.iters, state.iteration,
                     counts=lambda r: r["iteration"] > 0,
                     describe=lambda r: f"acc {r['accuracy']:.3f}" if r["iteration"] > 0 and "accuracy" in r
                     else None)
    every = cfg.eval_every or cfg.iters
    wall = runs.run_loop(out, train(cfg, state), checkpoint=lambda: checkpoint(state), on_record=bar,
                         checkpoint_when=lambda r: r["iteration"] % every == 0 or r["iteration"] == cfg.iters)
    bar.finish()
    metrics = run_metrics(cfg, runs.read_records(out), wall)
    runs.write_metrics(out, metrics)
    return metrics


def _toy_rl_job(job: tuple) -> tuple[str, dict]:
    cfg, out, threads = job
    return out, toy_rl(cfg, out, QUIET, threads)


def run_toy_rl_jobs(jobs: Sequence[tuple[Any, str]], workers: int, threads: int = 1,
                    report: Reporter = QUIET) -> dict[str, dict]:
    """Run (cfg, out) didactic RL jobs, ``workers`` processes at a time (one bar over the jobs); {out: metrics}.
    Each job resumes on its own, so an interrupted sweep continues where it stopped."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results = {}
    bar = report.bar(f"{len(jobs)} runs on {workers} workers", len(jobs))
    if workers == 1:
        for job in jobs:
            out, m = _toy_rl_job((*job, threads))
            results[out] = m
            bar({})
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for fut in as_completed([pool.submit(_toy_rl_job, (*j, threads)) for j in jobs]):
                out, m = fut.result()
                results[out] = m
                bar({})
    bar.finish()
    return results


def toy_sweep(configs: Sequence[Any], out, workers: int, threads: int = 1, report: Reporter = QUIET,
              plot: str | None = None) -> dict:
    """The Fig. 3(b) sweep: one didactic RL run per config in OUT/PROVER-seedS (α = 0 runs: outcome-only-seedS),
    resumed where they stopped; writes OUT/sweep.json (and the figure to ``plot``); the sweep table."""
    import json

    from pavkit.analysis.figures import fig3b_figure, save_figure
    from pavkit.analysis.loaders import load_rl_runs
    from pavkit.analysis.tables import sweep_table

    jobs = [(cfg, str(Path(out) / f"{'outcome-only' if cfg.alpha == 0 else cfg.prover.replace(':', '-')}"
                                   f"-seed{cfg.seed}")) for cfg in configs]
    Path(out).mkdir(parents=True, exist_ok=True)
    run_toy_rl_jobs(jobs, workers, threads, report)
    rl_runs = load_rl_runs([o for _, o in jobs])
    table = sweep_table(rl_runs)
    (Path(out) / "sweep.json").write_text(json.dumps(table, indent=2) + "\n")
    if plot:
        save_figure(fig3b_figure(rl_runs), plot)
    return table


def default_workers() -> int:
    """The CPU cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------------------------------
# The model organism and its verifiers (paper §4).


def organism(cfg, out, report: Reporter = QUIET, threads: int | None = None) -> dict:
    """Train (or resume) the organism (``OrganismConfig``) in OUT; save ckpt-ITER/ at every evaluation and
    base/, weak/, strong/ at the end; its metrics."""
    from pavkit.llm.organism import checkpoint, init_state, pick_roles, restore, train

    _torch_setup(threads)
    ckpt = open_run(out, cfg.to_dict(), cfg.seed, report)
    out = Path(out)
    state = restore(cfg, ckpt) if ckpt else init_state(cfg)
    runs.drop_records_after(out, ckpt, state.iteration)
    bar = report.bar("training the organism", cfg.iters, state.iteration, counts=lambda r: r["iteration"] > 0,
                     describe=lambda r: f"acc {r['accuracy']:.2f}" if r["iteration"] > 0 and "accuracy" in r
                     else None)

    def on_record(record: dict) -> None:
        if "accuracy" in record:  # a prover candidate: a plain transformers folder
            folder = out / f"ckpt-{record['iteration']:06d}"
            state.model.save_pretrained(folder)
            state.tokenizer.save_pretrained(folder)
        bar(record)

    wall = runs.run_loop(out, train(cfg, state), checkpoint=lambda: checkpoint(state), on_record=on_record,
                         checkpoint_when=lambda r: "accuracy" in r)
    bar.finish()
    evals = [r for r in runs.read_records(out) if "accuracy" in r]
    roles = pick_roles(evals, cfg.target_low, cfg.target_high)
    accuracy = {r["iteration"]: r["accuracy"] for r in evals}
    for role, it in roles.items():
        shutil.copytree(out / f"ckpt-{it:06d}", out / role, dirs_exist_ok=True)
    metrics = {"roles": roles, "role_accuracy": {k: accuracy[v] for k, v in roles.items()},
               "accuracy": {str(k): v for k, v in accuracy.items()},
               "accuracy_by_ops": {k: next(r["accuracy_by_ops"] for r in evals if r["iteration"] == v)
                                   for k, v in roles.items()},
               "iterations": state.iteration, "seconds": round(sum(r.get("seconds", 0.0) for r in
                                                                   runs.read_records(out)), 3),
               "wall_seconds_this_session": round(wall, 3)}
    runs.write_metrics(out, metrics)
    return metrics


def read_labels(path, report: Reporter = QUIET) -> tuple[list[dict], Path, bytes]:
    """(records, labels file, the bytes read) of a labels run directory (its labels.jsonl) or a .jsonl file; a
    truncated last line (a killed writer) is left out, with a note."""
    from pavkit.llm.label import scan_labels

    file = Path(path) / "labels.jsonl" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise UserInputError(f"{file}: no such labels file (give a `pavkit llm label` directory or a labels "
                             ".jsonl)")
    data = file.read_bytes()
    try:
        records, valid = scan_labels(data, str(file))
    except ValueError as e:  # names file:line
        raise UserInputError(str(e)) from None
    if valid < len(data):
        report.note(f"note: ignored a truncated last line of {file}")
    return records, file, data[:valid]


def verifier_config(records, file: Path, data: bytes, base: str, kind: str, delimiter: str | None,
                    fields: dict) -> tuple[Any, dict]:
    """(VerifierConfig, the run's config.json dict); a bad label record or field value is a UserInputError
    naming file:line:field or the option."""
    from pavkit.llm.verifier import VerifierConfig, records_delimiter, verifier_rows

    try:
        delimiter = delimiter if delimiter is not None else records_delimiter(records, source=str(file))
        rows = verifier_rows(records, kind, delimiter, source=str(file))  # validates every record up front
    except ValueError as e:  # names file:line: field
        raise UserInputError(str(e)) from None
    try:
        cfg = VerifierConfig(kind=kind, delimiter=delimiter, **fields)
    except ValueError as e:  # "VerifierConfig.warmup: ..." → "--warmup: ..."
        name, _, why = str(e).removeprefix("VerifierConfig.").partition(":")
        raise UserInputError(f"--{name.replace('_', '-')}:{why}") from None
    if not rows:
        raise UserInputError(f"{file}: no usable record for --kind {kind}")
    config = {"verifier": cfg.to_dict(), "base": str(Path(base).resolve()), "labels": str(file.resolve()),
              "labels_sha256": hashlib.sha256(data).hexdigest(), "records": len(records)}
    return cfg, config


def train_verifier(labels, base: str, kind: str, out, *, delimiter: str | None = None, threads: int = 1,
                   report: Reporter = QUIET, **fields) -> dict:
    """Train one verifier in run directory OUT (resuming from OUT/checkpoint.pt); OUT/metrics.json's dict.

    ``delimiter`` None reads the labels' own; ``fields`` are VerifierConfig fields. Writes OUT/config.json +
    meta.json, OUT/train.jsonl (one record per step and per evaluation), OUT/checkpoint.pt while training, and
    at the end OUT/model/ (save_pretrained model + tokenizer + verifier.json) and OUT/metrics.json. A finished
    run is a no-op; a changed config is refused. Under ``torchrun`` every process trains its share of each batch
    (``pavkit.distributed``) and rank 0 alone writes; the records and the model are the one-process run's, to
    float rounding.
    """
    from transformers.utils import logging as hf_logging

    from pavkit import distributed
    from pavkit.llm.folders import MODEL_SUBDIR
    from pavkit.llm.verifier import VERIFIER_JSON, VerifierTrainer, init_for_arch, save_verifier

    process = distributed.setup()
    report = report if process.main else QUIET
    records, file, data = read_labels(labels, report)
    cfg, config = verifier_config(records, file, data, base, kind, delimiter, fields)
    out_dir = Path(out)
    ckpt = open_run_shared(out_dir, config, cfg.seed, report, process)
    model_dir = out_dir / MODEL_SUBDIR
    if (model_dir / VERIFIER_JSON).exists() and (out_dir / "metrics.json").exists():
        return runs.read_json(out_dir, "metrics.json")
    _torch_setup(threads)
    hf_logging.set_verbosity_error()  # "score.* newly initialised, lm_head unused" is the expected load report
    model, tokenizer = init_for_arch(cfg.arch, base, process.device, seed=cfg.seed)
    trainer = VerifierTrainer(model, tokenizer, records, cfg, process)
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
    first = trainer.iteration
    if not process.main:
        for _ in trainer.run():  # the same steps, nothing written
            pass
        distributed.barrier(process)  # rank 0 has written the model and metrics.json
        return runs.read_json(out_dir, "metrics.json")
    runs.drop_records_after(out_dir, ckpt, trainer.iteration, key="iter")
    bar = report.bar(f"training the {kind} verifier", cfg.iters, trainer.iteration, counts=lambda r: "loss" in r,
                     describe=lambda r: f"eval BCE {r['eval_bce']:.3f}" if "loss" not in r and "eval_bce" in r
                     else None)
    seconds = runs.run_loop(out_dir, trainer.run(), checkpoint=trainer.state_dict, on_record=bar,
                            checkpoint_when=lambda r: r["iter"] % cfg.eval_every == 0 and r["iter"] > 0
                            and ("eval_positions" in r or not trainer.eval_rows))
    bar.finish()
    records_now = runs.read_records(out_dir)
    evals = [r for r in records_now if "eval_positions" in r]
    metrics = {k: v for k, v in (evals[-1] if evals else {}).items() if k.startswith("eval_")}
    trajectories = sum(r["trajectories"] for r in records_now if "loss" in r and r["iter"] > first)
    history = [r for r in records_now if "loss" in r]
    summary = {**metrics, "kind": kind, "iters": trainer.iteration, "final_loss": history[-1]["loss"],
               "train_trajectories": len(trainer.train_rows), "eval_trajectories": len(trainer.eval_rows),
               "seconds": round(seconds, 3), "resumed_from_iter": first,
               "trajectories_per_second": round(trajectories / seconds, 2) if seconds > 0 else None,
               "model": str(model_dir), "processes": process.world}
    tmp = out_dir / (MODEL_SUBDIR + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_verifier(model, tokenizer, tmp, {"kind": kind, "config": cfg.to_dict(), "base": config["base"],
                                          "labels": config["labels"], "metrics": summary})
    shutil.rmtree(model_dir, ignore_errors=True)
    os.replace(tmp, model_dir)
    runs.write_metrics(out_dir, summary)
    (out_dir / "checkpoint.pt").unlink(missing_ok=True)  # the saved model is the result now
    distributed.barrier(process)
    return summary


# ---------------------------------------------------------------------------------------------------------------
# Online RL (paper §5): RFT (the RL initialisation) and RL.


def rft(cfg, problems, out, report: Reporter = QUIET, threads: int | None = None) -> dict:
    """Sample, filter and fine-tune (``RFTConfig``) into OUT/model; a finished run (metrics.json) is not redone."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pavkit.llm.rl import RFT_ADDED_FIELDS, rft_data
    from pavkit.llm.rl import rft as rft_steps

    _torch_setup(threads)
    open_run(out, cfg.to_dict(), cfg.seed, report, defaults=RFT_ADDED_FIELDS)
    out = Path(out)
    if (out / "metrics.json").exists() and (out / "model" / "config.json").exists():
        return runs.read_json(out, "metrics.json")
    runs.drop_records_after(out, None, 0)  # an interrupted run restarts: sampling is most of its time
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(cfg.policy, local_files_only=True)
    report.note(f"rft: sampling {cfg.samples} responses to each of {len(problems)} problems with {cfg.engine}")
    if cfg.engine == "vllm":  # vLLM samples, then goes, leaving the memory to the fine-tuning
        from pavkit.llm.engines import engine_from_path

        try:
            engine = engine_from_path("vllm", cfg.policy, **cfg.engine_options(), **cfg.vllm_options)
        except ValueError as e:
            raise UserInputError(f"--engine vllm: {e}") from None
        pairs, correct = rft_data(None, tokenizer, problems, cfg, engine)
        del engine
    model = AutoModelForCausalLM.from_pretrained(cfg.policy, local_files_only=True)
    if cfg.engine == "hf":
        pairs, correct = rft_data(model, tokenizer, problems, cfg)
    if not pairs:
        raise UserInputError(f"rft: none of the {cfg.samples * len(problems)} samples of {cfg.policy} is correct; "
                             "nothing to fine-tune on")
    steps = -(-len(pairs) // cfg.batch) * cfg.epochs
    bar = report.bar(f"rft on {len(pairs)} correct samples", steps)
    runs.run_loop(out, rft_steps(model, tokenizer, pairs, cfg), on_record=bar)
    bar.finish()
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    metrics = {"problems": len(problems), "samples": cfg.samples * len(problems), "correct": correct,
               "sample_accuracy": correct / (cfg.samples * len(problems)), "kept": len(pairs),
               "steps": steps, "seconds": round(time.perf_counter() - t0, 3), "model": str(out / "model")}
    runs.write_metrics(out, metrics)
    return metrics


def llm_rl(cfg, train_problems, eval_problems, out, report: Reporter = QUIET, threads: int | None = None) -> dict:
    """Run (or resume) one LLM RL run (``pavkit.llm.rl.RLConfig``) in OUT on the loaded problems; its metrics.
    Safe to kill at any time."""
    from pavkit import distributed
    from pavkit.llm.rl import (
        RL_ADDED_FIELDS,
        RL_NOT_COMPARED,
        checkpoint,
        init_state,
        load_prover_values,
        restore,
        run_metrics,
        train,
    )

    process = distributed.setup()
    for option, engine in (("--engine", cfg.engine), ("--verifier-engine", cfg.verifier_engine)):
        if process.world > 1 and engine == "vllm":
            raise UserInputError(f"{option} vllm under torchrun: one vLLM engine per process is not supported; "
                                 f"use {option} hf")
    report = report if process.main else QUIET
    _torch_setup(threads)
    ckpt = open_run_shared(out, cfg.to_dict(), cfg.seed, report, process, defaults=RL_ADDED_FIELDS,
                           ignore=RL_NOT_COMPARED)
    state = restore(cfg, ckpt, process.device, process) if ckpt else init_state(cfg, process.device, process)
    try:
        prover_values = load_prover_values(cfg, process.device)
    except ValueError as e:  # e.g. an lm-features verifier on vLLM
        raise UserInputError(f"--verifier-engine {cfg.verifier_engine}: {e}") from None
    if not process.main:  # the same samples and updates, its share of the rows; nothing written
        for _ in train(cfg, state, train_problems, eval_problems, prover_values):
            pass
        distributed.barrier(process)  # rank 0 has written the policy and metrics.json
        return runs.read_json(out, "metrics.json")
    runs.drop_records_after(out, ckpt, state.iteration)
    name = f"llm rl α={cfg.alpha:g} {cfg.prover if cfg.alpha else 'outcome-only'} seed {cfg.seed}"
    bar = report.bar(name, cfg.iters, state.iteration, counts=lambda r: r["iteration"] > 0,
                     describe=lambda r: f"acc {r['accuracy']:.3f}" if "accuracy" in r else None)
    every = cfg.eval_every or cfg.iters
    wall = runs.run_loop(out, train(cfg, state, train_problems, eval_problems, prover_values), on_record=bar,
                         checkpoint=lambda: checkpoint(state),
                         checkpoint_when=lambda r: r["iteration"] > 0 and (r["iteration"] % every == 0
                                                                            or r["iteration"] == cfg.iters))
    bar.finish()
    policy_dir = Path(out) / "policy"
    if not (policy_dir / "config.json").exists():
        state.policy.save_pretrained(policy_dir)
        state.tokenizer.save_pretrained(policy_dir)
    metrics = run_metrics(runs.read_records(out), wall, policy_dir)
    runs.write_metrics(out, metrics)
    distributed.barrier(process)
    return metrics


# ---------------------------------------------------------------------------------------------------------------
# Monte Carlo labels and test-time search (paper §4): append-only records keyed by what they cover.


def resume_labels(out_dir: Path, cfg, report: Reporter = QUIET) -> set:
    """Write or check OUT/config.json; truncate a cut last line of OUT/labels.jsonl; the keys already done."""
    from pavkit.llm.label import NOT_COMPARED, completed_keys, scan_labels

    config_path, labels_path = out_dir / "config.json", out_dir / "labels.jsonl"
    if labels_path.exists() and not config_path.exists():
        raise UserInputError(f"{labels_path}: exists without config.json; not a labelling run directory")
    saved_version = runs.read_json(out_dir, "config.json").get("pavkit_version") if config_path.exists() else None
    open_run(out_dir, cfg.to_json(), cfg.seed, report, ignore=NOT_COMPARED)
    if saved_version not in (None, cfg.pavkit_version):
        report.note(f"note: {config_path} was written by pavkit {saved_version}")
    if not labels_path.exists():
        return set()
    try:
        records, valid = scan_labels(labels_path.read_bytes(), str(labels_path))
    except ValueError as e:
        raise UserInputError(str(e)) from None
    if valid < labels_path.stat().st_size:
        with open(labels_path, "r+b") as f:  # drop the line a kill cut short; it is recomputed
            f.truncate(valid)
        report.note(f"note: dropped a truncated last line of {labels_path}")
    return completed_keys(records)


def labels(cfg, problems, out, report: Reporter = QUIET, threads: int | None = None) -> dict:
    """Label (or resume labelling) ``problems`` with ``LabelConfig`` cfg into OUT/labels.jsonl, one line per seed
    trajectory, fsynced as written; the summary (records, new records, rollouts, seconds, rollouts/s)."""
    from pavkit.llm.label import iter_labels, load_engines, record_line

    out_dir = Path(out)
    done = resume_labels(out_dir, cfg, report)
    total = len(problems) * cfg.n_cov
    todo = total - sum(1 for i, _ in done if i < len(problems))
    written, rollouts, start = 0, 0, time.perf_counter()
    if todo > 0:
        if threads:
            import torch

            torch.set_num_threads(threads)
        try:
            pi_engine, mu_engine = load_engines(cfg)
        except ValueError as e:  # e.g. vllm_llm_kwargs: a step budget below the context length
            raise UserInputError(f"--engine {cfg.engine}: {e}") from None
        start = time.perf_counter()

        def show(_record: dict) -> str:
            return f"{rollouts} rollouts, {rollouts / max(time.perf_counter() - start, 1e-9):.1f} rollouts/s"

        bar = report.bar("labelling seeds", total, total - todo, describe=show)
        with open(out_dir / "labels.jsonl", "a", encoding="utf-8") as f:
            for records, n in iter_labels(problems, pi_engine, cfg, done=done, prover_engine=mu_engine):
                written += len(records)
                rollouts += n
                for r in records:
                    f.write(record_line(r))
                    f.flush()
                    os.fsync(f.fileno())
                    bar(r)
        bar.finish()
    seconds = time.perf_counter() - start
    return {"labels": str(out_dir / "labels.jsonl"), "records": total, "new_records": written,
            "rollouts": rollouts, "seconds": round(seconds, 3),
            "rollouts_per_second": round(rollouts / seconds, 3) if rollouts else None}


def search_done(out_dir: Path, report: Reporter = QUIET) -> tuple[set, set]:
    """Keys already written: pool problem indices, (problem_index, method, n) of search.jsonl; a cut last line is
    dropped first (it is recomputed)."""
    done = []
    for name in ("pool.jsonl", "search.jsonl"):
        path = out_dir / name
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            runs.truncate_records(out_dir, lambda r: True, name)
            report.note(f"note: dropped a truncated last line of {path}")
        done.append(runs.read_records(out_dir, name))
    return ({int(r["problem_index"]) for r in done[0]},
            {(int(r["problem_index"]), r["method"], int(r["n"])) for r in done[1]})


def search(cfg, problems, out, report: Reporter = QUIET, threads: int = 1) -> tuple[dict, int]:
    """Run (or resume) test-time search (``SearchConfig``) on ``problems`` into OUT/pool.jsonl and
    OUT/search.jsonl; (OUT/metrics.json's dict: accuracy and compute per method and N, the verifiers' ranking,
    Fig. 4's comparison, seconds; how many (problem, method, N) units this call computed)."""
    from pavkit.analysis.loaders import search_records
    from pavkit.analysis.tables import search_table, table_summary
    from pavkit.llm.search import ADDED_FIELDS, NOT_COMPARED, pending_units
    from pavkit.provers import VERIFIER_PROVERS, parse_prover

    out_dir = Path(out)
    for name in ("pool.jsonl", "search.jsonl"):
        if (out_dir / name).exists() and not (out_dir / "config.json").exists():
            raise UserInputError(f"{out_dir / name}: exists without config.json; not a search run directory")
    open_run(out_dir, cfg.to_json(), cfg.seed, report, ignore=NOT_COMPARED, defaults=ADDED_FIELDS)
    done_pool, done_search = search_done(out_dir, report)
    units = pending_units(len(problems), cfg, done_pool, done_search)
    start = time.perf_counter()
    if units:
        import torch

        from pavkit.llm.label import engine_tokenizer
        from pavkit.llm.search import PolicyLikelihood, Verifiers, iter_search
        from pavkit.llm.verifier import load_verifier

        torch.set_num_threads(threads)
        engine = _engine(cfg, cfg.policy, max_step_tokens=cfg.max_step_tokens)
        tokenizer = engine_tokenizer(engine)

        def load(path: str):
            try:
                return load_verifier(path, delimiter=cfg.delimiter, tokenizer=tokenizer, engine=cfg.verifier_engine,
                                     vllm_options=cfg.vllm_options)
            except ValueError as e:  # e.g. an lm-features verifier on vLLM
                raise UserInputError(f"--verifier-engine {cfg.verifier_engine}: {e}") from None

        prover = parse_prover(cfg.prover, VERIFIER_PROVERS)
        pqv = load(cfg.pqv)
        likelihood = PolicyLikelihood(engine.model, tokenizer, cfg.batch_size) if cfg.engine == "hf" else None
        verifiers = Verifiers(orm=load(cfg.orm) if cfg.orm else pqv, pqv=pqv,
                              qmu=load(prover.path) if prover.kind == "model" else None, likelihood=likelihood)
        names = iter(units)
        bar = report.bar("searching", len(units),
                         describe=lambda _r: "problem {}: {} N={}".format(*next(names)))
        for which, record in iter_search(problems, engine, verifiers, cfg, done_pool=done_pool,
                                         done_search=done_search):
            runs.append_record(out_dir, record, f"{which}.jsonl")
            bar(record)
        bar.finish()
    seconds = time.perf_counter() - start
    pool, records = search_records(out_dir, cfg.methods, len(problems))
    summary = table_summary(search_table(pool, records, cfg.ns, seed=cfg.seed), pool, cfg.methods)
    summary["seconds"] = round(seconds, 3)
    runs.write_metrics(out_dir, summary)
    return summary, len(units)


# ---------------------------------------------------------------------------------------------------------------
# Configs from what a person types: paths resolved and checked, problem specs loaded, provers parsed. The CLI and
# the pipeline build their configs here, so a stage run by the pipeline is the command a person would type.


def problems_from_spec(spec: str) -> tuple[list, str]:
    """`gsm8k` (the bundled set), `organism:SPLIT:SEED:COUNT` (the model organism's generator) or a problems
    JSONL path → (problems, source string for config.json)."""
    from pavkit.llm.data import gsm8k_problems, load_problems

    if spec == "gsm8k":
        return gsm8k_problems(), "gsm8k"
    if spec.startswith("organism:"):
        from pavkit.llm.organism import SPLITS, organism_problems

        parts = spec.split(":")
        if (len(parts) != 4 or parts[1] not in SPLITS or not (parts[2].isdigit() and parts[3].isdigit())
                or int(parts[3]) < 1):
            raise UserInputError(f"--problems: expected organism:SPLIT:SEED:COUNT with SPLIT in {'/'.join(SPLITS)}, "
                                    f"integers SEED >= 0 and COUNT >= 1; got {spec!r}")
        return organism_problems(int(parts[3]), int(parts[2]), parts[1]), spec
    if not Path(spec).is_file():
        raise UserInputError(f"--problems: {spec}: no such file (give a problems JSONL file, gsm8k, or "
                                "organism:SPLIT:SEED:COUNT)")
    try:
        return load_problems(spec), str(Path(spec).resolve())
    except ValueError as e:  # DataError / SpecError name file, line and field
        raise UserInputError(str(e)) from None


def check_model(option: str, path: str, kind: str = "lm") -> str:
    """``path`` when it holds a loadable model of ``kind`` (``pavkit.llm.folders.model_problem``: "lm",
    "lm-or-gguf", "verifier"; a verifier may also be the organism's exact checker), else a UserInputError naming
    the option, the path and what is missing."""
    from pavkit.llm.folders import model_problem
    from pavkit.llm.prm import is_prm_spec, parse_prm_spec, resolved
    from pavkit.llm.verifier import ORACLE

    if kind == "verifier" and path == ORACLE:
        return path
    if kind == "verifier" and is_prm_spec(path):  # a public PRM: its folder is a model of its own convention
        try:
            spec = parse_prm_spec(path)
            problem = model_problem(spec.path, "lm")
            if not problem:
                resolved(spec)  # the convention, the tag, the keys that apply
        except ValueError as e:
            problem = str(e)
        if problem:
            raise UserInputError(f"{option}: {path}: {problem}")
        return path
    problem = model_problem(path, kind)
    if problem:
        raise UserInputError(f"{option}: {path}: {problem}")
    return path


def decode_delimiter(delimiter: str) -> str:
    """A step delimiter as typed (backslash escapes: ``\\n``) → the string; empty or a bad escape is an error."""
    try:
        # latin-1 + backslashreplace keeps non-ASCII characters intact through the escape decoding.
        delimiter = delimiter.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise UserInputError(f"--delimiter: {delimiter!r}: bad escape ({e.reason})") from None
    if not delimiter:
        raise UserInputError("--delimiter: must not be empty")
    return delimiter


def verifier_path(value: str) -> str:
    """What a run's config records for a verifier: its absolute folder, the exact checker's name as given, or a
    public PRM's spec with its folder absolute and every default written out (``pavkit.llm.prm``)."""
    from pavkit.llm.prm import is_prm_spec, parse_prm_spec, resolved
    from pavkit.llm.verifier import ORACLE

    if is_prm_spec(value):
        return resolved(parse_prm_spec(value)).text
    return value if value == ORACLE else str(Path(value).resolve())


def label_config(model: str, problems: str, *, prover: str = "bok:4", **fields) -> tuple[Any, list]:
    """(LabelConfig, the problems) for ``pavkit llm label``: ``problems`` is a spec (``problems_from_spec``),
    ``fields`` are LabelConfig fields (``delimiter`` already decoded)."""
    from pavkit.llm.label import LabelConfig, problems_digest
    from pavkit.provers import LABEL_PROVERS, parse_prover

    try:
        spec = parse_prover(prover, LABEL_PROVERS)
    except ValueError as e:
        raise UserInputError(f"--prover: {e}") from None
    if spec.path is not None:
        check_model("--prover", spec.path, "lm-or-gguf")
    if spec.kind == "model":
        prover = f"model:{Path(spec.path).resolve()}"
    probs, source = problems_from_spec(problems)
    cfg = LabelConfig(model=str(Path(model).resolve()), prover=parse_prover(prover, LABEL_PROVERS).spec,
                      problems=source, problems_sha256=problems_digest(probs), **fields)
    return cfg, probs


def search_config(policy: str, orm: str | None, pqv: str, problems: str, *, prover: str = "bok:4",
                  **fields) -> tuple[Any, list]:
    """(SearchConfig, the problems) for ``pavkit llm search``; ``fields`` are SearchConfig fields."""
    from pavkit.llm.label import problems_digest
    from pavkit.llm.search import SearchConfig
    from pavkit.provers import VERIFIER_PROVERS, parse_prover

    try:
        parsed = parse_prover(prover, VERIFIER_PROVERS)
    except ValueError as e:
        raise UserInputError(f"--prover: {e}") from None
    if parsed.kind == "model":
        prover = f"model:{verifier_path(check_model('--prover', parsed.path, 'verifier'))}"
    probs, source = problems_from_spec(problems)
    try:
        cfg = SearchConfig(policy=str(Path(policy).resolve()), orm=verifier_path(orm) if orm else "",
                           pqv=verifier_path(pqv), problems=source, problems_sha256=problems_digest(probs),
                           prover=prover, **fields)
    except ValueError as e:
        raise UserInputError(f"--methods/--n/--pool/--prover: {e}") from None
    if cfg.pool_methods and not orm:
        raise UserInputError(f"--orm: the pool methods ({', '.join(cfg.pool_methods)}) need an ORM verifier "
                             "folder")
    return cfg, probs


def organism_config(target: str = "0.2,0.6", **fields):
    """OrganismConfig from ``--target LOW,HIGH`` and its other fields."""
    from pavkit.llm.organism import OrganismConfig

    try:
        low, high = (float(x) for x in target.split(","))
        return OrganismConfig(target_low=low, target_high=high, **fields)
    except ValueError as e:
        raise UserInputError(f"--target/--min-ops/--max-ops/--hidden: {e}") from None


# ---------------------------------------------------------------------------------------------------------------
# Verifier evaluation (ProcessBench-style, pavkit.llm.processbench).


def eval_data(spec: str) -> str:
    """What `--data` records: a file source with its path absolute (checked to exist), the others as given."""
    from pavkit.llm.processbench import SOURCES

    kind, _, arg = spec.partition(":")
    if kind in ("processbench", "prm800k") and arg:
        if not Path(arg).is_file():
            raise UserInputError(f"--data: {arg}: no such file")
        return f"{kind}:{Path(arg).resolve()}"
    if spec == "champ" or kind == "organism":
        if kind == "organism":
            problems_from_spec(spec)  # a malformed organism spec fails here
        return spec
    raise UserInputError(f"--data: expected one of {', '.join(SOURCES)}; got {spec!r}")


def _eval_solutions(cfg) -> list:
    """The solutions of ``cfg.data``: read, or for organism data sampled from ``cfg.policy`` (``cfg.samples``
    per problem, one engine call) and labelled by the exact step checker; solutions without a step are dropped."""
    from pavkit.llm import processbench

    if not cfg.data.startswith("organism:"):
        try:
            solutions = processbench.solutions_from_spec(cfg.data)
        except ValueError as e:  # DataError names file, line and field
            raise UserInputError(str(e)) from None
        return solutions[:cfg.limit] if cfg.limit else solutions
    from pavkit.llm.label import build_prompt, engine_tokenizer
    from pavkit.llm.steps import split_steps

    problems, _ = problems_from_spec(cfg.data)
    engine = _engine(cfg, cfg.policy)
    tokenizer = engine_tokenizer(engine)
    prompts = [build_prompt(p.problem, tokenizer, prompt_format=cfg.prompt_format, delimiter=cfg.delimiter)
               for p in problems]
    steps = [split_steps(c.text, cfg.delimiter) for row in engine.complete(prompts, cfg.samples, cfg.seed) for c in row]
    solutions = [s for s in processbench.organism_solutions(problems, steps, cfg.samples) if s.steps]
    return solutions[:cfg.limit] if cfg.limit else solutions


def eval_verifier(cfg, out_dir: str | Path, report: Reporter = QUIET, threads: int = 1,
                  chunk: int = 64) -> dict:
    """`pavkit llm eval-verifier`: V̂ of every prefix of every solution of ``cfg.data`` by ``cfg.verifier``,
    appended to OUT/scores.jsonl ``chunk`` solutions at a time (a rerun scores only what is missing), then the
    measures of ``pavkit.llm.processbench.evaluate`` in OUT/metrics.json and the step-score figure OUT/steps.png."""
    import numpy as np

    from pavkit.analysis.figures import save_figure, step_scores_figure
    from pavkit.llm import processbench
    from pavkit.llm.label import build_prompt
    from pavkit.llm.verifier import load_verifier
    from pavkit.runs import append_record, read_records, write_metrics

    out_dir = Path(out_dir)
    open_run(out_dir, cfg.to_json(), cfg.seed, report, ignore=processbench.EVAL_NOT_COMPARED,
             defaults=processbench.EVAL_ADDED_FIELDS)
    _torch_setup(threads)
    solutions = _eval_solutions(cfg)
    done = read_records(out_dir, "scores.jsonl")
    if len(done) > len(solutions) or any(r["problem_id"] != solutions[r["index"]].problem_id for r in done):
        raise UserInputError(f"{out_dir / 'scores.jsonl'}: its records are not of these solutions (the data "
                             "changed?); use another --out")
    if len(done) < len(solutions):
        try:
            verifier = load_verifier(cfg.verifier, delimiter=cfg.delimiter, engine=cfg.verifier_engine,
                                     vllm_options=cfg.vllm_options)
        except ValueError as e:  # e.g. an lm-features verifier or a PRM on vLLM
            raise UserInputError(f"--verifier-engine {cfg.verifier_engine}: {e}") from None
        tokenizer = getattr(verifier, "tokenizer", None)
        bar = report.bar(f"scoring {len(solutions)} solutions", len(solutions), len(done))
        for lo in range(len(done), len(solutions), chunk):
            batch = solutions[lo:lo + chunk]
            prompts = [build_prompt(s.problem, tokenizer, prompt_format=cfg.prompt_format, delimiter=cfg.delimiter)
                       for s in batch]
            for i, (s, v) in enumerate(zip(batch, verifier.prefix_values(prompts, [list(s.steps) for s in batch]),
                                           strict=True)):
                record = {"index": lo + i, "problem_id": s.problem_id, "first_error": s.first_error,
                          "values": [float(x) for x in v]}
                append_record(out_dir, record, "scores.jsonl")
                bar(record)
        bar.finish()
    values = [np.array(r["values"]) for r in read_records(out_dir, "scores.jsonl")]
    metrics = {"verifier": cfg.verifier, "data": cfg.data,
               **processbench.evaluate(values, solutions, fraction=cfg.fraction, seed=cfg.seed)}
    write_metrics(out_dir, metrics)
    f1 = "no F1" if metrics["f1"] is None else f"F1 {metrics['f1']:.3f} at τ = {metrics['threshold']:.3g}"
    title = f"{Path(cfg.verifier).name} on {cfg.data.split(':')[0]}: {f1}"
    save_figure(step_scores_figure(processbench.step_score_curves(values, solutions), title), out_dir / "steps.png",
                dpi=120)
    return metrics


# ---------------------------------------------------------------------------------------------------------------
# Prover diagnostics on a real policy (pavkit.llm.diagnose).


def diagnose_provers(cfg, problems: Sequence, out_dir: str | Path, report: Reporter = QUIET,
                     threads: int = 1) -> dict:
    """`pavkit llm diagnose-provers`: one record per state in OUT/states.jsonl (appended as computed: a rerun
    does only what is missing), the per-prover terms in OUT/metrics.json and their bars in OUT/provers.png."""
    import numpy as np

    from pavkit.analysis.figures import prover_terms_figure, save_figure
    from pavkit.llm import diagnose
    from pavkit.llm.engines import at_temperature
    from pavkit.llm.label import build_prompt, engine_tokenizer
    from pavkit.provers import LABEL_PROVERS, parse_prover
    from pavkit.runs import append_record, read_records, write_metrics

    out_dir = Path(out_dir)
    open_run(out_dir, cfg.to_json(), cfg.seed, report, defaults=diagnose.DIAGNOSE_ADDED_FIELDS)
    _torch_setup(threads)
    done = read_records(out_dir, "states.jsonl")
    if len(done) < len(problems):
        pi = _engine(cfg, cfg.policy, max_step_tokens=cfg.max_step_tokens)
        engines = {"pi": pi}
        for spec in cfg.provers:
            mu = parse_prover(spec, LABEL_PROVERS)
            if mu.kind == "temp":
                engines[spec] = at_temperature(pi, mu.temperature)
            elif mu.kind == "model":
                engines[spec] = _engine(cfg, mu.path, max_step_tokens=cfg.max_step_tokens)
        tokenizer = engine_tokenizer(pi)
        prompts = [build_prompt(p.problem, tokenizer, prompt_format=cfg.prompt_format, delimiter=cfg.delimiter)
                   for p in problems]
        states = diagnose.sample_states(pi, prompts, cfg.seed)
        bar = report.bar(f"{len(problems)} states × {cfg.children} children × {cfg.rollouts} rollouts",
                         len(problems), len(done))
        for i in range(len(done), len(problems)):
            record = diagnose.state_terms(engines, problems[i], prompts[i], states[i][0], cfg, i)
            append_record(out_dir, record, "states.jsonl")
            bar(record)
        bar.finish()
    records = read_records(out_dir, "states.jsonl")
    rows = diagnose.summarize(records, cfg.provers)
    q_pi = np.array([r["q_pi"] for r in records], dtype=float)
    metrics = {"policy": cfg.policy, "problems": cfg.problems, "states": len(records), "children": cfg.children,
               "rollouts": cfg.rollouts, "mean_q_pi": float(q_pi.mean()) if q_pi.size else None, "provers": rows}
    write_metrics(out_dir, metrics)
    save_figure(prover_terms_figure(rows, f"{Path(cfg.policy).name}: {len(records)} states"),
                out_dir / "provers.png", dpi=120)
    return metrics
