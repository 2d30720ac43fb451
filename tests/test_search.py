"""Beam search and best-of-N: the paper's Fig. 2(a), and the loop's bookkeeping."""

import numpy as np
import pytest

from pavkit.search import beam_search, best_of_n, select_top
from pavkit.toy.fig2 import fig2a_rows, fig2a_search


def test_fig2a_q_only_keeps_a13_and_a11():
    result = fig2a_search(alpha=0.0)
    assert result.beams == ["a13", "a11"]
    np.testing.assert_allclose(result.scores, [0.70, 0.55])
    assert (result.proposals, result.scored) == (6, 6)


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_fig2a_effective_reward_keeps_a13_and_a21(alpha):
    result = fig2a_search(alpha=alpha)
    assert result.beams == ["a13", "a21"]
    np.testing.assert_allclose(result.scores, [0.70 + alpha * 0.10, 0.50 + alpha * 0.20])


def test_fig2a_table_advantages():
    adv = {r["action"]: r["A"] for r in fig2a_rows()}
    assert adv == pytest.approx({"a11": -0.05, "a12": -0.10, "a13": 0.10, "a21": 0.20, "a22": 0.05,
                                 "a23": -0.05})


def test_select_top_is_stable_and_best_of_n():
    np.testing.assert_array_equal(select_top([0.2, 0.9, 0.2, 0.9], 3), [1, 3, 0])
    np.testing.assert_array_equal(best_of_n([[0.1, 0.7, 0.7], [0.9, 0.0, 0.3]]), [1, 0])


def test_beam_search_on_strings_counts_compute_and_keeps_finished():
    """States are strings over {a, b}; score = number of 'a' in the child; 'b…' states finish at once."""
    calls = []

    def expand(s):
        return [s + "a", s + "b"]

    def score(parents, children):
        calls.append(len(children))
        return np.array([c.count("a") for c in children], dtype=float)

    result = beam_search([""], expand, score, width=2, max_steps=3, is_done=lambda s: s.endswith("bb"))
    assert result.beams[0] == "aaa"
    assert [len(h) for h in result.history] == [2, 2, 2]
    assert result.proposals == 2 + 4 + 4 and result.scored == sum(calls)

    # a finished beam is not expanded but keeps competing with its old score
    def score_b(parents, children):
        return np.array([10.0 if c == "b" else 0.0 for c in children])

    kept = beam_search([""], expand, score_b, width=1, max_steps=4, is_done=lambda s: s == "b")
    assert kept.beams == ["b"] and kept.proposals == 2  # the search stops once every beam is done


def test_beam_search_rejects_bad_scores_and_width():
    with pytest.raises(ValueError):
        beam_search([""], lambda s: [s + "x"], lambda p, c: np.zeros(3), width=1, max_steps=1)
    with pytest.raises(ValueError):
        beam_search([""], lambda s: [s], lambda p, c: np.zeros(1), width=0, max_steps=1)
