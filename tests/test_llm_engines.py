"""One conformance suite for every generation engine (pavkit.llm.engines), parametrised over the engines.

"hf" runs HFEngine on the tiny trained Llama (fast) in the main venv; "vllm" runs VLLMEngine on the same folder
and is skipped unless vllm imports (ci/test-vllm.sh runs it in .venv-vllm, with PAVKIT_REQUIRE_VLLM=1 turning
the skip into a failure). HF-only tests check the KV-reuse path against plain re-prefilling, and one slow test
runs HFEngine on the packaged SmolLM2.
"""

import importlib.util
import os
from contextlib import contextmanager

import pytest

from pavkit.llm.engines import (
    Continuation,
    EngineStats,
    HFEngine,
    Policy,
    VLLMEngine,
    at_temperature,
    cut_at_delimiter,
    eos_token_ids,
    vllm_continuation,
    vllm_llm_kwargs,
)

PREFIXES = [  # different lengths, so batches are left-padded; the first two end with the "\n" delimiter
    "Q: What is 3+4*5?\n",
    "Q: What is 12+4*5?\nStep: 4*5=20\n",
    "Q: What is 7+2*2?",
]


def _vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def _make_engine(kind, model_dir):
    if kind == "hf":
        return HFEngine.from_path(model_dir, max_step_tokens=16, max_new_tokens=32, batch_size=32)
    if not _vllm_available():
        if os.environ.get("PAVKIT_REQUIRE_VLLM"):
            pytest.fail("PAVKIT_REQUIRE_VLLM is set but vllm is not importable")
        pytest.skip("vllm not installed (ci/test-vllm.sh tests VLLMEngine in .venv-vllm)")
    # vLLM's own defaults otherwise (in particular max_num_batched_tokens, the step budget of
    # test_prefill_above_the_step_budget)
    return VLLMEngine.from_path(model_dir, max_step_tokens=16, max_new_tokens=32, dtype="bfloat16",
                                max_model_len=512, enforce_eager=True, seed=0)


@pytest.fixture(scope="module", params=["hf", "vllm"])
def engine(request, tiny_model_dir):
    return _make_engine(request.param, tiny_model_dir)


@contextmanager
def configured(engine, **attrs):
    """Temporarily set engine attributes (temperature, delimiter, max_*_tokens, ...); the engine is shared."""
    old = {k: getattr(engine, k) for k in attrs}
    for k, v in attrs.items():
        setattr(engine, k, v)
    try:
        yield engine
    finally:
        for k, v in old.items():
            setattr(engine, k, v)


def _texts(groups):
    return [[c.text for c in g] for g in groups]


def test_is_a_policy(engine):
    assert isinstance(engine, Policy)
    assert isinstance(engine.stats, EngineStats)


def test_at_temperature_samples_the_same_weights_at_another_temperature(engine):
    """The temp:T prover's engine: the same weights (nothing loaded), its own temperature and stats; T = 0 is
    greedy, so every seed gives the first engine's greedy continuations."""
    cold = at_temperature(engine, 0.0)
    assert getattr(cold, "model", None) is getattr(engine, "model", None) and \
        getattr(cold, "llm", None) is getattr(engine, "llm", None)
    assert (cold.temperature, engine.temperature) == (0.0, 1.0) and cold.stats is not engine.stats
    with configured(engine, temperature=0.0):
        greedy = _texts(engine.extend(PREFIXES, 1, seed=0))
    assert _texts(cold.extend(PREFIXES, 1, seed=1)) == _texts(cold.extend(PREFIXES, 1, seed=2)) == greedy
    assert cold.stats.calls == 2
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        at_temperature(engine, -1.0)


@pytest.mark.parametrize("method", ["extend", "complete"])
def test_grouping_and_counts(engine, method):
    out = getattr(engine, method)(PREFIXES, 3, seed=0)
    assert len(out) == len(PREFIXES)
    assert all(len(g) == 3 for g in out)
    assert all(isinstance(c, Continuation) and isinstance(c.text, str) for g in out for c in g)
    assert all(1 <= c.num_tokens for g in out for c in g)
    assert getattr(engine, method)([], 3, seed=0) == []
    with pytest.raises(ValueError):
        getattr(engine, method)(PREFIXES, 0, seed=0)
    with pytest.raises(TypeError):
        getattr(engine, method)("a single string", 2, seed=0)


