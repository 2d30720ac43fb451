"""`pavkit llm pipeline`: every stage runs on a real (tiny) organism, the summary is consistent, reruns resume."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")


@pytest.mark.slow
def test_pipeline_tiny_runs_every_stage_and_resumes(tmp_path):
    import torch
    from click.testing import CliRunner

    from pavkit.analysis.loaders import load_search_runs
    from pavkit.analysis.tables import run_table
    from pavkit.cli import main

    torch.set_num_threads(1)
    out = tmp_path / "pipe"
    args = ["llm", "pipeline", "--preset", "organism-tiny", "--out", str(out), "--json"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    for name in ("organism/base/config.json", "labels/labels.jsonl", "orm/model/config.json",
                 "pqv/model/config.json", "search/pool.jsonl", "search/search.jsonl", "search-bok-2/search.jsonl",
                 "labels-weak/labels.jsonl", "qmu-weak/model/config.json", "search-weak/search.jsonl",
                 "figures/fig4.png", "figures/fig5b.png", "figures/fig5c.png", "figures/fig6a.png",
                 "figures/fig10.png", "summary.json"):
        assert (out / name).exists(), name
    stages = [json.loads(line)["stage"] for line in (out / "stages.jsonl").read_text().splitlines()]
    assert stages == ["organism", "labels", "orm", "pqv", "search-pool", "search-beam", "search-bok-2", "labels-weak",
                      "qmu-weak", "search-weak", "figures"]
    weak = json.loads((out / "labels-weak" / "labels.jsonl").read_text().splitlines()[0])
    assert weak["provenance"]["prover"].startswith("model:") and weak["provenance"]["prover"].endswith("weak")
    # the summary is the analysis of the search run, not a copy of anything else
    (run,) = load_search_runs([str(out / "search")])
    table = run_table(run, ns=[1, 2])
    assert summary["accuracy_at_n"]["beam-pav"]["2"] == table["beam-pav"]["accuracy"]["mean"][1]
    assert set(summary["accuracy_at_n"]) == {"bon-orm", "bon-pav", "bon-likelihood", "majority", "pass", "beam-q",
                                             "beam-pav"}
    assert summary["accuracy_ci"]["bon-likelihood"]["2"]["mean"] == summary["accuracy_at_n"]["bon-likelihood"]["2"]
    for key in ("within_auc_orm", "within_auc_pqv", "pav_vs_q_beam_ratio", "bon_likelihood_accuracy", "bok_sweep",
                "orm_accuracy_grows_with_n", "train_eval_within_auc"):
        assert key in summary, key
    assert set(summary["bok_sweep"]) == {"4", "2"}  # the main run's Bo4 and the sweep's Bo2, at N = 1
    records = {name: (out / name).read_bytes() for name in ("labels/labels.jsonl", "search/search.jsonl")}
    again = CliRunner().invoke(main, args)  # every stage resumes as a no-op: no record is recomputed or added
    assert again.exit_code == 0, again.output
    assert all((out / name).read_bytes() == data for name, data in records.items())
    rerun = [json.loads(line)["stage"] for line in (out / "stages.jsonl").read_text().splitlines()[11:]]
    assert rerun and "organism" not in rerun  # a trained organism is not trained again


def test_the_cli_offers_every_preset():
    from pavkit.cli import llm_pipeline
    from pavkit.llm.pipeline import PRESETS

    (preset,) = [p for p in llm_pipeline.params if p.name == "preset"]
    assert set(preset.type.choices) == set(PRESETS)
