"""Search, RFT and RL on vLLM: VLLMVerifier (vLLM's pooling runner) against the transformers Verifier, search with
--verifier-engine vllm (the hf records) and with --engine vllm (vLLM samples the steps).

Skipped unless vllm imports; ci/test-vllm.sh runs it in .venv-vllm with PAVKIT_REQUIRE_VLLM=1 (fail, not skip).
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest

PROMPTS = ["Q: What is 3+4*2?\n", "Q: What is 5+1*2?\n", "Q: What is 3+4*2?\n", "Q: What is 7?\n"]
STEPS = [["Step: 4*2=8", "Step: 3+8=11", "Answer: 11"], ["Step: 1*2=2"], [], ["Answer: 7"]]


def _need_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        if os.environ.get("PAVKIT_REQUIRE_VLLM"):
            pytest.fail("PAVKIT_REQUIRE_VLLM is set but vllm is not importable")
        pytest.skip("vllm not installed (ci/test-vllm.sh runs these in .venv-vllm)")


def _problems(tmp_path):
    """Two arithmetic problems as a problems JSONL file."""
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"q{i}", "problem": f"Q: What is {a}+{b}*2?", "answer": a + 2 * b})
                                + "\n" for i, (a, b) in enumerate([(3, 4), (5, 1)])))
    return problems


@pytest.fixture(scope="module")
def pqv_dir(tiny_model_dir, tmp_path_factory):
    """An untrained token-classification verifier on the tiny LM (a random head), saved with verifier.json."""
    import torch

    from pavkit.llm.verifier import init_verifier, save_verifier

    torch.manual_seed(3)
    model, tokenizer = init_verifier(tiny_model_dir, device="cpu")
    out = tmp_path_factory.mktemp("pqv")
    save_verifier(model, tokenizer, out, {"kind": "pqv", "config": {"delimiter": "\n"}})
    return out


@pytest.fixture(scope="module")
def vllm_pqv(pqv_dir):
    _need_vllm()
    from pavkit.llm.verifier import load_verifier

    return load_verifier(pqv_dir, engine="vllm", vllm_options={"max_model_len": 512, "enforce_eager": True})


def test_vllm_scores_equal_transformers(pqv_dir, vllm_pqv):
    from pavkit.llm.verifier import Verifier, VLLMVerifier

    assert isinstance(vllm_pqv, VLLMVerifier) and str(vllm_pqv.model.llm_engine.vllm_config.model_config.dtype) \
        == "torch.float32"
    hf = Verifier.from_path(pqv_dir, device="cpu")
    got, want = vllm_pqv.prefix_values(PROMPTS, STEPS), hf.prefix_values(PROMPTS, STEPS)
    assert [len(x) for x in got] == [4, 2, 1, 2]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=1e-5)
    np.testing.assert_allclose(vllm_pqv.values(PROMPTS, STEPS), [x[-1] for x in want], atol=1e-5)
    assert vllm_pqv.prefix_values([], []) == [] and vllm_pqv.stats.trajectories == 8
    assert vllm_pqv.stats.forward_tokens == vllm_pqv.stats.padded_tokens > 0  # packed: no padding


def test_lm_features_and_prm_specs_are_refused_on_vllm(tiny_model_dir, tmp_path):
    _need_vllm()
    from pavkit.llm.verifier import load_verifier

    (tmp_path / "lmf").mkdir()  # what save_verifier writes for an lm-features verifier, as far as the check reads
    (tmp_path / "lmf" / "verifier.json").write_text(json.dumps({"kind": "pqv", "arch": "lm-features", "config": {}}))
    with pytest.raises(ValueError, match="lm-features verifier reads the LM's log-probabilities"):
        load_verifier(tmp_path / "lmf", engine="vllm")
    with pytest.raises(ValueError, match="public PRMs are scored with transformers"):
        load_verifier(f"prm:{tiny_model_dir}", engine="vllm")
    with pytest.raises(ValueError, match="verifier engine must be one of hf, vllm"):
        load_verifier(tiny_model_dir, engine="onnx")
    from pavkit.llm.rl import prover_values  # RL's provers go through the same loader, both kinds

    for verifier, prover in ((str(tmp_path / "lmf"), "bok:4"), ("", f"model:{tmp_path / 'lmf'}")):
        with pytest.raises(ValueError, match="lm-features verifier reads"):
            prover_values(verifier, prover, engine="vllm")


@pytest.mark.slow
def test_search_with_the_vllm_verifier_gives_the_hf_records(tiny_model_dir, pqv_dir, vllm_pqv, tmp_path):
    """Beam search (beam-q, beam-pav) on 2 problems: the same responses, values to float rounding."""
    del vllm_pqv  # built (or skipped) first: the search builds its own
    from click.testing import CliRunner

    from pavkit.cli import main
    from pavkit.runs import read_records

    problems = _problems(tmp_path)
    runs = {}
    for engine in ("hf", "vllm"):
        out = tmp_path / engine
        res = CliRunner().invoke(main, [
            "llm", "search", "--policy", str(tiny_model_dir), "--pqv", str(pqv_dir), "--problems", str(problems),
            "--methods", "beam-q,beam-pav", "--n", "1,2", "--c", "2", "--max-steps", "3", "--max-step-tokens", "8",
            "--prompt-format", "plain", "--seed", "5", "--out", str(out), "--threads", "1",
            "--verifier-engine", engine])
        assert res.exit_code == 0, res.output
        runs[engine] = read_records(out, "search.jsonl")
    assert len(runs["hf"]) == 8
    for a, b in zip(runs["hf"], runs["vllm"], strict=True):
        assert (a["method"], a["n"], a["response"], a["correct"]) == (b["method"], b["n"], b["response"],
                                                                       b["correct"])


def test_search_config_refuses_what_vllm_cannot_do():
    from pavkit.llm.search import SearchConfig

    base = {"policy": "p", "orm": "", "pqv": "q", "methods": ("beam-pav",), "ns": (2,)}
    with pytest.raises(ValueError, match="bon-likelihood scores"):
        SearchConfig(**{**base, "methods": ("bon-likelihood",)}, engine="vllm")
    with pytest.raises(ValueError, match="vLLM options without a vLLM engine"):
        SearchConfig(**base, vllm_options={"dtype": "float32"})
    assert SearchConfig(**base, engine="vllm", vllm_options={"dtype": "float32"}).engine == "vllm"


@pytest.mark.slow
def test_search_samples_with_vllm(tiny_model_dir, pqv_dir, vllm_pqv, tmp_path):
    """--engine vllm: every beam and pool record is well formed, its steps come from vLLM, and a rerun resumes."""
    del vllm_pqv  # vllm imported (or the test skipped) first
    from click.testing import CliRunner

    from pavkit.cli import main
    from pavkit.runs import read_records

    problems = _problems(tmp_path)
    out = tmp_path / "run"
    args = ["llm", "search", "--policy", str(tiny_model_dir), "--orm", str(pqv_dir), "--pqv", str(pqv_dir),
            "--problems", str(problems), "--methods", "bon-orm,pass,beam-q,beam-pav", "--n", "1,2", "--pool", "4",
            "--c", "2", "--max-steps", "3", "--max-step-tokens", "8", "--max-new-tokens", "24",
            "--prompt-format", "plain", "--seed", "5", "--out", str(out), "--threads", "1", "--engine", "vllm",
            "--vllm-dtype", "float32", "--vllm-max-model-len", "256", "--vllm-enforce-eager"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["engine"] == "vllm" and config["vllm_options"] == {"dtype": "float32", "max_model_len": 256,
                                                                     "enforce_eager": True}
    pool, search = read_records(out, "pool.jsonl"), read_records(out, "search.jsonl")
    assert len(pool) == 2 and len(search) == 2 * 2 * 2
    for r in pool:
        assert len(r["responses"]) == 4 and "logprob_mean" not in r and all(0 <= v <= 1 for v in r["orm"])
    for r in search:
        assert len(r["steps"]) <= 3 and r["response"] == "\n".join(r["steps"]) and r["generated_tokens"] > 0
    before = (out / "search.jsonl").read_text()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and (out / "search.jsonl").read_text() == before
    other = CliRunner().invoke(main, [*args[:-5], "--engine", "hf"])
    assert other.exit_code == 2 and ("'engine'" in other.output or "'vllm_options'" in other.output)


def test_rft_samples_with_vllm(tiny_model_dir, vllm_pqv, tmp_path):
    """`pavkit llm rft --engine vllm`: vLLM samples the base (here nothing is correct: the one-line refusal after
    sampling), the run records its engine and options; --vllm-* without --engine vllm is refused."""
    del vllm_pqv  # vllm imported (or the test skipped) first
    from click.testing import CliRunner

    from pavkit.cli import main

    problems = _problems(tmp_path)
    args = ["llm", "rft", "--policy", str(tiny_model_dir), "--problems", str(problems), "--samples", "2",
            "--max-new-tokens", "8", "--out", str(tmp_path / "rft")]
    res = CliRunner().invoke(main, [*args, "--engine", "vllm", "--vllm-dtype", "float32", "--vllm-max-model-len",
                                    "256", "--vllm-enforce-eager"])
    assert res.exit_code == 2 and "none of the 4 samples" in res.output, res.output
    config = json.loads((tmp_path / "rft" / "config.json").read_text())
    assert config["engine"] == "vllm" and config["vllm_options"]["max_model_len"] == 256
    bad = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "rft2"), "--vllm-dtype", "float32"])
    assert bad.exit_code == 2 and "--vllm-dtype: only with --engine vllm" in bad.output


def test_vllm_engine_takes_new_weights(tiny_model_dir, vllm_pqv):
    """VLLMEngine.load_weights: after the weights of a perturbed copy, greedy responses are that copy's (HFEngine)."""
    del vllm_pqv  # vllm imported (or the test skipped) first
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pavkit.llm.engines import HFEngine, VLLMEngine

    opts = {"max_step_tokens": 8, "max_new_tokens": 12, "temperature": 0.0}
    engine = VLLMEngine.from_path(tiny_model_dir, dtype="float32", max_model_len=256, enforce_eager=True, **opts)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # larger noise makes near-ties that float rounding can flip
    prompts = ["Q: What is 3+4*2?\n", "Q: What is 5+1?\n"]
    before = [[c.text for c in g] for g in engine.complete(prompts, 1, seed=0)]
    engine.load_weights(model.state_dict().items())
    after = [[c.text for c in g] for g in engine.complete(prompts, 1, seed=0)]
    want = [[c.text for c in g] for g in HFEngine(model, AutoTokenizer.from_pretrained(tiny_model_dir),
                                                  **opts).complete(prompts, 1, seed=0)]
    assert after == want and after != before


