"""pavkit in its_hub (pavkit.integrations.its_hub, needs the its-hub extra): the PAV score by hand on the exact
organism checker, and its_hub's own BeamSearch run on a local (tiny) model through EngineLM."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

its_hub = pytest.importorskip("its_hub")

from pavkit.integrations.its_hub import EngineLM, PAVRewardModel, problem_text  # noqa: E402


def _organism_problem():
    from pavkit.llm.organism import organism_problems, solve

    p = organism_problems(1, 5, "test")[0]
    return p, solve(p.problem)


def test_pav_score_by_hand_on_the_exact_checker():
    from its_hub.api import AbstractProcessRewardModel, ChatMessage

    from pavkit.llm.organism import OracleVerifier

    problem, worked = _organism_problem()
    oracle = OracleVerifier(p=0.5)
    prm = PAVRewardModel(oracle, alpha=2.0, prover="bok:3", prompt_format="plain")
    assert isinstance(prm, AbstractProcessRewardModel)
    h, left = 1, len(worked)
    good, slip = "\n".join(worked[:h]), "\n".join([worked[0] + "7"])
    # on track after h steps: Q^π = 0.5^(H−h); Bo3: 1 − (1 − q)^3; the slip: 0 from there on
    q0, q1 = 0.5 ** left, 0.5 ** (left - h)
    b0, b1 = 1 - (1 - q0) ** 3, 1 - (1 - q1) ** 3
    got = prm.score(problem.problem, [good, slip, ""])
    np.testing.assert_allclose(got, [q1 + 2 * (b1 - b0), 0 + 2 * (0 - b0), q0])
    assert prm.score(problem.problem, good) == pytest.approx(got[0])
    plain = PAVRewardModel(oracle, prompt_format="plain")  # α = 0: the PRM's own Q̂^π
    assert plain.score([ChatMessage(role="user", content=problem.problem)], [good]) == pytest.approx([q1])
    assert asyncio.run(prm.ascore(problem.problem, [good])) == pytest.approx(got[:1])


def test_problem_text_of_a_conversation():
    from its_hub.api import ChatMessage

    assert problem_text("Q?") == "Q?"
    conversation = [ChatMessage(role="system", content="be brief"), ChatMessage(role="user", content="Q?")]
    assert problem_text(conversation) == "Q?"
    with pytest.raises(ValueError, match="no user message"):
        problem_text([ChatMessage(role="system", content="x")])


@pytest.mark.slow
def test_its_hub_beam_search_on_a_local_model_with_the_pav(tiny_model_dir):
    from its_hub.core.algorithms.beam_search import BeamSearch
    from its_hub.core.lms.step_generation import StepGeneration

    from pavkit.llm.engines import HFEngine
    from pavkit.llm.organism import OracleVerifier

    engine = HFEngine.from_path(tiny_model_dir, device="cpu", max_step_tokens=8, max_new_tokens=32)
    lm = EngineLM(engine, prompt_format="plain", seed=3)
    problem, _ = _organism_problem()
    search = BeamSearch(StepGeneration(max_steps=3, step_token="\n"), PAVRewardModel(OracleVerifier(),
                        alpha=0.5, prompt_format="plain"), beam_width=2)
    result = search.infer(lm, problem.problem, budget=4, return_response_only=False)
    assert len(result.responses) == 4 and len(result.scores) == 4 and all(np.isfinite(result.scores))
    # its_hub stops a path once it HAS max_steps steps before drawing another: at most max_steps + 1
    assert lm.calls >= 1 and all(n <= 4 for n in result.steps_used)
    again = BeamSearch(StepGeneration(max_steps=3, step_token="\n"), PAVRewardModel(OracleVerifier(),
                       alpha=0.5, prompt_format="plain"), beam_width=2).infer(
        EngineLM(engine, prompt_format="plain", seed=3), problem.problem, budget=4, return_response_only=False)
    assert again.responses == result.responses  # the same seed draws the same search
    with pytest.raises(ValueError, match="must be the engine's delimiter"):
        asyncio.run(lm.agenerate([[]], stop="\n\n"))