@pytest.mark.parametrize("delimiter", ["\n", "\n\n", "=", "Step"])
def test_extend_is_complete_cut_at_delimiter(engine, delimiter):
    """Greedy: the next step is exactly the greedy full continuation up to its first delimiter.

    The tiny tokenizer merges across whitespace ("?\\nStep: ", "\\n\\nAnswer: ", "=20"), so delimiters are often
    generated inside longer tokens or split over several tokens; the cut must still be exact.
    """
    with configured(engine, temperature=0.0, delimiter=delimiter, max_step_tokens=32, max_new_tokens=32):
        steps = engine.extend(PREFIXES, 2, seed=0)
        full = engine.complete(PREFIXES, 1, seed=0)
    for step_group, (whole,) in zip(steps, full, strict=True):
        assert step_group[0] == step_group[1]  # greedy: all c continuations agree
        step = step_group[0]
        head, found = cut_at_delimiter(whole.text, delimiter)
        assert delimiter not in step.text
        if found:
            assert step.text == head and not step.finished
            assert step.num_tokens <= whole.num_tokens
        elif whole.finished:
            assert step.text == whole.text and step.finished and step.num_tokens == whole.num_tokens


def test_sampled_steps_never_contain_the_delimiter(engine):
    with configured(engine, temperature=1.0, max_step_tokens=16):
        out = engine.extend(PREFIXES, 8, seed=3)
    for g in out:
        for c in g:
            assert engine.delimiter not in c.text and c.num_tokens <= 16


def test_finished_flags(engine):
    """finished means EOS: unfinished completions used the whole budget; EOS text never appears."""
    with configured(engine, temperature=1.0, max_new_tokens=48):
        out = engine.complete(PREFIXES, 6, seed=1)
    conts = [c for g in out for c in g]
    assert any(c.finished for c in conts), "the tiny model is trained to emit EOS; some rollout should end"
    eos = getattr(engine, "eos_ids", None) or {engine.llm.get_tokenizer().eos_token_id}
    for c in conts:
        assert c.num_tokens <= 48 and "</s>" not in c.text
        if not c.finished:
            assert c.num_tokens == 48
        # the sampled ids (RL takes log-probs on them): one per counted token, EOS last iff finished
        assert len(c.token_ids) == c.num_tokens and (c.token_ids[-1] in eos) == c.finished
    with configured(engine, max_new_tokens=2):
        short = engine.complete(PREFIXES, 4, seed=1)
    assert all(c.num_tokens == 2 or (c.finished and c.num_tokens <= 2) for g in short for c in g)


@pytest.mark.parametrize("method", ["extend", "complete"])
def test_same_seed_same_outputs_and_seeds_differ(engine, method):
    call = getattr(engine, method)
    a, b, c = call(PREFIXES, 4, seed=7), call(PREFIXES, 4, seed=7), call(PREFIXES, 4, seed=8)
    assert a == b
    assert _texts(a) != _texts(c)


def test_n_continuations_are_not_copies(engine):
    """Sampled continuations of one prefix differ from each other (the n rows are independent samples)."""
    with configured(engine, temperature=1.0, max_new_tokens=32):
        out = engine.complete(PREFIXES[:1], 8, seed=0)
    assert len(set(_texts(out)[0])) > 1


def test_batched_equals_alone_greedy(engine):
    """Left-padded batches of different-length prefixes give each prefix what it would get alone."""
    with configured(engine, temperature=0.0, max_new_tokens=24):
        batched = engine.complete(PREFIXES, 2, seed=0)
        alone = [engine.complete([p], 1, seed=0)[0][0] for p in PREFIXES]
    for g, a in zip(batched, alone, strict=True):
        assert g[0] == g[1] == a


VLLM_CPU_STEP_BUDGET = 4096  # vLLM's default max_num_batched_tokens on CPU


