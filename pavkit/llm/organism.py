r"""A "model organism" for process verifiers: a chained-arithmetic word problem and a small LM trained on it.

Real pretrained models here are either too weak (SmolLM2-135M solves almost no arithmetic) or too large to train
on a CPU, so the LLM pipeline (labels → verifiers → search → RL) needs a task where a laptop can train the base
policy π from scratch, sample thousands of rollouts, and still see π fail often enough for process rewards to
matter. The task:

    Mia has 23 apples. She gets 7. She loses 5. She doubles them. How many apples does Mia have?
    gets 7: 23 + 7 = 30
    loses 5: 30 - 5 = 25
    doubles: 25 * 2 = 50
    The answer is: 50

- One operation per sentence and one solution step per line (the step delimiter "\n"), each step restating its
  operation ("gets 7") before the arithmetic, then the final line "The answer is: N" (graded by Rex, strict).
- Difficulty is the number of operations, ``min_ops`` … ``max_ops`` (uniform): every step is a chance to make an
  arithmetic slip (a carry, a doubling), after which the final answer is wrong; the verifier's job is to notice.
- Values stay in 0 … ``max_value`` (gets/loses k ∈ [2, ``max_operand``], doubles/triples only when the result
  fits), so a correct solution never needs a negative or a three-digit number.
- Splits are independent random streams of one generator (``seed``, split): "train" feeds training (fresh problems
  every batch, so there is no fixed training set to overfit), "valid" measures accuracy during training and
  picks checkpoints, "test" is for search and RL evaluation.

The tokenizer is character level (``organism_tokenizer``): every character its own token, so arithmetic is done
digit by digit and a step's tokens are exactly its characters. The model is a small Llama (``LlamaForCausalLM``,
≈ 0.5 M parameters by default) trained with next-token cross-entropy on the solution tokens only (the prompt is
context, not target), AdamW, linear warm-up then cosine decay. Accuracy is measured by sampling at temperature 1
(the policy that search and RL use). Checkpoints saved along the way are the prover candidates: a weaker one
(early) and a stronger one (late) beside the base (the first checkpoint inside the target accuracy band).
"""

from __future__ import annotations

import copy
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pavkit.llm.data import Problem
from pavkit.llm.steps import DEFAULT_DELIMITER
from pavkit.options import option
from pavkit.types import VerifierStats

NAMES = ("Mia", "Tom", "Ana", "Leo", "Ivy", "Sam", "Zoe", "Max", "Eva", "Ben")
PRONOUNS = {"Mia": "She", "Ana": "She", "Ivy": "She", "Zoe": "She", "Eva": "She"}
ITEMS = ("apples", "coins", "marbles", "books", "shells", "cards", "stamps", "pens")
SPLITS = ("train", "valid", "test")
ALPHABET = "\n !',.:?+-*=0123456789" + "abcdefghijklmnopqrstuvwxyz" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SPECIAL = ("<pad>", "<s>", "</s>", "<unk>")


# ---------------------------------------------------------------------------------------------------------------
# The task.


@dataclass(frozen=True)
class OrganismTask:
    """The problem distribution.

    Attributes:
        min_ops, max_ops: number of operations (= solution steps before the answer line), drawn uniformly.
        max_value: every intermediate value lies in [0, max_value].
        max_operand: gets/loses k with k ∈ [2, max_operand].
    """

    min_ops: int = 2
    max_ops: int = 5
    max_value: int = 99
    max_operand: int = 19

    def __post_init__(self) -> None:
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"need 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if self.max_value < 10 or not 2 <= self.max_operand < self.max_value:
            raise ValueError("need max_value >= 10 and 2 <= max_operand < max_value")


def _operation(rng: random.Random, x: int, task: OrganismTask) -> tuple[str, str, int]:
    """One operation applicable to x: (sentence predicate, step head, new value)."""
    options = []
    if x + 2 <= task.max_value:
        k = rng.randint(2, min(task.max_operand, task.max_value - x))
        options.append((f"gets {k}", f"{x} + {k}", x + k))
    if x >= 2:
        k = rng.randint(2, min(task.max_operand, x))
        options.append((f"loses {k}", f"{x} - {k}", x - k))
    if 2 * x <= task.max_value:
        options.append(("doubles", f"{x} * 2", 2 * x))
    if 3 * x <= task.max_value and rng.random() < 0.5:
        options.append(("triples", f"{x} * 3", 3 * x))
    return rng.choice(options)


