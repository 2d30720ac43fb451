r"""Public process reward models (PRMs) as pavkit verifiers: V̂ of every prefix from a PRM's step scores.

A PRM scores a solution step by step at a *step tag* token written after each step. Two conventions exist:

- **token classification** (e.g. Qwen2.5-Math-PRM): ``AutoModelForTokenClassification`` with ``num_labels`` ≥ 2;
  the step's score is the softmax probability of the positive label at the tag token,
  p_h = softmax(z_t)[label] with t the tag after step h;
- **LM head** (Math-Shepherd): a causal LM; the score is the probability of the "good" token against the
  "bad" one at the tag token, p_h = softmax((ℓ_t[good], ℓ_t[bad]))[0].

The adapter reads p_h as the value of the prefix ending with step h, V̂(s_{h+1}) = p_h (a PRM trained on Monte
Carlo labels estimates Q^π(s_h, a_h) there), so every search and RL path takes a PRM where it takes a pavkit
verifier, and so does the Best-of-K PAV, Q̂^μ = 1 − (1 − Q̂)^K (:mod:`pavkit.provers`). V̂(s_1), the prompt
alone, is the PRM's score of a tag written right after the prompt (an empty solution; a row of its own, once
per distinct prompt), since PRMs score steps, not prompts.

Tokens: ``ids(prompt) + Σ_h [ids(sep + step_h + before), tag]``, each piece tokenized alone, so the tag is always a
token of its own and the ids of a prefix are a prefix of the whole trajectory's ids (causal attention: one
forward pass per trajectory gives the scores of all its prefixes). Formats: Qwen2.5-Math-PRM joins steps by
the tag (``sep`` and ``before`` empty); Math-Shepherd writes ``step ки\nstep ки`` (``sep="\n"``, ``before=" "``).

Spec grammar (the one home of it; wherever a verifier path goes)::

    prm:DIR[?key=value&...]     keys: tag, label, good, bad, sep, before (values %-escaped: %0A is "\n")

The convention comes from ``DIR/config.json``'s ``architectures`` (``…ForTokenClassification`` or
``…ForCausalLM``); ``tag`` is required for token-classification PRMs (no standard), and defaults to
Math-Shepherd's "ки" with good "+" and bad "-" for LM-head ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np

from pavkit.distributed import default_device
from pavkit.llm.prefix import right_pad
from pavkit.types import VerifierStats

PREFIX = "prm:"
TOKEN_CLASSIFICATION = "token-classification"
LM_HEAD = "lm-head"
_KEYS = ("tag", "label", "good", "bad", "sep", "before")
# Each convention's defaults: Qwen2.5-Math-PRM's layout (steps joined by the tag) and Math-Shepherd's.
DEFAULTS = {TOKEN_CLASSIFICATION: {"label": 1, "sep": "", "before": ""},
            LM_HEAD: {"tag": "ки", "good": "+", "bad": "-", "sep": "\n", "before": " "}}


@dataclass(frozen=True)
class PRMSpec:
    """A public PRM: its folder and how to read it (see the module docstring for each field's meaning)."""

    path: str
    tag: str | None = None      # None: the convention's default (:data:`DEFAULTS`); a token-classification PRM has none
    label: int | None = None    # token classification: the positive label's index
    good: str | None = None     # LM head: the tokens whose probabilities are compared
    bad: str | None = None
    sep: str | None = None      # text before every step (after the prompt, after the previous tag)
    before: str | None = None   # text between a step and its tag

    @property
    def text(self) -> str:
        """The spec as written (:func:`parse_prm_spec` reads it back): the folder and every field that is set."""
        keys = [f"{k}={quote(str(getattr(self, k)), safe='')}" for k in _KEYS if getattr(self, k) is not None]
        return PREFIX + self.path + ("?" + "&".join(keys) if keys else "")


def is_prm_spec(text: str) -> bool:
    return str(text).startswith(PREFIX)


def parse_prm_spec(text: str) -> PRMSpec:
    """``prm:DIR?key=value&…`` → PRMSpec; ValueError naming the bad part."""
    if not is_prm_spec(text):
        raise ValueError(f"a PRM spec starts with {PREFIX!r}, got {text!r}")
    path, _, query = text[len(PREFIX):].partition("?")
    if not path:
        raise ValueError(f"{text!r}: no folder after {PREFIX!r}")
    fields: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if key not in _KEYS or not eq:
            raise ValueError(f"{text!r}: {part!r} is not key=value with a key among {', '.join(_KEYS)}")
        fields[key] = unquote(value)
    if "label" in fields:
        try:
            fields["label"] = int(fields["label"])
        except ValueError:
            raise ValueError(f"{text!r}: label must be an integer, got {fields['label']!r}") from None
    return PRMSpec(path, **fields)


def prm_convention(path: str | Path) -> str:
    """TOKEN_CLASSIFICATION or LM_HEAD from the folder's config.json ``architectures``; ValueError otherwise."""
    config = Path(path) / "config.json"
    if not config.is_file():
        raise ValueError(f"{path}: no config.json (not a saved transformers model)")
    archs = json.loads(config.read_text()).get("architectures") or []
    if any(a.endswith("ForTokenClassification") for a in archs):
        return TOKEN_CLASSIFICATION
    if any(a.endswith("ForCausalLM") for a in archs):
        return LM_HEAD
    raise ValueError(f"{config}: architectures {archs} is neither a …ForTokenClassification nor a …ForCausalLM "
                     "model (PRMs with remote code, e.g. …ForProcessRewardModel, are not loaded)")


def resolved(spec: PRMSpec) -> PRMSpec:
    """The spec with its folder absolute and the convention's defaults filled in (what a run's config records)."""
    return with_defaults(replace(spec, path=str(Path(spec.path).resolve())), prm_convention(spec.path))


def with_defaults(spec: PRMSpec, convention: str) -> PRMSpec:
    """The spec with the fields it leaves unset taken from the convention's :data:`DEFAULTS`; ValueError for a
    token-classification PRM without a tag, or a key that does not apply to the convention."""
    if spec.tag is None and convention == TOKEN_CLASSIFICATION:
        raise ValueError(f"{spec.text}: a token-classification PRM needs its step tag (?tag=…)")
    unused = [k for k in ("good", "bad") if getattr(spec, k) is not None] if convention == TOKEN_CLASSIFICATION \
        else ["label"] if spec.label is not None else []
    if unused:
        raise ValueError(f"{spec.text}: {', '.join(unused)} do not apply to a {convention} PRM")
    return replace(spec, **{k: v for k, v in DEFAULTS[convention].items() if getattr(spec, k) is None})


def single_token(tokenizer: Any, text: str, what: str) -> int:
    """The id of ``text`` when it is one token (as encoded alone, or as a vocabulary entry); ValueError otherwise."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    if len(ids) == 1:
        return int(ids[0])
    vocab_id = tokenizer.get_vocab().get(text)
    if vocab_id is not None:
        return int(vocab_id)
    raise ValueError(f"the {what} {text!r} is not one token of this tokenizer (it encodes to {len(ids)} tokens)")


@dataclass
class PRMVerifier:
    """A public PRM behind the :class:`pavkit.types.Verifier` protocol (one forward pass per trajectory, batched)."""

    model: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    spec: PRMSpec
    convention: str
    batch_size: int = 32
    batch_tokens: int = 16384  # padded tokens of one forward pass (memory and wasted work; see _batches)
    stats: VerifierStats = field(default_factory=VerifierStats)

    def __post_init__(self) -> None:
        self.spec = with_defaults(self.spec, self.convention)
        self.tag_id = single_token(self.tokenizer, self.spec.tag, "step tag")
        if self.convention == LM_HEAD:
            self.pair = [single_token(self.tokenizer, self.spec.good, "good token"),
                         single_token(self.tokenizer, self.spec.bad, "bad token")]
        elif not 0 <= self.spec.label < self.model.config.num_labels:
            raise ValueError(f"{self.spec.text}: label {self.spec.label} is not one of the model's "
                             f"{self.model.config.num_labels} labels")
        self.model.eval()

    @classmethod
    def from_spec(cls, spec: PRMSpec | str, *, device: str | None = None, batch_size: int = 32,
                  dtype: Any = None) -> PRMVerifier:
        """Load the PRM of ``spec`` with plain transformers (local files only; float32 unless ``dtype``)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

        spec = resolved(parse_prm_spec(spec) if isinstance(spec, str) else spec)
        convention = prm_convention(spec.path)
        auto = AutoModelForCausalLM if convention == LM_HEAD else AutoModelForTokenClassification
        model = auto.from_pretrained(spec.path, local_files_only=True, dtype=dtype or torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(spec.path, local_files_only=True)
        device = default_device(device)
        return cls(model.to(device), tokenizer, spec, convention, batch_size)

    def token_ids(self, prompt: str, steps: Sequence[str]) -> tuple[list[int], np.ndarray]:
        """(input_ids (T,), tags (H,)): the trajectory's tokens and the index of the tag after each step."""
        encode = self.tokenizer.encode
        ids, tags = list(encode(prompt)), []
        for step in steps:
            ids += encode(self.spec.sep + step + self.spec.before, add_special_tokens=False) + [self.tag_id]
            tags.append(len(ids) - 1)
        return ids, np.array(tags, dtype=int)

    def _pair_logits(self, input_ids: Any, mask: Any, rows: Any, cols: Any) -> Any:
        """(R, 2) LM-head logits of the good and bad tokens at positions (rows, cols) only.

        The full (B, T, vocabulary) logits of a real PRM are gigabytes for a batch of long solutions (SmolLM2's
        49k entries × 32 rows × 1,000 tokens ≈ 6 GB in float32); only two columns at the tags are needed, so
        the decoder's last hidden states are projected on the two rows of the output embedding (with the
        model's final logit soft-capping, where its config has one, as its own forward applies it)."""
        import torch

        hidden = self.model.base_model(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state
        head = self.model.get_output_embeddings()
        logits = hidden[rows, cols].float() @ head.weight[self.pair].float().T
        if getattr(head, "bias", None) is not None:
            logits = logits + head.bias[self.pair].float()
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        return cap * torch.tanh(logits / cap) if cap else logits

    def _batches(self, lengths: Sequence[int]) -> list[list[int]]:
        """Row indices in order of length, cut into batches of at most ``batch_size`` rows and ``batch_tokens``
        padded tokens (a longer row alone). Solutions of public benchmarks run from 50 to 6,000 tokens: padding
        a batch to its longest row would make one long solution cost as much as a batch of them."""
        batches: list[list[int]] = []
        for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
            if batches and len(batches[-1]) < self.batch_size and \
                    (len(batches[-1]) + 1) * lengths[i] <= self.batch_tokens:
                batches[-1].append(i)
            else:
                batches.append([i])
        return batches

    def _scores(self, id_lists: Sequence[list[int]], reads: Sequence[np.ndarray]) -> list[np.ndarray]:
        """p (len(read),) at each row's read positions: batched forward passes without gradients (:meth:`_batches`)."""
        import torch

        out: list[np.ndarray] = [np.zeros(0)] * len(id_lists)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for batch in self._batches([len(ids) for ids in id_lists]):
            input_ids, mask = right_pad([id_lists[i] for i in batch], pad, self.model.device)
            where = [np.asarray(reads[i], dtype=int) for i in batch]
            at = (torch.as_tensor(np.repeat(np.arange(len(batch)), [len(w) for w in where]), device=input_ids.device),
                  torch.as_tensor(np.concatenate(where), device=input_ids.device))
            with torch.no_grad():
                if self.convention == LM_HEAD:
                    p = torch.softmax(self._pair_logits(input_ids, mask, *at), -1)[:, 0]
                else:
                    logits = self.model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits
                    p = torch.softmax(logits[at].float(), -1)[:, self.spec.label]
            scores = np.split(p.cpu().numpy().astype(float), np.cumsum([len(w) for w in where])[:-1])
            for i, score in zip(batch, scores, strict=True):
                out[i] = score
            self.stats.forward_passes += 1
            self.stats.forward_tokens += sum(len(id_lists[i]) for i in batch)
            self.stats.padded_tokens += int(input_ids.numel())
        return out

    def prefix_values(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """V̂ (H_b+1,) of s_1 … s_{H_b+1} of each trajectory b: the tag score after the prompt, then after each step."""
        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts but {len(steps)} step lists")
        encoded = [self.token_ids(p, s) for p, s in zip(prompts, steps, strict=True)]
        distinct = list(dict.fromkeys(prompts))
        empty = [self.token_ids(p, [""]) for p in distinct]  # a tag right after the prompt: V̂(s_1)
        scores = self._scores([ids for ids, _ in encoded] + [ids for ids, _ in empty],
                              [tags for _, tags in encoded] + [tags for _, tags in empty])
        first = dict(zip(distinct, scores[len(encoded):], strict=True))
        self.stats.trajectories += len(prompts)
        return [np.concatenate([first[p], s]) for p, s in zip(prompts, scores[:len(encoded)], strict=True)]

    def values(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> np.ndarray:
        """(B,) V̂ of each whole trajectory: the PRM's score of its last step."""
        return np.array([v[-1] for v in self.prefix_values(prompts, steps)], dtype=float)
