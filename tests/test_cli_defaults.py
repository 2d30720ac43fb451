"""Every CLI option that sets a config field has the config dataclass's default (until the options are generated
from the dataclasses, issue #15, this is what keeps the two statements of each default from drifting apart)."""

from __future__ import annotations

import codecs
import dataclasses

import pytest

from pavkit.cli import main


def _configs():
    from pavkit.llm.label import LabelConfig
    from pavkit.llm.organism import OrganismConfig
    from pavkit.llm.rl import RFTConfig, RLConfig
    from pavkit.llm.search import SearchConfig
    from pavkit.llm.verifier import VerifierConfig
    from pavkit.toy.rl import RLConfig as ToyRLConfig

    return {("llm", "search"): SearchConfig, ("llm", "label"): LabelConfig, ("llm", "rl"): RLConfig,
            ("llm", "rft"): RFTConfig, ("llm", "organism"): OrganismConfig,
            ("llm", "train-verifier"): VerifierConfig, ("toy", "rl"): ToyRLConfig}


def _as_config_value(option, field_default):
    """The option's default in the field's form: comma lists → tuples, backslash escapes decoded, an unset flag
    is False; None for an option the command derives or requires."""
    value = option.default
    if getattr(option, "is_flag", False) and not isinstance(value, bool):
        return False
    if isinstance(field_default, tuple) and isinstance(value, str):
        return tuple(type(field_default[0])(x) for x in value.split(","))
    if isinstance(field_default, str) and isinstance(value, str) and "\\" in value:
        return codecs.decode(value, "unicode_escape")
    return value


@pytest.mark.parametrize("group, command", list(_configs()))
def test_cli_defaults_equal_the_config_defaults(group, command):
    cls = _configs()[(group, command)]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    checked = 0
    for option in main.commands[group].commands[command].params:
        f = fields.get(option.name)
        if f is None or f.default is dataclasses.MISSING or option.required or option.default is None:
            continue  # not a field, a required value, or one the command derives (e.g. --pass-ns)
        if not isinstance(option.default, str | int | float | bool | tuple):
            continue  # click's UNSET of an optional value
        assert _as_config_value(option, f.default) == f.default, f"{group} {command} --{option.name}"
        checked += 1
    assert checked >= 3
