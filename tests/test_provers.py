"""The one prover grammar (pavkit.provers): every kind parsed by hand, each path's kinds, values from π's."""

from __future__ import annotations

import numpy as np
import pytest

from pavkit.provers import (
    KINDS,
    LABEL_PROVERS,
    PLANTED_PROVERS,
    RL_PROVERS,
    TREE_PROVERS,
    VERIFIER_PROVERS,
    parse_prover,
)


@pytest.mark.parametrize("spec, kinds, want", [
    ("bok:4", KINDS, {"spec": "bok:4", "kind": "bok", "k": 4}),
    (" bok:04 ", KINDS, {"spec": "bok:4", "kind": "bok", "k": 4}),
    ("pi", LABEL_PROVERS, {"spec": "pi", "kind": "pi", "k": 1}),
    ("pi", TREE_PROVERS, {"spec": "pi", "kind": "policy", "name": "pi"}),  # a tree spec's policy named pi
    ("temp:0.70", LABEL_PROVERS, {"spec": "temp:0.7", "kind": "temp", "temperature": 0.7}),
    ("model:/x/y", VERIFIER_PROVERS, {"spec": "model:/x/y", "kind": "model", "path": "/x/y"}),
    ("gamma:10", PLANTED_PROVERS, {"spec": "gamma:10", "kind": "gamma", "gamma": 10.0}),
    ("gamma:0", PLANTED_PROVERS, {"kind": "gamma", "gamma": 0.0}),
    ("mu", TREE_PROVERS, {"spec": "mu", "kind": "policy", "name": "mu"}),
    ("const:0.050", RL_PROVERS, {"spec": "const:0.05", "kind": "const", "constant": 0.05}),
    ("const:-1", RL_PROVERS, {"kind": "const", "constant": -1.0}),
])
def test_parse_prover_by_hand(spec, kinds, want):
    p = parse_prover(spec, kinds)
    assert {k: getattr(p, k) for k in want} == want


@pytest.mark.parametrize("spec, kinds", [
    ("bok:0", KINDS), ("bok:2.5", KINDS), ("bok:4.0", KINDS), ("bok:", KINDS), ("bok:x", KINDS),
    ("temp:0", LABEL_PROVERS), ("temp:-1", LABEL_PROVERS), ("temp:nan", LABEL_PROVERS), ("model:", KINDS),
    ("pi:2", LABEL_PROVERS), ("gamma", PLANTED_PROVERS), ("gamma:-1", PLANTED_PROVERS), ("gamma:nan", KINDS),
    ("best", LABEL_PROVERS), ("", TREE_PROVERS), ("x:1", TREE_PROVERS),
    ("pi", VERIFIER_PROVERS), ("temp:1", VERIFIER_PROVERS), ("gamma:3", VERIFIER_PROVERS), ("bok:2", ("gamma",)),
    ("const:x", RL_PROVERS), ("const:", RL_PROVERS), ("const:inf", RL_PROVERS), ("const:0.1", VERIFIER_PROVERS),
])
def test_parse_prover_refuses_with_the_grammar_of_the_path(spec, kinds):
    with pytest.raises(ValueError, match="prover must be") as e:
        parse_prover(spec, kinds)
    assert repr(spec) in str(e.value) and all(f"'{k}" in str(e.value) for k in kinds if k != "policy")


def test_parse_prover_refuses_unknown_kinds():
    with pytest.raises(ValueError, match="kinds must be among"):
        parse_prover("bok:2", ("bok", "remote"))


def test_from_base_values_by_hand():
    v = np.array([[0.0, 0.5, 1.0], [0.2, 0.9, 0.1]])
    np.testing.assert_allclose(parse_prover("bok:2").from_base(v), [[0.0, 0.75, 1.0], [0.36, 0.99, 0.19]])
    np.testing.assert_allclose(parse_prover("pi").from_base(v), v)
    for spec in ("temp:2", "model:/m", "gamma:3", "mu"):
        p = parse_prover(spec)
        assert not p.from_base_values
        with pytest.raises(ValueError, match="need its own policy"):
            p.from_base(v)
    assert parse_prover("temp:2").needs_rollouts and parse_prover("model:/m").needs_rollouts
    assert not parse_prover("bok:8").needs_rollouts and not parse_prover("pi").needs_rollouts


def test_label_names_the_prover():
    assert parse_prover("bok:4").label() == "Bo4(π)" and parse_prover("model:/a/b/qmu-2b").label() == "qmu-2b"
    assert parse_prover("gamma:10").label() == "gamma:10"
