"""One statement of each setting: a config field's default, help text and valid range, written once on the
dataclass; the CLI generates its click option from it (``cli._field_options``).

A config module writes ``lr: float = option(3e-3, "Peak learning rate ...", min=0, min_open=True)``; the field
behaves as a plain dataclass field with that default, and ``pavkit llm organism --help`` shows the same text and
default. No click here: config modules stay free of the CLI.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def option(default: Any, help: str, *, min: float | None = None, max: float | None = None,  # noqa: A002
           min_open: bool = False, max_open: bool = False, choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field with ``default`` whose metadata describes its command-line option: ``help``, the range
    [min, max] of a number (``min_open`` / ``max_open`` exclude an end), or the ``choices`` of a string."""
    return dataclasses.field(default=default, metadata={"help": help, "min": min, "max": max, "min_open": min_open,
                                                         "max_open": max_open, "choices": choices})
