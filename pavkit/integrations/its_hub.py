r"""pavkit verifiers (and the PAV score) as an its_hub process reward model (``pip install "pavkit[its-hub]"``).

its_hub's search algorithms (beam search, particle filtering) call ``prm.ascore(prompt, responses)`` with the
partial responses of their candidates (steps joined by their step generator's step token) and keep the
highest-scoring ones. :class:`PAVRewardModel` scores a partial response whose last step is a_h, leading from
s_h to s_{h+1}, with the beam-pav score of ``pavkit llm search`` (paper Eq. 5):

    score = Q̂^π(s_{h+1}) + α·(Q̂^μ(s_{h+1}) − Q̂^μ(s_h))

α = 0 is the PRM's own Q̂^π (its_hub's usual PRM). Q̂^π comes from the verifier (any ``load_verifier`` path: a
pavkit verifier, a ``prm:`` public PRM, ``organism-oracle``); Q̂^μ from the prover ``bok:K`` (1 − (1 − Q̂^π)^K)
or ``model:DIR`` (a Q^μ verifier). A response is split into steps at ``delimiter`` (set it to the step
generator's step token); an empty response scores Q̂^π(s_1).

:class:`EngineLM` is the other half: pavkit's generation engine (``HFEngine``, ``VLLMEngine``) as its_hub's
``AbstractLanguageModel``, so its_hub's algorithms run on a local model with no server: each conversation's
user message becomes the prompt (``label.build_prompt``), its assistant message the steps so far, and the next
step is one ``engine.extend`` draw stopped at the engine's delimiter (its_hub's ``step_token``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from its_hub.api import AbstractLanguageModel, AbstractProcessRewardModel, ChatMessages

from pavkit.estimators import effective_reward
from pavkit.llm.steps import DEFAULT_DELIMITER, split_steps
from pavkit.provers import VERIFIER_PROVERS, parse_prover
from pavkit.runs import derive_seed


def problem_text(prompt_or_messages: Any) -> str:
    """The problem of an its_hub prompt: the string itself, or the text of the last user message."""
    messages = ChatMessages.from_prompt_or_messages(prompt_or_messages)
    if messages.is_string:
        return messages.to_prompt()
    users = [m for m in messages.to_chat_messages() if m.role == "user"]
    if not users:
        raise ValueError("the conversation has no user message to read the problem from")
    return users[-1].extract_text_content()


class PAVRewardModel(AbstractProcessRewardModel):
    """A pavkit :class:`~pavkit.types.Verifier` behind its_hub's ``AbstractProcessRewardModel``.

    ``prompt``: the problem text → the prompt the verifier was trained on (default ``label.build_prompt`` with
    the verifier's tokenizer, ``prompt_format``, ``delimiter``); ``qmu``: the Q^μ verifier of a ``model:``
    prover (loaded from its path when not given).
    """

    def __init__(self, verifier: Any, *, alpha: float = 0.0, prover: str = "bok:4",
                 delimiter: str = DEFAULT_DELIMITER, prompt_format: str = "auto",
                 prompt: Callable[[str], str] | None = None, qmu: Any = None):
        from pavkit.llm.label import build_prompt
        from pavkit.llm.verifier import load_verifier

        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.verifier, self.alpha, self.delimiter = verifier, float(alpha), delimiter
        self.prover = parse_prover(prover, VERIFIER_PROVERS)
        if qmu is None and alpha and self.prover.kind == "model":
            qmu = load_verifier(self.prover.path, delimiter=delimiter)
        self.qmu = qmu
        tokenizer = getattr(verifier, "tokenizer", None)
        self.prompt = prompt or (lambda text: build_prompt(text, tokenizer, prompt_format=prompt_format,
                                                           delimiter=delimiter))

    @classmethod
    def from_path(cls, path: str, **kw: Any) -> PAVRewardModel:
        """Load the verifier with ``pavkit.llm.verifier.load_verifier`` (a folder, a ``prm:`` spec, the oracle)."""
        from pavkit.llm.verifier import load_verifier

        return cls(load_verifier(path, delimiter=kw.get("delimiter", DEFAULT_DELIMITER)), **kw)

    def scores(self, problem: str, responses: Sequence[str]) -> np.ndarray:
        """(B,) the score of each partial response (module docstring)."""
        prompt = self.prompt(problem)
        steps = [split_steps(r, self.delimiter) for r in responses]
        v_pi = self.verifier.prefix_values([prompt] * len(steps), steps)
        if not self.alpha:
            return np.array([v[-1] for v in v_pi])
        v_mu = (self.qmu.prefix_values([prompt] * len(steps), steps) if self.prover.kind == "model"
                else [self.prover.from_base(v) for v in v_pi])
        return np.array([effective_reward(p[None], m[None], self.alpha)[0, -1] if len(p) > 1 else p[-1]
                         for p, m in zip(v_pi, v_mu, strict=True)])

    def score(self, prompt_or_messages: Any, steps: str | list[str]) -> float | list[float]:
        """its_hub's call: one partial response → its score, a list of them → a list of scores."""
        single = isinstance(steps, str)
        out = self.scores(problem_text(prompt_or_messages), [steps] if single else list(steps)).tolist()
        return out[0] if single else out

    async def ascore(self, prompt_or_messages: Any, steps: str | list[str]) -> float | list[float]:
        return await asyncio.to_thread(self.score, prompt_or_messages, steps)


class EngineLM(AbstractLanguageModel):
    """A pavkit engine behind its_hub's ``AbstractLanguageModel`` (module docstring): one batched
    ``engine.extend`` per call; call k samples with seed derive_seed(seed, k), so a run is reproducible."""

    def __init__(self, engine: Any, *, prompt_format: str = "auto", seed: int = 0):
        from pavkit.llm.label import build_prompt, engine_tokenizer

        self.engine, self.seed, self.calls = engine, int(seed), 0
        tokenizer = engine_tokenizer(engine)
        self.prompt = lambda text: build_prompt(text, tokenizer, prompt_format=prompt_format,
                                                delimiter=engine.delimiter)

    def prefix(self, messages: Sequence[Any]) -> str:
        """The engine prefix of one conversation: the user's prompt, then the assistant's text so far."""
        users = [m for m in messages if m.role == "user"]
        if not users:
            raise ValueError("the conversation has no user message")
        done = "".join(m.extract_text_content() for m in messages if m.role == "assistant")
        return self.prompt(users[-1].extract_text_content()) + done

    async def agenerate(self, messages: Any, stop: str | None = None, **kwargs: Any) -> dict | list[dict]:
        """The next step of each conversation; ``stop`` must be the engine's delimiter (or None)."""
        if stop is not None and stop != self.engine.delimiter:
            raise ValueError(f"its_hub's step token {stop!r} must be the engine's delimiter "
                             f"{self.engine.delimiter!r}")
        single = not messages or not isinstance(messages[0], list)
        batch = [messages] if single else list(messages)
        seed = derive_seed(self.seed, self.calls)
        self.calls += 1
        rows = await asyncio.to_thread(self.engine.extend, [self.prefix(m) for m in batch], 1, seed)
        steps = [row[0].text for row in rows]
        out = [{"role": "assistant", "content": text} for text in steps]
        return out[0] if single else out

    async def agenerate_single(self, messages: Any, stop: str | None = None, **kwargs: Any) -> dict:
        return await self.agenerate(messages, stop, **kwargs)
