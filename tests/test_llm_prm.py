"""Public PRMs as verifiers (pavkit.llm.prm): both conventions on tiny models built here, scores by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pavkit.llm.prm import LM_HEAD, TOKEN_CLASSIFICATION, PRMSpec, parse_prm_spec, resolved

TAG = "<step>"
PROMPTS = ["Q: What is 3+4*2?", "Q: What is 5+1*2?", "Q: What is 3+4*2?"]
STEPS = [["Step: 4*2=8", "Step: 3+8=11", "Answer: 11"], ["Step: 1*2=2"], []]


def _tokenizer(extra: list[str]):
    from llm_fixtures import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": extra})
    return tok


def _llama_config(tok, **kw):
    from transformers import LlamaConfig

    return LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                       num_key_value_heads=1, vocab_size=len(tok), max_position_embeddings=512,
                       pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       **kw)


@pytest.fixture(scope="module")
def token_prm_dir(tmp_path_factory):
    """A random LlamaForTokenClassification with 3 labels and a step tag token (Qwen2.5-Math-PRM's shape)."""
    import torch
    from transformers import LlamaForTokenClassification

    torch.manual_seed(0)
    tok = _tokenizer([TAG])
    model = LlamaForTokenClassification(_llama_config(tok, num_labels=3))
    out = tmp_path_factory.mktemp("token-prm")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def lm_prm_dir(tmp_path_factory):
    """A random LlamaForCausalLM with Math-Shepherd's "ки" tag as a token of its own."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(1)
    tok = _tokenizer(["ки"])
    model = LlamaForCausalLM(_llama_config(tok))
    out = tmp_path_factory.mktemp("lm-prm")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _prefix_ids(tok, prompt, steps, sep, before, tag_id):
    """The token ids of one prefix, built by hand from the module docstring's layout."""
    ids = tok.encode(prompt)
    for s in steps:
        ids = ids + tok.encode(sep + s + before, add_special_tokens=False) + [tag_id]
    return ids


def _by_hand(folder, prompt, steps, score, sep, before, tag):
    """p of every prefix s_1 … s_{H+1}, each prefix run ALONE (no batch, no padding): ``score(last logits)``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    tag_id = tok.convert_tokens_to_ids(tag)
    arch = json.loads((folder / "config.json").read_text())["architectures"][0]
    auto = AutoModelForCausalLM if arch.endswith("CausalLM") else AutoModelForTokenClassification
    model = auto.from_pretrained(folder).eval()
    out = []
    for h in range(len(steps) + 1):
        ids = _prefix_ids(tok, prompt, steps[:h], sep, before, tag_id) if h else \
            _prefix_ids(tok, prompt, [""], sep, before, tag_id)  # s_1: a tag right after the prompt
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1].double().numpy()
        out.append(score(logits, tok))
    return np.array(out)


def test_token_classification_prm_scores_equal_a_hand_computation(token_prm_dir):
    from pavkit.llm.verifier import load_verifier

    spec = f"prm:{token_prm_dir}?tag={TAG}&label=2"
    v = load_verifier(spec, device="cpu")
    v.batch_size = 2  # two batches, with padding in each
    got = v.prefix_values(PROMPTS, STEPS)
    for prompt, steps, values in zip(PROMPTS, STEPS, got, strict=True):
        want = _by_hand(token_prm_dir, prompt, steps, lambda z, _t: float(np.exp(z[2]) / np.exp(z).sum()),
                        "", "", TAG)
        np.testing.assert_allclose(values, want, atol=1e-6)
    assert [len(x) for x in got] == [4, 2, 1]
    np.testing.assert_allclose(v.values(PROMPTS, STEPS), [x[-1] for x in got], atol=1e-12)
    assert v.stats.trajectories == 6 and v.stats.forward_tokens > 0


def test_lm_head_prm_scores_equal_a_hand_computation_with_shepherd_defaults(lm_prm_dir):
    from pavkit.llm.verifier import load_verifier

    v = load_verifier(f"prm:{lm_prm_dir}", device="cpu")
    assert (v.spec.tag, v.spec.good, v.spec.bad, v.spec.sep, v.spec.before) == ("ки", "+", "-", "\n", " ")

    def good_vs_bad(z, tok):
        g, b = (tok.encode(t, add_special_tokens=False)[0] for t in "+-")
        return float(1 / (1 + np.exp(z[b] - z[g])))

    got = v.prefix_values(PROMPTS, STEPS)
    for prompt, steps, values in zip(PROMPTS, STEPS, got, strict=True):
        np.testing.assert_allclose(values, _by_hand(lm_prm_dir, prompt, steps, good_vs_bad, "\n", " ", "ки"),
                                   atol=1e-6)


def test_spec_grammar_round_trips_and_names_bad_parts(token_prm_dir, lm_prm_dir):
    spec = parse_prm_spec("prm:some/dir?tag=%3Cextra_0%3E&label=1&sep=%0A")
    assert spec == PRMSpec("some/dir", tag="<extra_0>", label=1, sep="\n")
    assert parse_prm_spec(spec.text) == spec and parse_prm_spec("prm:d?good=+").good == "+"  # '+' is not a space
    for bad, words in [("prm:", "no folder"), ("prm:d?colour=red", "colour"), ("prm:d?label=x", "integer"),
                       ("prm:d?tag", "key=value"), ("model:d", "starts with")]:
        with pytest.raises(ValueError, match=words):
            parse_prm_spec(bad)
    with pytest.raises(ValueError, match="needs its step tag"):
        resolved(parse_prm_spec(f"prm:{token_prm_dir}"))
    with pytest.raises(ValueError, match="good do not apply"):
        resolved(parse_prm_spec(f"prm:{token_prm_dir}?tag=x&good=%2B"))
    with pytest.raises(ValueError, match="label do not apply"):
        resolved(parse_prm_spec(f"prm:{lm_prm_dir}?label=1"))
    full = resolved(parse_prm_spec(f"prm:{token_prm_dir}?tag={TAG}"))
    assert (full.label, full.sep, full.before) == (1, "", "") and resolved(full) == full


def test_prm_errors_name_the_problem(token_prm_dir, lm_prm_dir, tmp_path):
    from pavkit.drivers import UserInputError, check_model, verifier_path
    from pavkit.llm.prm import PRMVerifier, prm_convention

    assert (prm_convention(token_prm_dir), prm_convention(lm_prm_dir)) == (TOKEN_CLASSIFICATION, LM_HEAD)
    with pytest.raises(ValueError, match="not one token"):
        PRMVerifier.from_spec(f"prm:{token_prm_dir}?tag=Step%3A%20", device="cpu")
    with pytest.raises(ValueError, match="label 3 is not one of the model's 3 labels"):
        PRMVerifier.from_spec(f"prm:{token_prm_dir}?tag={TAG}&label=3", device="cpu")
    with pytest.raises(UserInputError, match="--pqv: prm:.*no such model folder"):
        check_model("--pqv", f"prm:{tmp_path / 'nothing'}?tag=x", "verifier")
    with pytest.raises(UserInputError, match="needs its step tag"):
        check_model("--pqv", f"prm:{token_prm_dir}", "verifier")
    recorded = verifier_path(f"prm:{token_prm_dir}?tag={TAG}")
    assert recorded == f"prm:{token_prm_dir.resolve()}?tag=%3Cstep%3E&label=1&sep=&before="


@pytest.mark.slow
def test_search_runs_with_a_prm_as_pqv_and_bok_pav(tiny_model_dir, token_prm_dir, tmp_path):
    """Beam search with PAV (Bo2 of the PRM) and best-of-N with the PRM as ORM: the mechanics end to end."""
    from click.testing import CliRunner

    from pavkit.cli import main
    from pavkit.runs import read_records

    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({"id": "q0", "problem": "Q: What is 3+4*2?", "answer": 11}) + "\n")
    prm = f"prm:{token_prm_dir}?tag={TAG}"
    out = tmp_path / "run"
    result = CliRunner().invoke(main, [
        "llm", "search", "--policy", str(tiny_model_dir), "--orm", prm, "--pqv", prm, "--prover", "bok:2",
        "--problems", str(problems), "--methods", "bon-orm,beam-pav", "--n", "2", "--pool", "2", "--c", "2",
        "--max-steps", "2", "--max-step-tokens", "8", "--max-new-tokens", "16", "--prompt-format", "plain",
        "--out", str(out), "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["pqv"] == f"prm:{token_prm_dir.resolve()}?tag=%3Cstep%3E" \
        "&label=1&sep=&before="
    pool = read_records(out, "pool.jsonl")[0]
    assert len(pool["orm"]) == 2 and all(0 < x < 1 for x in pool["orm"])
    assert {r["method"] for r in read_records(out, "search.jsonl")} == {"beam-pav"}
    assert set(json.loads(result.stdout.strip().splitlines()[-1])["accuracy"]) == {"bon-orm", "beam-pav"}


def test_batches_sort_by_length_and_bound_rows_and_padded_tokens():
    from pavkit.llm.prm import PRMVerifier

    v = object.__new__(PRMVerifier)  # _batches reads only the two bounds
    v.batch_size, v.batch_tokens = 3, 200
    # sorted: rows 2 (3), 0 (5), 3 (50) fit (3 × 50 ≤ 200); row 1 starts a batch (3 rows already); row 4 alone
    assert v._batches([5, 100, 3, 50, 7000]) == [[2, 0, 3], [1], [4]]
    v.batch_size = 8
    assert v._batches([5, 100, 3, 50, 7000]) == [[2, 0, 3], [1], [4]]  # 4 × 100 > 200
    assert v._batches([]) == []