def make_problem(rng: random.Random, num_ops: int, task: OrganismTask, problem_id: str) -> Problem:
    """One problem with ``num_ops`` operations, its gold answer and its worked solution (num_ops + 1 steps)."""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    pronoun = PRONOUNS.get(name, "He")
    x = rng.randint(2, min(60, task.max_value))
    sentences, steps = [f"{name} has {x} {item}."], []
    for _ in range(num_ops):
        predicate, head, y = _operation(rng, x, task)
        sentences.append(f"{pronoun} {predicate}{' them' if predicate in ('doubles', 'triples') else ''}.")
        steps.append(f"{predicate}: {head} = {y}")
        x = y
    sentences.append(f"How many {item} does {name} have?")
    steps.append(f"The answer is: {x}")
    return Problem(problem_id, " ".join(sentences), str(x), tuple(steps))


def organism_problems(count: int, seed: int = 0, split: str = "test", task: OrganismTask | None = None,
                      num_ops: int | None = None) -> list[Problem]:
    """``count`` problems of one split, a pure function of (count, seed, split, task, num_ops).

    Problem i of a split is the same whatever ``count`` (a longer list extends a shorter one). ``num_ops`` fixes
    the number of operations (default: uniform in [task.min_ops, task.max_ops]).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    task = task or OrganismTask()
    state = np.random.SeedSequence([int(seed), SPLITS.index(split)]).generate_state(1)
    rng = random.Random(int(state[0]))
    problems = []
    for i in range(count):
        ops = num_ops if num_ops is not None else rng.randint(task.min_ops, task.max_ops)
        problems.append(make_problem(rng, ops, task, f"organism-{split}-{seed}-{i}"))
    return problems


def solution_text(problem: Problem, delimiter: str = DEFAULT_DELIMITER) -> str:
    """The worked response: the steps joined by the delimiter (the model then emits EOS)."""
    return delimiter.join(problem.solution)


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer and model.


def organism_tokenizer():
    """A character-level ``PreTrainedTokenizerFast``: one token per character of ``ALPHABET``, BOS prepended.

    No chat template, so ``label.build_prompt`` gives the plain prompt ``problem + delimiter``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL + tuple(ALPHABET))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # every character
    tok.decoder = decoders.Fuse()  # characters concatenate back without separators
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


@dataclass(frozen=True)
class OrganismConfig:
    """Everything that defines an organism training run (written as the run's config.json).

    Attributes:
        task: the problem distribution (``OrganismTask`` fields).
        hidden, layers, heads, intermediate: the Llama's size (hidden 128 × 3 layers ≈ 0.5 M parameters).
        iters: optimiser steps; batch: problems per step (fresh ones every step).
        lr, warmup, weight_decay: AdamW, linear warm-up for ``warmup`` steps then cosine decay to lr/10.
        eval_every: steps between accuracy evaluations (and checkpoints); eval_problems: "valid" problems per
            evaluation, one temperature-1 sample each.
        target_low, target_high: the base checkpoint is the first evaluated one with accuracy in this band.
        seed: data, initialisation and evaluation sampling.
    """

    min_ops: int = option(2, "Fewest operations (solution steps before the answer line) per problem.", min=1)
    max_ops: int = option(5, "Most operations.", min=1)
    max_value: int = 99
    max_operand: int = 19
    hidden: int = option(128, "Model width.", min=8)
    layers: int = option(3, "Transformer layers.", min=1)
    heads: int = option(4, "Attention heads.", min=1)
    intermediate: int = option(256, "MLP width.", min=8)
    iters: int = option(1200, "AdamW steps.", min=1)
    batch: int = option(32, "Fresh training problems per step.", min=1)
    lr: float = option(3e-3, "Peak learning rate (linear warm-up, then cosine decay to a tenth).", min=0,
                       min_open=True)
    warmup: int = option(100, "Warm-up steps.", min=0)
    weight_decay: float = 0.01
    eval_every: int = option(200, "Steps between evaluations; each saves a checkpoint folder (a prover candidate).",
                             min=1)
    eval_problems: int = option(200, "Validation problems per evaluation (one temperature-1 sample each).", min=1)
    target_low: float = 0.2
    target_high: float = 0.6
    seed: int = option(0, "Seeds data, initialisation and evaluation.", min=0)

    def __post_init__(self) -> None:
        OrganismTask(self.min_ops, self.max_ops, self.max_value, self.max_operand)  # validates the task fields
        if self.iters < 1 or self.batch < 1 or self.eval_every < 1 or self.eval_problems < 1:
            raise ValueError("iters, batch, eval_every and eval_problems must be >= 1")
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if not 0 <= self.target_low < self.target_high <= 1:
            raise ValueError("need 0 <= target_low < target_high <= 1")

    @property
    def task(self) -> OrganismTask:
        return OrganismTask(self.min_ops, self.max_ops, self.max_value, self.max_operand)

    def to_dict(self) -> dict:
        return asdict(self)


