"""Data-parallel verifier training under torchrun (pavkit.distributed): 2 CPU processes (gloo) give the
one-process run at the same global batch, to float rounding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pavkit.distributed import SINGLE, Process, all_gather_rows, all_sum, shard


def test_shard_splits_a_batch_over_ranks():
    rows = np.arange(7)
    assert [shard(rows, Process(r, 3)).tolist() for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert shard(rows, SINGLE).tolist() == rows.tolist()
    assert all_sum([1, 2.5], SINGLE) == [1.0, 2.5] and SINGLE.main and not Process(1, 2).main


def _gather_in(rank: int, world: int, init: str, out: str) -> None:
    """One of ``world`` gloo processes: item i is computed by process i % world; every process writes the
    gathered list."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    process = Process(rank, world)
    mine = [(int(i), f"row {i}") for i in shard(np.arange(7), process)]
    Path(out, f"{rank}.json").write_text(json.dumps(all_gather_rows(mine, 7, process)))
    dist.destroy_process_group()


def test_all_gather_rows_puts_every_shard_back_in_order(tmp_path):
    import torch.multiprocessing as mp

    assert all_gather_rows(["a", "b"], 2, SINGLE) == ["a", "b"]
    mp.spawn(_gather_in, args=(3, f"file://{tmp_path / 'init'}", str(tmp_path)), nprocs=3)
    for rank in range(3):
        assert json.loads((tmp_path / f"{rank}.json").read_text()) == [[i, f"row {i}"] for i in range(7)]


def _records(processes: int, out: Path, *args: str) -> list[dict]:
    """`pavkit ARGS --out OUT` as one process or under torchrun with ``processes``; OUT/train.jsonl's records."""
    pavkit = ["-m", "pavkit", *args, "--out", str(out)]
    cmd = [sys.executable, *pavkit] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *pavkit]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]


def _train(labels: Path, base: Path, out: Path, processes: int, arch: str, batch: int) -> list[dict]:
    return _records(processes, out, "llm", "train-verifier", str(labels), "--base", str(base), "--kind", "pqv",
                    "--arch", arch, "--iters", "6", "--batch-size", str(batch), "--warmup", "2", "--eval-every",
                    "3", "--eval-fraction", "0.25", "--json")


def _without_dropout(src: Path, dst: Path) -> Path:
    """A copy of the LM folder whose config sets classifier_dropout 0: a token classifier built on it has no
    dropout (each process would draw its own masks: the same expected update, not the same numbers)."""
    import shutil

    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**config, "classifier_dropout": 0.0}))
    return dst


@pytest.mark.slow
@pytest.mark.parametrize("arch, batch", [("lm-features", 5), ("lm-features", 1), ("token-classification", 4)])
def test_two_processes_give_the_one_process_loss_curve(tiny_model_dir, tmp_path, arch, batch):
    """Batches of 5 rows over 2 ranks (3 + 2), of 1 (rank 1 runs a row of weight 0 to join the gradient
    exchange) and of 4 (2 + 2): every record of the one-process run, to float
    rounding (the lm-features head has no dropout; the token classifier is built without)."""
    from test_llm_verifier import _write_labels, synthetic_records

    labels = _write_labels(tmp_path / "labels", synthetic_records(16, seeds=2, seed=4))
    base = tiny_model_dir if arch == "lm-features" else _without_dropout(tiny_model_dir, tmp_path / "base")
    one = _train(labels, base, tmp_path / "one", 1, arch, batch)
    two = _train(labels, base, tmp_path / "two", 2, arch, batch)
    assert [sorted(r) for r in one] == [sorted(r) for r in two]
    for a, b in zip(one, two, strict=True):
        for key in ("loss", "eval_bce", "eval_mae"):
            if key in a:
                np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=f"{key} at {a['iter']}")
        for key in ("trajectories", "positions", "tokens", "lr"):
            assert a.get(key) == b.get(key), (key, a, b)
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["processes"] == 2 and not (tmp_path / "two" / "checkpoint.pt").exists()


def _rl(base: Path, pqv: Path, out: Path, processes: int) -> list[dict]:
    return _records(processes, out, "llm", "rl", "--policy", str(base), "--alpha", "1", "--verifier", str(pqv),
                    "--iters", "3", "--problems-per-iter", "3", "--group", "2", "--microbatch", "2",
                    "--eval-problems", "organism:test:0:2", "--eval-every", "0", "--final-samples", "2",
                    "--max-new-tokens", "16", "--threads", "1", "--json")


@pytest.mark.slow
def test_rl_update_over_two_processes_gives_the_one_process_run(tiny_model_dir, tmp_path):
    """6 responses an iteration (3 rows a process) in micro-batches of 2, Eq. 5 weights from a PQV (an untrained
    head on the tiny LM) with a Bo4 prover: the same samples, losses, KL and evaluation as one process, to float
    rounding."""
    import torch

    from pavkit.llm.verifier import init_verifier

    torch.manual_seed(2)
    model, tokenizer = init_verifier(tiny_model_dir, device="cpu")
    model.save_pretrained(tmp_path / "pqv")
    tokenizer.save_pretrained(tmp_path / "pqv")
    one = _rl(tiny_model_dir, tmp_path / "pqv", tmp_path / "one", 1)
    two = _rl(tiny_model_dir, tmp_path / "pqv", tmp_path / "two", 2)
    assert [r["iteration"] for r in two] == [0, 1, 2, 3]
    for a, b in zip(one, two, strict=True):
        assert set(a) == set(b)
        for key in ("loss", "kl", "mean_weight", "mean_abs_adv_mu", "batch_accuracy", "lr"):
            if key in a:
                np.testing.assert_allclose(b[key], a[key], rtol=1e-5, atol=1e-6, err_msg=f"{key} at {a['iteration']}")
        assert a.get("response_tokens") == b.get("response_tokens") and a.get("accuracy") == b.get("accuracy")
    assert (tmp_path / "two" / "policy" / "config.json").exists()
