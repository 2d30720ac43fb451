"""SamplingConfig: the sampling fields the LLM configs share, stated once, and old run directories still resume."""

import dataclasses

import pytest

from pavkit import runs
from pavkit.llm.label import LabelConfig
from pavkit.llm.rl import RFT_ADDED_FIELDS, RFTConfig, RLConfig
from pavkit.llm.sampling import SamplingConfig
from pavkit.llm.search import SearchConfig

CONFIGS = {
    LabelConfig: {"model": "m", "prover": "bok:4", "problems": "p", "problems_sha256": "0"},
    SearchConfig: {"policy": "m", "orm": "o", "pqv": "q"},
    RLConfig: {"policy": "m", "alpha": 0.0},
    RFTConfig: {"policy": "m"},
}
SHARED = [f.name for f in dataclasses.fields(SamplingConfig)]


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_llm_config_has_the_shared_fields_with_one_help_text(cls):
    assert issubclass(cls, SamplingConfig)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for base in dataclasses.fields(SamplingConfig):
        assert fields[base.name].metadata == base.metadata, (cls.__name__, base.name)


@pytest.mark.parametrize("cls", CONFIGS)
@pytest.mark.parametrize("bad", [{"temperature": 0.0}, {"max_new_tokens": 0}, {"batch_size": 0}, {"delimiter": ""},
                                 {"prompt_format": "markdown"}])
def test_every_llm_config_checks_the_shared_fields(cls, bad):
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        cls(**CONFIGS[cls], **bad)


def test_defaults_gsm8k_commands_and_organism_rl():
    label = LabelConfig(**CONFIGS[LabelConfig])
    rl, rft = RLConfig(**CONFIGS[RLConfig]), RFTConfig(**CONFIGS[RFTConfig])
    assert (label.max_new_tokens, label.batch_size, label.strict) == (256, 32, False)
    for cfg in (rl, rft):
        assert (cfg.max_new_tokens, cfg.batch_size, cfg.strict, cfg.temperature) == (160, 128, True, 1.0)
    assert rl.engine_options() == {"delimiter": "\n", "max_new_tokens": 160, "temperature": 1.0, "batch_size": 128}


def test_config_json_keys_unchanged_apart_from_rft_temperature():
    """The layout stays flat: the keys written before SamplingConfig existed (RFT gained only temperature)."""
    rft_keys = {"policy", "problems", "samples", "epochs", "batch", "lr", "warmup", "max_new_tokens", "batch_size",
                "delimiter", "prompt_format", "strict", "symbolic", "seed"}
    assert set(RFTConfig(**CONFIGS[RFTConfig]).to_dict()) == rft_keys | set(RFT_ADDED_FIELDS)
    assert set(SHARED) <= set(RLConfig(**CONFIGS[RLConfig]).to_dict())


def test_old_rft_run_without_temperature_resumes_and_a_new_temperature_does_not(tmp_path):
    old = RFTConfig(**CONFIGS[RFTConfig]).to_dict()
    del old["temperature"]
    runs.open_run(tmp_path, old, command=[])
    assert runs.open_run(tmp_path, RFTConfig(**CONFIGS[RFTConfig]).to_dict(), command=[], defaults=RFT_ADDED_FIELDS)
    hotter = RFTConfig(**CONFIGS[RFTConfig], temperature=0.7).to_dict()
    with pytest.raises(runs.RunConfigMismatch, match="'temperature' is 1.0 there but 0.7 now"):
        runs.open_run(tmp_path, hotter, command=[], defaults=RFT_ADDED_FIELDS)