def test_prefill_above_the_step_budget(engine):
    """One call whose prompts × n exceed vLLM's default 4096-token step budget, so vLLM would split a prefill
    over scheduler steps; with per-request seeds that crashed vLLM on CPU ("CPU Generator does not use
    offset"). Every continuation comes back, and the same seed gives the same outputs."""
    from pavkit.llm.label import engine_tokenizer

    prefixes = [f"Q: What is {i}+{i % 7}*{i % 5}?\nStep: " + "x " * 40 for i in range(16)]
    n = 16
    prompt_tokens = sum(len(x) for x in engine_tokenizer(engine)(prefixes)["input_ids"])
    assert prompt_tokens * n > VLLM_CPU_STEP_BUDGET
    with configured(engine, temperature=1.0, max_new_tokens=4):
        out = engine.complete(prefixes, n, seed=0)
        again = engine.complete(prefixes[:2], n, seed=0)
    assert [len(g) for g in out] == [n] * len(prefixes)
    assert all(1 <= c.num_tokens <= 4 for g in out for c in g)
    assert len(again) == 2 and all(len(g) == n for g in again)


@pytest.fixture(scope="module", params=["hf", "vllm"])
def eos_mismatch_engine(request, eos_mismatch_dir):
    return _make_engine(request.param, eos_mismatch_dir)


def test_eos_of_tokenizer_and_generation_config(eos_mismatch_engine):
    """Tokenizer eos = BOS (1), generation-config eos = "</s>" (2), as in SmolLM2 converted from GGUF: both ids
    end a response in both engines, and a response that ends with "</s>" is finished (vLLM reported it as
    stop_reason 2 and pavkit counted it unfinished: 0 of 48 finished on SmolLM2 where HF said 10-11)."""
    eng = eos_mismatch_engine
    with configured(eng, temperature=1.0, max_new_tokens=48):
        out = eng.complete(PREFIXES, 6, seed=1)
    conts = [c for g in out for c in g]
    assert any(c.token_ids[-1] == 2 for c in conts), "the tiny model is trained to emit </s>"
    for c in conts:
        assert c.finished == (c.token_ids[-1] in {1, 2})
        assert c.finished or c.num_tokens == 48
    assert eng.eos_ids == {1, 2}


def test_vllm_options_of_a_label_run_reach_vllm(tiny_model_dir):
    """`pavkit llm label --engine vllm --vllm-dtype float32 ...` → LabelConfig.vllm_options → vllm.LLM; on CPU
    chunked prefill is off (vllm_llm_kwargs)."""
    from pavkit.llm.label import LabelConfig, load_engines

    if not _vllm_available():
        _make_engine("vllm", tiny_model_dir)  # fails or skips the same way as the engine fixture
    cfg = LabelConfig(model=str(tiny_model_dir), prover="bok:4", problems="p", problems_sha256="0", n_cov=1, n_mc=1,
                      engine="vllm", vllm_options={"dtype": "float32", "max_model_len": 256, "enforce_eager": True})
    engine, prover_engine = load_engines(cfg)
    vllm_config = engine.llm.llm_engine.vllm_config
    assert prover_engine is None and str(vllm_config.model_config.dtype) == "torch.float32"
    assert vllm_config.model_config.max_model_len == 256
    assert not vllm_config.scheduler_config.enable_chunked_prefill
    assert len(engine.complete(PREFIXES[:1], 2, seed=0)[0]) == 2


def test_stats_count_tokens(engine):
    engine.stats.reset()
    out = engine.complete(PREFIXES, 3, seed=0)
    steps = engine.extend(PREFIXES, 2, seed=0)
    s = engine.stats
    assert s.calls == 2 and s.prefixes == 2 * len(PREFIXES) and s.sequences == 5 * len(PREFIXES)
    assert s.generated_tokens == sum(c.num_tokens for g in out + steps for c in g)
    assert 0 < s.prompt_tokens
    engine.stats.reset()
    assert engine.stats.as_dict() == dict.fromkeys(engine.stats.as_dict(), 0)