@pytest.mark.slow
def test_rl_samples_the_current_policy_with_vllm(tiny_model_dir, vllm_pqv, tmp_path):
    """engine "vllm": before each sampling the colocated engine holds the policy's current weights; the CLI runs
    and resumes a run on it."""
    del vllm_pqv
    from click.testing import CliRunner

    from pavkit.cli import main
    from pavkit.llm.organism import organism_problems
    from pavkit.llm.rl import RLConfig, init_state, policy_sampler, rl_iteration

    cfg = RLConfig(policy=str(tiny_model_dir), alpha=0.0, iters=2, problems_per_iter=2, group=2, final_samples=2,
                   pass_ns=(1, 2), max_new_tokens=8, engine="vllm",
                   vllm_options={"max_model_len": 512, "enforce_eager": True})
    state = init_state(cfg, device="cpu")
    rl_iteration(state, cfg, organism_problems(4, 0, "train"), None)
    engine = policy_sampler(state, cfg)
    served = engine.llm.apply_model(lambda m: float(m.model.embed_tokens.weight.double().sum()))[0]
    assert served == pytest.approx(float(state.policy.model.embed_tokens.weight.double().sum()), rel=1e-6)
    assert state.engine_weights == state.iteration == 1
    del state, engine

    args = ["llm", "rl", "--policy", str(tiny_model_dir), "--alpha", "0", "--iters", "2", "--problems-per-iter", "2",
            "--group", "2", "--eval-problems", "organism:test:0:2", "--eval-every", "1", "--final-samples", "2",
            "--max-new-tokens", "8", "--out", str(tmp_path / "rl"), "--engine", "vllm", "--vllm-max-model-len",
            "512", "--vllm-enforce-eager"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    records = [json.loads(x) for x in (tmp_path / "rl" / "train.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [0, 1, 2] and all("accuracy" in r for r in records)
    assert json.loads((tmp_path / "rl" / "config.json").read_text())["engine"] == "vllm"
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and len((tmp_path / "rl" / "train.jsonl").read_text().splitlines()) == 3


@pytest.mark.slow
def test_rl_with_the_vllm_verifier_gives_the_hf_records(tiny_model_dir, pqv_dir, vllm_pqv, tmp_path):
    """--verifier-engine vllm scores the same V^μ (to ~1e-7), so 2 PAV-RL iterations give the hf run's records
    (losses and step weights to float rounding); the run resumes with the other verifier engine."""
    del vllm_pqv  # built (or skipped) first: the run builds its own
    from click.testing import CliRunner

    from pavkit.cli import main
    from pavkit.runs import read_records

    def rl(engine: str, out, vllm=("--vllm-enforce-eager",)):
        vllm = list(vllm) if engine == "vllm" else []
        res = CliRunner().invoke(main, [
            "llm", "rl", "--policy", str(tiny_model_dir), "--verifier", str(pqv_dir), "--alpha", "1", "--prover",
            "bok:4", "--iters", "2", "--problems-per-iter", "2", "--group", "2", "--eval-problems",
            "organism:test:0:2", "--eval-every", "0", "--final-samples", "2", "--max-new-tokens", "8", "--out",
            str(out), "--threads", "1", "--verifier-engine", engine, *vllm])
        assert res.exit_code == 0, res.output
        return read_records(out)

    hf, vllm = rl("hf", tmp_path / "hf"), rl("vllm", tmp_path / "vllm")
    assert [r["iteration"] for r in vllm] == [0, 1, 2]
    assert any(r.get("mean_abs_adv_mu", 0) > 0 for r in vllm)  # the verifier did weigh steps
    for a, b in zip(hf, vllm, strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            if key != "seconds" and isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
            elif key != "seconds":
                assert b[key] == value, key
    assert json.loads((tmp_path / "vllm" / "config.json").read_text())["verifier_engine"] == "vllm"
    assert len(rl("vllm", tmp_path / "hf", vllm=())) == 3  # a resume may switch engines (RL_NOT_COMPARED)


@pytest.mark.slow
def test_diagnose_provers_samples_with_vllm(tiny_model_dir, vllm_pqv, tmp_path):
    """diagnose-provers --engine vllm: states, children and rollouts from vLLM, a temp: prover over the same LLM;
    bok:1 is π itself on any engine (equal terms), and the run resumes with nothing to do."""
    del vllm_pqv
    from click.testing import CliRunner

    from pavkit.cli import main
    from pavkit.runs import read_records

    out = tmp_path / "dg"
    args = ["llm", "diagnose-provers", "--policy", str(tiny_model_dir), "--problems", str(_problems(tmp_path)),
            "--provers", "bok:1,pi,temp:0.5", "--children", "2", "--rollouts", "4", "--max-step-tokens", "8",
            "--max-new-tokens", "24", "--prompt-format", "plain", "--out", str(out), "--engine", "vllm",
            "--vllm-enforce-eager", "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    rows = {r["prover"]: r for r in json.loads(res.stdout.strip().splitlines()[-1])["provers"]}
    assert list(rows) == ["bok:1", "pi", "temp:0.5"]
    assert rows["bok:1"]["distinguishability"] == pytest.approx(rows["pi"]["distinguishability"])
    assert [len(r["children"]) for r in read_records(out, "states.jsonl")] == [2, 2]
    assert json.loads((out / "config.json").read_text())["engine"] == "vllm"
    before = (out / "states.jsonl").read_text()
    assert CliRunner().invoke(main, args).exit_code == 0 and (out / "states.jsonl").read_text() == before


@pytest.mark.slow
def test_eval_verifier_on_vllm(tiny_model_dir, pqv_dir, vllm_pqv, tmp_path):
    """eval-verifier: --verifier-engine vllm scores the hf run's solutions to 1e-5; --engine vllm samples the
    organism: solutions with vLLM."""
    del vllm_pqv
    from click.testing import CliRunner

    from pavkit.cli import main
    from pavkit.runs import read_records

    def run(name: str, *engines: str):
        out = tmp_path / name
        res = CliRunner().invoke(main, [
            "llm", "eval-verifier", "--verifier", str(pqv_dir), "--data", "organism:test:0:4", "--policy",
            str(tiny_model_dir), "--samples", "2", "--max-new-tokens", "24", "--prompt-format", "plain", "--out",
            str(out), *engines, "--json"])
        assert res.exit_code == 0, res.output
        return read_records(out, "scores.jsonl"), json.loads((out / "config.json").read_text())

    hf, _ = run("hf")
    scored, config = run("scored", "--verifier-engine", "vllm", "--vllm-enforce-eager")
    assert config["verifier_engine"] == "vllm" and len(hf) == len(scored) > 0
    for a, b in zip(hf, scored, strict=True):
        assert (a["problem_id"], a["first_error"]) == (b["problem_id"], b["first_error"])
        np.testing.assert_allclose(b["values"], a["values"], atol=1e-5)
    sampled, config = run("sampled", "--engine", "vllm", "--vllm-enforce-eager")
    assert config["engine"] == "vllm" and sampled and all(len(r["values"]) >= 2 for r in sampled)
