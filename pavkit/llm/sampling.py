"""How π is sampled and its responses graded: the settings every LLM run shares, stated once.

``LabelConfig``, ``SearchConfig``, ``RLConfig`` and ``RFTConfig`` inherit :class:`SamplingConfig`, so a field's
default, help text, range and check live here. Their config.json stays flat (the same keys as before), so runs
written before this class existed still resume. The GSM8K commands (label, search) keep these defaults; the
organism's RL and RFT sample short strict answers in large batches and re-state only the default
(:func:`default`), never the help.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pavkit.llm.steps import DEFAULT_DELIMITER
from pavkit.options import option

PROMPT_FORMATS = ("auto", "chat", "plain")


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """Sampling and grading settings (keyword-only; subclasses add their own fields).

    Attributes:
        seed: base seed; every engine call's seed derives from it (with the problem, stage, iteration), and so do
            the problem choice and data order of the training commands.
        delimiter: the step delimiter (pavkit.llm.steps); must match the verifiers' labels.
        prompt_format: label.build_prompt's format.
        temperature: π's sampling temperature.
        max_new_tokens: token cap of one sampled response.
        batch_size: most sequences per generate call (it changes the samples, so it is recorded).
        strict: grade only responses with an explicit final-answer marker.
    """

    seed: int = option(0, "Base seed; every engine call's seed derives from it (and the problem, stage, iteration), "
                          "and so do the problem choice and data order of training.", min=0)
    delimiter: str = DEFAULT_DELIMITER
    prompt_format: str = option(
        "auto",
        "chat: the tokenizer's chat template with a step-by-step instruction; plain: the problem text + delimiter; "
        "auto: chat if the tokenizer has a template (must match the verifiers' labels).",
        choices=PROMPT_FORMATS)
    temperature: float = option(1.0, "π's sampling temperature.", min=0, min_open=True)
    max_new_tokens: int = option(256, "Token cap of one sampled response.", min=1)
    batch_size: int = option(
        32,
        "Most sequences per generate call (memory bound; changes the samples, so it is in config.json).",
        min=1)
    strict: bool = option(False, "Grade only responses with an explicit final-answer marker.")

    def __post_init__(self) -> None:
        if self.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"prompt_format must be one of {PROMPT_FORMATS}, got {self.prompt_format!r}")
        if not self.delimiter:
            raise ValueError("the step delimiter must be a non-empty string")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        for name in ("max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def engine_options(self) -> dict[str, Any]:
        """The keyword arguments of an engine (``HFEngine`` / ``VLLMEngine``) that samples with these settings."""
        return {"delimiter": self.delimiter, "max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                "batch_size": self.batch_size}


ENGINES = ("hf", "vllm")


def engine_field(what: str) -> Any:
    """The ``engine`` field of a config whose ``what`` may run on vLLM: "hf" (transformers, ``HFEngine``) by
    default, or "vllm" (``VLLMEngine``; ``pavkit.llm.engines.engine_from_path`` builds either)."""
    return option("hf", f"{what}: transformers (hf) or vLLM (vllm; needs vllm installed; the same seed gives other "
                        "samples than hf; on CPU pavkit turns vLLM's chunked prefill off, see "
                        "pavkit.llm.engines.vllm_llm_kwargs).", choices=ENGINES)


def verifier_engine_field() -> Any:
    """The ``verifier_engine`` field of a config whose learned verifiers may be scored on vLLM."""
    return option(
        "hf",
        "What scores prefixes with the learned verifiers: transformers (hf) or vLLM's pooling runner (vllm: "
        "token-classification verifiers, float32; the same values to ~1e-8, so a resume may switch).",
        choices=ENGINES)


def check_vllm_options(vllm_options: dict, **engines: str) -> None:
    """ValueError when vLLM options are given but no engine field (name → "hf" / "vllm") of the config is vLLM."""
    if vllm_options and "vllm" not in engines.values():
        raise ValueError(f"vLLM options without a vLLM engine: {sorted(vllm_options)} need "
                         + " or ".join(f"{name} 'vllm'" for name in engines)
                         + f", got {', '.join(repr(engine) for engine in engines.values())}")


def default(name: str, value: Any) -> Any:
    """SamplingConfig's field ``name`` (help, range) with another default, for a config whose task needs it."""
    shared = SamplingConfig.__dataclass_fields__[name]
    return dataclasses.field(default=value, metadata=shared.metadata, kw_only=True)