# ------------------------------------------------------------------------------------------- HFEngine only


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    return HFEngine.from_path(tiny_model_dir, max_step_tokens=16, max_new_tokens=32)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_kv_reuse_matches_reprefill(hf, temperature):
    """Prefill once + expand the cache n times gives the same outputs as prefilling every row from scratch.

    At temperature 0 this is the same argmax path; at temperature 1 the same seed draws the same samples, which
    holds only if the next-token distributions agree at every step.
    """
    with configured(hf, temperature=temperature, reuse_prefix_cache=True):
        reused = hf.complete(PREFIXES, 4, seed=5)
        reused_steps = hf.extend(PREFIXES, 4, seed=5)
    with configured(hf, temperature=temperature, reuse_prefix_cache=False):
        fresh = hf.complete(PREFIXES, 4, seed=5)
        fresh_steps = hf.extend(PREFIXES, 4, seed=5)
    assert _texts(reused) == _texts(fresh) and _texts(reused_steps) == _texts(fresh_steps)
    assert [[c.num_tokens for c in g] for g in reused] == [[c.num_tokens for c in g] for g in fresh]


def test_kv_reuse_prefills_each_prefix_once(hf):
    """prompt_tokens: (L - 1) + n per prefix with reuse, n * L without (n <= batch_size)."""
    lengths = [len(x) for x in hf.tokenizer(PREFIXES)["input_ids"]]
    n = 5
    for reuse, expected in [(True, sum(L - 1 + n for L in lengths)), (False, n * sum(lengths))]:
        with configured(hf, reuse_prefix_cache=reuse):
            hf.stats.reset()
            hf.complete(PREFIXES, n, seed=0)
            assert hf.stats.prompt_tokens == expected


def test_small_batch_size_splits_rows(hf):
    """n larger than batch_size is split into several generate calls; counts and greedy outputs unchanged."""
    with configured(hf, temperature=0.0):
        big = hf.complete(PREFIXES, 5, seed=0)
        with configured(hf, batch_size=2):
            small = hf.complete(PREFIXES, 5, seed=0)
    assert small == big


