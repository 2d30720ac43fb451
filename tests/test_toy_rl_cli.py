"""`pavkit toy rl`, `toy sweep`, `plot fig3*`: run directories, resume after a kill, errors, figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from pavkit import runs
from pavkit.cli import main

FAST = ["--iters", "6", "--n-mc", "4", "--eval-every", "2", "--eval-samples", "200", "--final-samples", "2000",
        "--pass-at-iter", "2", "--threads", "1"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_toy_rl_json_and_run_directory(tmp_path):
    out = tmp_path / "run"
    r = run("toy", "rl", "--prover", "bok:4", "--out", out, "--json", *FAST)
    assert r.exit_code == 0, r.output
    last = json.loads(r.output.strip().splitlines()[-1])
    assert set(last) == {"final_accuracy", "iterations", "seconds"} and last["iterations"] == 6
    assert {p.name for p in out.iterdir()} >= {"config.json", "meta.json", "train.jsonl", "metrics.json",
                                               "checkpoint.pt"}
    records = runs.read_records(out)
    assert [rec["iteration"] for rec in records] == list(range(7))
    assert records[-1]["eval_samples"] == 2000 and records[-1]["accuracy"] == last["final_accuracy"]
    assert "pass_at_n" in records[0] and "pass_at_n" in records[2]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["versions"]["torch"] and meta["seed"] == 0
    assert json.loads((out / "config.json").read_text())["prover"] == "bok:4"


def test_toy_rl_rerun_is_a_noop_and_a_changed_option_is_an_error(tmp_path):
    out = tmp_path / "run"
    first = run("toy", "rl", "--out", out, *FAST)
    assert first.exit_code == 0 and "resuming" not in first.stderr
    before = (out / "train.jsonl").read_text()
    again = run("toy", "rl", "--out", out, *FAST)
    assert again.exit_code == 0 and f"resuming {out} from iteration 6\n" in again.stderr
    assert (out / "train.jsonl").read_text() == before
    r = run("toy", "rl", "--out", out, "--alpha", "0.5", *FAST)
    assert r.exit_code == 2 and "field 'alpha'" in r.output and "config.json" in r.output


@pytest.mark.parametrize("args, needle", [
    (["--prover", "gamma"], "--prover: prover must be"),
    (["--prover", "bok:0"], "--prover: prover must be"),
    (["--planted", "3,x"], "--planted: expected"),
    (["--planted", "3,14"], "--planted: planted tokens"),
    (["--planted", "1,2,3,4,5,6,7,8,9,10,11"], "--planted: planted has length"),
    (["--prover", "bok:4", "--n-mc", "0"], "--n-mc: n_mc"),
])
def test_toy_rl_bad_input_exits_2(tmp_path, args, needle):
    """One line naming the one option that is wrong."""
    r = run("toy", "rl", "--out", tmp_path / "r", *FAST, *args)
    assert r.exit_code == 2 and r.output.startswith(f"Error: {needle}"), r.output
    assert len(r.output.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    args = ["--iters", "40", "--n-mc", "8", "--eval-every", "5", "--eval-samples", "200", "--final-samples",
            "2000", "--pass-at-iter", "10", "--threads", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "pavkit", "toy", "rl", "--out", str(killed), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if len(runs.read_records(killed)) >= 12:  # past the checkpoint at iteration 10
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(runs.read_records(killed))
    assert 12 <= n_before < 41, "the run should have been killed part-way"
    assert run("toy", "rl", "--out", killed, *args).exit_code == 0
    assert run("toy", "rl", "--out", tmp_path / "clean", *args).exit_code == 0

    def strip(recs):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in recs]

    assert strip(runs.read_records(killed)) == strip(runs.read_records(tmp_path / "clean"))


def test_sweep_and_the_three_plots(tmp_path):
    out = tmp_path / "sweep"
    r = run("toy", "sweep", "fig3b", "--out", out, "--provers", "gamma:2,gamma:9", "--seeds", "0,1",
            "--workers", "2", "--json", *FAST)
    assert r.exit_code == 0, r.output
    table = json.loads(r.output.strip().splitlines()[-1])
    assert table["kind"] == "gamma" and table["strength"] == [2.0, 9.0] and table["seeds"] == [2, 2]
    assert table["baseline"] is not None
    assert json.loads((out / "sweep.json").read_text()) == table
    assert len([p for p in out.iterdir() if p.is_dir()]) == 6
    for fig in ("fig3a", "fig3b", "fig3c"):
        png = tmp_path / f"{fig}.png"
        r = run("plot", fig, out, "--out", png)
        assert r.exit_code == 0, r.output
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_rejects_mixed_prover_kinds_and_plot_rejects_non_runs(tmp_path):
    r = run("toy", "sweep", "fig3b", "--out", tmp_path, "--provers", "gamma:2,bok:4", *FAST)
    assert r.exit_code == 2 and "one kind" in r.output
    (tmp_path / "empty").mkdir()
    r = run("plot", "fig3a", tmp_path / "empty", "--out", tmp_path / "x.png")
    assert r.exit_code == 2 and "no config.json" in r.output


def test_toy_rl_mu_reading_reaches_the_task(tmp_path):
    """--mu-reading pooled is stored in the run's config and changes what the run trains on (the SFT data are
    samples of μ_5 under that reading), so the same seed gives another initial policy; a resume with the other
    reading is refused."""
    from pavkit.toy.rl import RLConfig

    outs = {}
    for reading in ("per-token", "pooled"):
        outs[reading] = tmp_path / reading
        r = run("toy", "rl", "--prover", "gamma:10", "--mu-reading", reading, "--out", outs[reading], *FAST)
        assert r.exit_code == 0, r.output
        cfg = json.loads((outs[reading] / "config.json").read_text())
        assert cfg["mu_reading"] == reading and RLConfig.from_dict(cfg).task().mu_reading == reading
    first = [runs.read_records(outs[k])[1]["loss"] for k in ("per-token", "pooled")]
    assert first[0] != first[1]
    refused = run("toy", "rl", "--prover", "gamma:10", "--mu-reading", "per-token", "--out", outs["pooled"], *FAST)
    assert refused.exit_code == 2 and "mu_reading" in refused.output


def test_toy_rl_optimizer_sft_iters_and_length_reach_the_config(tmp_path):
    """--optimizer, --sft-iters and --length are RLConfig fields of the run (and of a sweep's runs)."""
    from pavkit.toy.rl import RLConfig

    out = tmp_path / "sgd"
    r = run("toy", "rl", "--optimizer", "sgd", "--lr", "1", "--sft-iters", "3", "--length", "12", "--out", out, *FAST)
    assert r.exit_code == 0, r.output
    cfg = RLConfig.from_dict(json.loads((out / "config.json").read_text()))
    assert (cfg.optimizer, cfg.lr, cfg.sft.iters, cfg.length, cfg.task().length) == ("sgd", 1.0, 3, 12, 12)
    refused = run("toy", "rl", "--optimizer", "adam", "--lr", "1", "--sft-iters", "3", "--length", "12", "--out", out,
                  *FAST)
    assert refused.exit_code == 2 and "optimizer" in refused.output


def test_a_run_written_before_a_field_existed_resumes_as_its_old_value(tmp_path):
    """A config.json without mu_reading/optimizer (written before they existed) holds per-token and adam: the
    matching command resumes it; the new default reading (pooled) is refused, naming the field."""
    out = tmp_path / "old"
    assert run("toy", "rl", "--mu-reading", "per-token", "--out", out, *FAST).exit_code == 0
    cfg = json.loads((out / "config.json").read_text())
    del cfg["mu_reading"], cfg["optimizer"]
    (out / "config.json").write_text(json.dumps(cfg))
    r = run("toy", "rl", "--mu-reading", "per-token", "--out", out, *FAST)
    assert r.exit_code == 0 and "resuming" in r.output, r.output
    refused = run("toy", "rl", "--out", out, *FAST)
    assert refused.exit_code == 2 and "mu_reading" in refused.output