def init_model(cfg: OrganismConfig, tokenizer: Any):
    """A freshly initialised ``LlamaForCausalLM`` of the configured size (seeded by cfg.seed)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=cfg.intermediate,
                         num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    return LlamaForCausalLM(config)


def training_batch(problems: Sequence[Problem], tokenizer: Any, delimiter: str = DEFAULT_DELIMITER) -> dict:
    """Tensors for next-token SFT on worked solutions: the loss covers the response and EOS, not the prompt.

    Text of problem b: ``prompt + solution + EOS`` with prompt = problem + delimiter (``label.build_prompt``'s
    plain format, exactly what search and labelling feed the model). Returns ``input_ids``, ``attention_mask``
    and ``labels`` (B, T), right-padded; labels are -100 on the prompt and on padding.
    """
    import torch

    rows, targets = [], []
    for p in problems:
        prompt = tokenizer(p.problem + delimiter).input_ids
        response = tokenizer(solution_text(p, delimiter), add_special_tokens=False).input_ids
        ids = prompt + response + [tokenizer.eos_token_id]
        rows.append(ids)
        targets.append([-100] * len(prompt) + ids[len(prompt):])
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


# ---------------------------------------------------------------------------------------------------------------
# Training.


@dataclass
class OrganismState:
    """What a resumed run needs: the model, its optimiser and schedule, and the iteration reached."""

    model: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    iteration: int = 0


def _lr_lambda(cfg: OrganismConfig):
    from pavkit.runs import warmup_cosine

    return lambda step: warmup_cosine(step, cfg.warmup, cfg.iters, floor=0.1)


def init_state(cfg: OrganismConfig, device: str | None = None) -> OrganismState:
    """A fresh model (on ``device``, default :func:`pavkit.distributed.default_device`), AdamW and schedule."""
    import torch

    from pavkit.distributed import default_device

    tokenizer = organism_tokenizer()
    model = init_model(cfg, tokenizer).to(default_device(device))  # initialised on the CPU: the same weights
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    return OrganismState(model, tokenizer, optimizer, scheduler)


def checkpoint(state: OrganismState) -> dict:
    """A deep copy of everything a resume needs (state_dict tensors alias the live weights)."""
    return copy.deepcopy({"model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(), "iteration": state.iteration})


def restore(cfg: OrganismConfig, ckpt: dict, device: str | None = None) -> OrganismState:
    state = init_state(cfg, device)
    state.model.load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    state.iteration = int(ckpt["iteration"])
    return state


def sft_step(state: OrganismState, cfg: OrganismConfig) -> dict:
    """One AdamW step on ``cfg.batch`` fresh "train" problems; the batch is a pure function of (seed, iteration)."""
    import torch

    seed = np.random.SeedSequence([cfg.seed, SPLITS.index("train"), state.iteration]).generate_state(1)[0]
    rng = random.Random(int(seed))
    task = cfg.task
    problems = [make_problem(rng, rng.randint(task.min_ops, task.max_ops), task, "train")
                for _ in range(cfg.batch)]
    batch = {k: v.to(state.model.device) for k, v in training_batch(problems, state.tokenizer).items()}
    state.model.train()
    loss = state.model(**batch).loss
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(state.model.parameters(), 1.0)
    state.optimizer.step()
    state.scheduler.step()
    state.iteration += 1
    return {"iteration": state.iteration, "loss": float(loss.detach()), "lr": state.scheduler.get_last_lr()[0]}


def sample_accuracy(model: Any, tokenizer: Any, problems: Sequence[Problem], seed: int, *,
                    temperature: float = 1.0, max_new_tokens: int = 160, batch_size: int = 64) -> np.ndarray:
    """(P,) bool: is one sample per problem (at ``temperature``) correct under Rex (strict)?"""
    from pavkit.llm.engines import HFEngine
    from pavkit.llm.grading import grade_batch

    engine = HFEngine(model, tokenizer, temperature=temperature, max_new_tokens=max_new_tokens,
                      batch_size=batch_size)
    prompts = [p.problem + DEFAULT_DELIMITER for p in problems]
    outs = engine.complete(prompts, 1, seed)
    # Gold answers are integers: plain-number comparison decides every pair, no math-verify worker pool.
    correct, _ = grade_batch([o[0].text for o in outs], [p.answer for p in problems], strict=True, symbolic=False)
    return correct


def evaluate(state: OrganismState, cfg: OrganismConfig) -> dict:
    """Accuracy at temperature 1 on the "valid" split, overall and by number of operations."""
    problems = organism_problems(cfg.eval_problems, cfg.seed, "valid", cfg.task)
    correct = sample_accuracy(state.model, state.tokenizer, problems, seed=cfg.seed + state.iteration)
    ops = np.array([len(p.solution) - 1 for p in problems])
    by_ops = {int(k): float(correct[ops == k].mean()) for k in np.unique(ops)}
    return {"accuracy": float(correct.mean()), "accuracy_by_ops": by_ops}


def train(cfg: OrganismConfig, state: OrganismState) -> Iterator[dict]:
    """Steps state.iteration+1 … cfg.iters, one record each; evaluation records every ``eval_every`` and at 0.

    A record with "accuracy" marks a checkpoint the caller should save (the prover candidates).
    """
    if state.iteration == 0:
        t0 = time.perf_counter()
        yield {"iteration": 0, **evaluate(state, cfg), "seconds": time.perf_counter() - t0}
    while state.iteration < cfg.iters:
        t0 = time.perf_counter()
        record = sft_step(state, cfg)
        if state.iteration % cfg.eval_every == 0 or state.iteration == cfg.iters:
            record.update(evaluate(state, cfg))
        record["seconds"] = time.perf_counter() - t0
        yield record


def pick_roles(evals: Sequence[dict], low: float, high: float) -> dict[str, int]:
    """Iterations of the base, weak and strong checkpoints from the evaluation records.

    base: the first checkpoint whose accuracy is in [low, high] (else the one closest to the band's middle);
    weak: the latest earlier checkpoint with at most half the base's accuracy and above 0 (else the earliest
    trained one); strong: the most accurate checkpoint after the base (else the base itself).
    """
    evals = [e for e in evals if e["iteration"] > 0]
    if not evals:
        raise ValueError("no evaluated checkpoint after iteration 0")
    inside = [e for e in evals if low <= e["accuracy"] <= high]
    mid = (low + high) / 2
    base = inside[0] if inside else min(evals, key=lambda e: abs(e["accuracy"] - mid))
    earlier = [e for e in evals if e["iteration"] < base["iteration"]]
    weak_pool = [e for e in earlier if 0 < e["accuracy"] <= base["accuracy"] / 2]
    weak = weak_pool[-1] if weak_pool else (earlier[0] if earlier else base)
    later = [e for e in evals if e["iteration"] >= base["iteration"]]
    strong = max(later, key=lambda e: (e["accuracy"], e["iteration"]))
    return {"base": base["iteration"], "weak": weak["iteration"], "strong": strong["iteration"]}


# ---------------------------------------------------------------------------------------------------------------
# An exact verifier: the ceiling a trained verifier could reach on this task.

_SENTENCE = re.compile(r"(?:She|He) (gets \d+|loses \d+|doubles|triples)")


def solve(problem_text: str) -> tuple[str, ...]:
    """The worked solution of a problem, recomputed from its text alone (the steps ``make_problem`` writes)."""
    x = int(re.match(r"\w+ has (\d+) ", problem_text).group(1))
    steps = []
    for predicate in _SENTENCE.findall(problem_text):
        word, _, k = predicate.partition(" ")
        op, operand = {"gets": ("+", k), "loses": ("-", k), "doubles": ("*", "2"), "triples": ("*", "3")}[word]
        y = {"+": x + int(operand), "-": x - int(operand), "*": x * int(operand)}[op]
        steps.append(f"{predicate}: {x} {op} {operand} = {y}")
        x = y
    return (*steps, f"The answer is: {x}")


class OracleVerifier:
    r"""Exact step checking on organism problems, behind the ``Verifier`` interface (``prefix_values``/``values``).

    V(s_{h+1}) = p^(H − h) if the h steps so far equal the worked solution's first h steps, else 0 — the value
    under an idealised policy that gets each remaining step right with probability ``p`` and never recovers from
    a slip. Its first-error labels are exact (the first step that is not the worked solution's); its values are
    a model, not Q^π of a trained policy: the organism's policies do recover from some slips (measured by
    ``bench/provers.py``: 23 % of off-track steps of the base policy have a successful rollout, mean Q̂^π 0.06
    against 0.62 on track). A complete correct solution gets 1. It is not a learned
    model: search with it measures what the search methods do when the verifier is perfect at telling steps
    apart, i.e. the ceiling that verifier fit caps. The prompt must be ``problem + delimiter`` (plain format).
    """

    def __init__(self, tokenizer: Any = None, p: float = 0.9, delimiter: str = DEFAULT_DELIMITER):
        if not 0 < p <= 1:
            raise ValueError(f"p must be in (0, 1], got {p}")
        self.tokenizer, self.p, self.delimiter = tokenizer, float(p), delimiter
        self.stats = VerifierStats()  # no model runs: forward_tokens stays 0

    def prefix_values(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[np.ndarray]:
        out = []
        for prompt, s in zip(prompts, steps, strict=True):
            solution = solve(prompt.removesuffix(self.delimiter))
            on_track = np.cumprod([True] + [h < len(solution) and a == solution[h] for h, a in enumerate(s)])
            remaining = np.maximum(len(solution) - np.arange(len(s) + 1), 0)
            out.append(on_track * self.p ** remaining)
            self.stats.trajectories += 1
        return out

    def values(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> np.ndarray:
        return np.array([v[-1] for v in self.prefix_values(prompts, steps)], dtype=float)