def test_rng_state_is_restored(hf):
    """Seeding a call does not reseed the caller's global torch RNG."""
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    hf.complete(PREFIXES[:1], 2, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_cut_at_delimiter():
    assert cut_at_delimiter("a = 3\nb", "\n") == ("a = 3", True)
    assert cut_at_delimiter("abc", "\n") == ("abc", False)
    assert cut_at_delimiter("\n\nx", "\n\n") == ("", True)
    assert cut_at_delimiter("abc", "") == ("abc", False)


def test_eos_token_ids_is_the_union():
    from types import SimpleNamespace

    assert eos_token_ids(SimpleNamespace(eos_token_id=2), SimpleNamespace(eos_token_id=1)) == {1, 2}
    assert eos_token_ids({"eos_token_id": [2, 7]}, SimpleNamespace(eos_token_id=None), None) == {2, 7}
    with pytest.raises(ValueError):
        eos_token_ids({"pad_token_id": 0}, SimpleNamespace(eos_token_id=None))


def test_vllm_continuation_finished():
    """vLLM's stop_reason: None = its own EOS; an int = a stop token id (EOS when in the set); a str = a stop
    string (the delimiter)."""
    from types import SimpleNamespace

    def out(finish, reason, ids=(5, 2)):
        return SimpleNamespace(finish_reason=finish, stop_reason=reason, text="a\nb", token_ids=list(ids))

    eos = {1, 2}
    assert vllm_continuation(out("stop", None), None, eos).finished
    assert vllm_continuation(out("stop", 2), None, eos).finished
    assert not vllm_continuation(out("stop", 9), None, eos).finished
    step = vllm_continuation(out("stop", "\n", (5, 6)), "\n", eos)
    assert not step.finished and step.text == "a" and step.token_ids == (5, 6) and step.num_tokens == 2
    assert not vllm_continuation(out("length", None), None, eos).finished


def test_vllm_llm_kwargs():
    """Prefix caching on; on CPU chunked prefill off (split prefills crash seeded requests there) unless asked."""
    assert vllm_llm_kwargs({}, on_cpu=True) == {"enable_prefix_caching": True, "enable_chunked_prefill": False}
    assert vllm_llm_kwargs({"dtype": "float32"}, on_cpu=False) == {"enable_prefix_caching": True,
                                                                   "dtype": "float32"}
    assert vllm_llm_kwargs({"enable_chunked_prefill": True}, on_cpu=True)["enable_chunked_prefill"] is True
    assert vllm_llm_kwargs({"max_num_batched_tokens": 8192, "max_model_len": 4096}, on_cpu=True)[
        "max_num_batched_tokens"] == 8192
    with pytest.raises(ValueError, match="max_num_batched_tokens"):
        vllm_llm_kwargs({"max_num_batched_tokens": 1024, "max_model_len": 4096}, on_cpu=True)


def test_from_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        HFEngine.from_path(tmp_path / "missing.gguf")
    with pytest.raises(FileNotFoundError):
        HFEngine.from_path(tmp_path / "nothing_here")


@pytest.mark.slow
def test_smollm2_chat_steps(smollm2_dir):
    """The real SmolLM2: chat-template prefixes, greedy step == greedy completion cut at the delimiter."""
    eng = HFEngine.from_path(smollm2_dir, max_step_tokens=16, max_new_tokens=16, temperature=0.0)
    prompt = eng.tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples does he have?"}],
        tokenize=False, add_generation_prompt=True)
    prefixes = [prompt, prompt + "Tom starts with 3 apples.\n"]
    steps, full = eng.extend(prefixes, 1, seed=0), eng.complete(prefixes, 1, seed=0)
    for (s,), (f,) in zip(steps, full, strict=True):
        assert "\n" not in s.text and f.text.strip()
        head, found = cut_at_delimiter(f.text, "\n")
        assert s.text == head if found else s.text == f.text
    with configured(eng, temperature=1.0):
        sampled = eng.complete(prefixes[:1], 3, seed=0)
    assert len(set(_texts(sampled)[0])) > 1
    assert eng.stats.generated_tokens == sum(c.num_tokens for g in steps + full + sampled for c in g)


# ------------------------------------------------------------------- HFEngine: decoding loop vs `generate`


@pytest.fixture(scope="module")
def hf_generate(hf):
    """The previous implementation (transformers `generate`, DynamicCache) on the same model: the reference."""
    return HFEngine(hf.model, hf.tokenizer, max_step_tokens=16, max_new_tokens=32, use_generate=True)


@pytest.mark.parametrize("reuse", [True, False])
@pytest.mark.parametrize("delimiter", ["\n", "\n\n", "=", "Step"])
def test_decode_loop_equals_generate_greedy(hf, hf_generate, delimiter, reuse):
    """Greedy: the loop (preallocated cache, rows leaving the batch, GQA heads broadcast by SDPA, delimiter
    decoded on candidate tokens only) gives exactly what `generate` gives, stops and token ids included.

    The tiny BPE merges the delimiters into longer tokens or splits them ("\\n\\n"), and rows end at different
    steps, so rows leave the batch while others run on.
    """
    attrs = {"temperature": 0.0, "delimiter": delimiter, "max_step_tokens": 32, "max_new_tokens": 32,
             "reuse_prefix_cache": reuse}
    with configured(hf, **attrs), configured(hf_generate, **attrs):
        for method in ("extend", "complete"):
            new = getattr(hf, method)(PREFIXES, 2, seed=0)
            assert new == getattr(hf_generate, method)(PREFIXES, 2, seed=0)
    lengths = {c.num_tokens for g in new for c in g}
    assert len(lengths) > 1, "rows of different lengths are what exercises rows leaving the batch"
    assert hf.model.config._attn_implementation == "sdpa"  # restored after sampling


def _all_tokens_are_candidates(engine):
    """Turn the candidate filter off: every row's text is decoded at every step (`_StopTracker`'s check)."""
    import torch

    filt = engine._candidates("\n")
    engine._stop_candidates["\n"] = torch.ones_like(filt)
    return filt


def test_candidate_filter_stops_where_the_text_check_does_bpe(hf):
    """Sampled steps stop at the same tokens with the filter on as with the full per-step text check, on a BPE
    where "\\n" also sits inside merged tokens ("?\\nStep: ")."""
    engine = HFEngine(hf.model, hf.tokenizer, max_step_tokens=32, temperature=1.0)
    filtered = engine.extend(PREFIXES, 8, seed=11)
    filt = _all_tokens_are_candidates(engine)
    merged = [i for i in filt.nonzero().flatten().tolist() if engine.tokenizer.decode([i]) != "\n"]
    assert merged, "the tiny BPE should have tokens that merge the delimiter with other text"
    assert engine.extend(PREFIXES, 8, seed=11) == filtered
    assert any(not c.finished and c.num_tokens < 32 for g in filtered for c in g)  # some stopped at a delimiter


def test_candidate_filter_is_the_delimiter_token_on_a_character_tokenizer():
    """On the organism's character tokenizer "\\n" is one token and the only candidate; stops are unchanged."""
    from pavkit.llm.organism import OrganismConfig, init_model, organism_tokenizer

    tok = organism_tokenizer()
    engine = HFEngine(init_model(OrganismConfig(hidden=32, layers=1, heads=2, intermediate=64), tok), tok,
                      max_step_tokens=32, temperature=1.0)
    prefixes = ["Mia has 23 apples. She gets 7.\n", "Tom has 5 pens.\ngets 2: 5 + 2 = 7\n"]
    filtered = engine.extend(prefixes, 16, seed=2)
    filt = _all_tokens_are_candidates(engine)
    assert filt.nonzero().flatten().tolist() == tok("\n", add_special_tokens=False)["input_ids"]
    assert engine.extend(prefixes, 16, seed=2) == filtered
    assert any(not c.finished and c.num_tokens < 32 for g in filtered for c in g)


def test_sample_tokens_distribution():
    """Inverse-CDF sampling draws softmax(logits / T): frequencies within 5 SE, never a -inf token."""
    import torch

    from pavkit.llm.engines import _sample_tokens

    logits = torch.tensor([0.0, 1.0, -1.0, float("-inf"), 2.0])
    n = 20000
    torch.manual_seed(0)
    for temperature in (1.0, 0.5):
        draws = _sample_tokens(logits.expand(n, -1), temperature)
        p = torch.softmax(logits / temperature, -1)
        freq = torch.bincount(draws, minlength=5).double() / n
        assert freq[3] == 0
        assert torch.all((freq - p).abs() <= 5 * (p * (1 - p) / n).sqrt() + 1e-12)
    assert _sample_tokens(logits.expand(3, -1), 0.0).tolist() == [4, 4, 4]


def test_preallocated_cache_matches_dynamic_cache():
    """Update, repeat rows and select rows: the same keys/values as DynamicCache; over capacity raises."""
    import torch
    from transformers import DynamicCache, LlamaConfig

    from pavkit.llm.engines import _preallocated_cache

    config = LlamaConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1)
    ours, ref = _preallocated_cache(config, capacity=8), DynamicCache(config=config)
    torch.manual_seed(0)
    steps = [(torch.randn(2, 1, n, 8), torch.randn(2, 1, n, 8)) for n in (3, 1)]
    for i, (k, v) in enumerate(steps):
        if i == 1:
            for c in (ours, ref):
                c.batch_repeat_interleave(3)
            k, v = k.repeat_interleave(3, 0), v.repeat_interleave(3, 0)
        for layer in range(2):
            a, b = ours.update(k, v, layer), ref.update(k, v, layer)
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    keep = torch.tensor([0, 2, 5])
    for c in (ours, ref):
        c.batch_select_indices(keep)
    assert ours.get_seq_length() == ref.get_seq_length() == 4
    assert torch.equal(ours.layers[1].keys, ref.layers[1].keys)
    with pytest.raises(RuntimeError, match="capacity"):
        ours.update(torch.randn(3, 1, 5, 8), torch.randn(3, 1, 5, 8), 0)
