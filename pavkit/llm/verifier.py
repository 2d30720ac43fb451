r"""Learned verifiers on a language model: ORM, PQV (a model of Q^π) and a Q^μ model (paper §4.2, App. D).

Models (``VerifierConfig.arch``), both giving a logit at every token, V̂(s) = sigmoid(logit at the reading token of s):

- ``lm-features`` (the default): the base causal LM, frozen, and a small head on its last hidden state AND on
  running statistics of its log-probabilities of the written tokens (:mod:`pavkit.llm.lmfeatures`, where the
  why is measured). Trains on readings cached once per trajectory: seconds.
- ``token-classification`` (the paper's setup): ``AutoModelForTokenClassification(num_labels=1)`` on the base
  LM's folder, the backbone (``model.*`` weights loaded unchanged; ``lm_head`` dropped) fine-tuned with a dropout
  and a new linear head ``score`` (hidden → 1). On the model organism it learned which problems are hard but
  ranked a problem's own responses at chance (within-problem AUC ≈ 0.5, README).

Reading tokens (:func:`read_positions`, the convention of :mod:`pavkit.llm.steps`): V̂(s_1) (the prompt alone) is
read at the last prompt token, V̂(s_{h+1}) at the last token of step h, which is the token holding its
delimiter (the paper's fixed "scoring token" is here the step delimiter). Steps are tokenized as segments, so
the ids of a prefix are a prefix of the whole trajectory's ids, and causal attention makes the logit at a
position depend only on the tokens before it: ONE forward pass over a trajectory gives V̂ of all its H+1
prefixes, each equal to scoring that prefix alone. Batches are right-padded with an attention mask; padding
sits after every real token and so cannot change any value.

Kinds (labels from :mod:`pavkit.llm.label` records, one trajectory per record):

- ``orm``  the seed's outcome Rex(y) ∈ {0, 1} at the final prefix s_{H+1} only (other positions weight 0);
- ``pqv``  the soft Monte Carlo label ``v_pi`` at every prefix s_1 … s_{H+1}: a model of V^π / Q^π;
- ``qmu``  ``v_mu`` at every prefix (labels made with a rollout prover): a model of Q^μ.

Loss: soft-label binary cross-entropy with logits, weighted per position,

    L = Σ_i w_i · BCE(z_i, y_i) / Σ_i w_i,   BCE(z, y) = −y·log σ(z) − (1−y)·log(1−σ(z)),   y ∈ [0, 1],

with class-balanced sampling (App. D): every epoch the labelled prefixes are re-drawn with
:func:`pavkit.llm.label.balanced_buckets` over the buckets Q̂ < 0.5 / Q̂ ≥ 0.5, and a prefix drawn m times gets
weight m. AdamW (weight decay 0 by default, i.e. Adam), linear warm-up then cosine decay to 0 (App. D's shape;
the paper's 20,000 iterations at LR 5e-7 with 2,000 warm-up steps are for a 9B model).

Library code takes and returns data; ``pavkit.cli`` reads label files and writes the run directory.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pavkit.distributed import SINGLE, Process, all_gather_rows, all_sum, data_parallel, default_device, shard
from pavkit.llm.folders import verifier_dir
from pavkit.llm.lmfeatures import ARCH as LM_FEATURES
from pavkit.llm.prefix import right_pad
from pavkit.llm.steps import DEFAULT_DELIMITER, check_steps, step_token_spans
from pavkit.options import option
from pavkit.runs import warmup_cosine
from pavkit.types import VerifierStats

KINDS = ("orm", "pqv", "qmu")
TOKEN_CLASSIFIER = "token-classification"
ARCHS = (LM_FEATURES, TOKEN_CLASSIFIER)  # pavkit.llm.lmfeatures / AutoModelForTokenClassification fine-tuned
BALANCE_MODES = ("down", "up", "none")
VERIFIER_JSON = "verifier.json"
_LABEL_KEY = {"pqv": "v_pi", "qmu": "v_mu"}


# ---------------------------------------------------------------------------------------------------------------
# Configuration.


@dataclass(frozen=True)
class VerifierConfig:
    """Training settings of one verifier (validated on construction; ValueError names the field).

    Paper values (App. D, Gemma 9B): 20,000 iterations, batch 32, Adam, max LR 5e-7, 2,000 linear warm-up
    steps then cosine decay, class-balanced buckets. The defaults here suit small models trained from scratch.
    """

    kind: str                     # "orm" | "pqv" | "qmu" (module docstring)
    arch: str = option(
        LM_FEATURES,
        "lm-features: --base frozen, a head on its last hidden state and on running statistics of its "
        "log-probabilities of the written tokens (min, mean, gap to its first choice, disagreements), trained on "
        "cached readings; token-classification: the backbone fine-tuned with a linear head on the hidden state (ranked"
        " the organism's responses within a problem at AUC ≈ 0.5).", choices=('lm-features', 'token-classification'))
                                  # statistics (pavkit.llm.lmfeatures); "token-classification": the backbone
                                  # fine-tuned with a linear head on the hidden state (the paper's setup)
    iters: int = option(400, 'Optimiser steps (paper: 20,000 on a 9B model).', min=1)
    batch_size: int = option(
        16,
        "Trajectories per step; one forward pass each reads all its labelled prefixes (paper: 32).", min=1)
    lr: float = option(
        3e-4,
        "Peak AdamW learning rate: linear warm-up, then cosine decay to 0 (paper: 5e-7 at 9B).", min=0, min_open=True)
    warmup: int = option(40, 'Linear warm-up steps (at most --iters).', min=0)
    balance: str = option(
        "down",
        "Class-balanced sampling over buckets Q̂ < 0.5 / Q̂ >= 0.5, re-drawn every epoch (App. D): down = subsample "
        "the larger bucket, up = resample the smaller one, none = all prefixes. Balancing lifts the values where most "
        "labels are low (a weak prover's Q^μ); none keeps them calibrated, as advantages used as RL rewards need.",
        choices=('down', 'up', 'none'))
    eval_fraction: float = option(
        0.1,
        "Share of problems held out (split by problem, never by row) for eval BCE / MAE / AUC.",
        min=0, max=1, max_open=True)
    eval_every: int = option(50, 'Steps between evaluations; each also writes OUT/checkpoint.pt.', min=1)
    seed: int = option(0, "Seeds the held-out split, the balanced draws, batch order and the head's dropout.", min=0)
    delimiter: str = "\n"         # step delimiter of the labels (pavkit.llm.steps)
    max_length: int = option(512, 'Token cap per trajectory; prefixes read beyond it are not trained on.', min=2)
    weight_decay: float = 0.0     # AdamW decoupled weight decay (0: Adam, as in the paper)
    grad_clip: float = 1.0        # max global gradient norm (0: no clipping)
    init_head: bool = True        # before step 1: head weights N(0, initializer_range²) drawn from `seed`, bias
                                  # logit(mean training label); False keeps the model's head as it is
    eval_batch_size: int = 32     # trajectories per forward pass when evaluating

    def __post_init__(self) -> None:
        checks = [
            ("kind", self.kind in KINDS, f"must be one of {', '.join(KINDS)}"),
            ("arch", self.arch in ARCHS, f"must be one of {', '.join(ARCHS)}"),
            ("iters", isinstance(self.iters, int) and self.iters >= 1, "must be an integer >= 1"),
            ("batch_size", isinstance(self.batch_size, int) and self.batch_size >= 1, "must be an integer >= 1"),
            ("lr", self.lr > 0 and math.isfinite(self.lr), "must be a finite number > 0"),
            ("warmup", isinstance(self.warmup, int) and 0 <= self.warmup <= self.iters, "must be in [0, iters]"),
            ("balance", self.balance in BALANCE_MODES, f"must be one of {', '.join(BALANCE_MODES)}"),
            ("eval_fraction", 0.0 <= self.eval_fraction < 1.0, "must be in [0, 1)"),
            ("eval_every", isinstance(self.eval_every, int) and self.eval_every >= 1, "must be an integer >= 1"),
            ("delimiter", isinstance(self.delimiter, str) and bool(self.delimiter), "must be a non-empty string"),
            ("max_length", isinstance(self.max_length, int) and self.max_length >= 2, "must be an integer >= 2"),
            ("weight_decay", self.weight_decay >= 0, "must be >= 0"),
            ("grad_clip", self.grad_clip >= 0, "must be >= 0"),
            ("eval_batch_size", isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1,
             "must be an integer >= 1"),
        ]
        for name, ok, why in checks:
            if not ok:
                raise ValueError(f"VerifierConfig.{name}: {why}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------------
# Label records → training rows.


@dataclass(frozen=True)
class VerifierRow:
    """One trajectory with its labels over the prefixes s_1 … s_{H+1}.

    targets (H+1,) in [0, 1]; weights (H+1,) >= 0 (0: not labelled); outcome = Rex of the whole response, or
    None when the record's steps are not the whole response (cut by first-pit seeding) or it has no outcome.
    """

    problem_index: int
    prompt: str
    steps: tuple[str, ...]
    targets: np.ndarray
    weights: np.ndarray
    outcome: float | None = None


class LabelRecordError(ValueError):
    """A label record that cannot be used; the message names the record (file:line when known) and the field."""


def _fail(where: str, name: str, why: str) -> None:
    raise LabelRecordError(f"{where}: {name}: {why}")


def _as_label_array(where: str, name: str, value: Any, length: int) -> np.ndarray:
    if not isinstance(value, list) or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        _fail(where, name, "must be a list of numbers")
    arr = np.asarray(value, dtype=float)
    if len(arr) != length:
        _fail(where, name, f"has {len(arr)} values, expected len(steps) + 1 = {length}")
    if not np.all(np.isfinite(arr)) or arr.min(initial=0.0) < 0 or arr.max(initial=0.0) > 1:
        _fail(where, name, "values must lie in [0, 1]")
    return arr


def _outcome(where: str, record: Mapping[str, Any], required: bool) -> float | None:
    if "outcome" not in record or record["outcome"] is None:
        if required:
            _fail(where, "outcome", "missing (the ORM needs the seed's outcome)")
        return None
    value = record["outcome"]
    if value not in (0, 1) or isinstance(value, float) and not value.is_integer():
        _fail(where, "outcome", f"must be true/false or 0/1, got {value!r}")
    return float(value)


def verifier_rows(records: Sequence[Mapping[str, Any]], kind: str, delimiter: str = DEFAULT_DELIMITER, *,
                  source: str | None = None) -> list[VerifierRow]:
    """Training rows of ``kind`` from label records (the dicts :func:`pavkit.llm.label.label_problem` makes).

    Reads ``problem_index``, ``prompt``, ``steps`` (canonical under ``delimiter``), ``outcome``,
    ``num_seed_steps`` (optional) and ``v_pi`` (pqv) / ``v_mu`` (qmu), each of length H+1.

    - orm: target ``outcome`` at s_{H+1} with weight 1, weight 0 elsewhere. A record whose steps were cut by
      first-pit seeding (``num_seed_steps > len(steps)``) is skipped: its last prefix is not a whole response.
    - pqv / qmu: the soft label at every prefix, weight 1.

    ``source``: the file the records came from, record i being its line i+1; errors then read
    ``FILE:LINE: FIELD: reason`` (else ``record I: FIELD: reason``). Raises LabelRecordError (a ValueError).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    rows = []
    for i, rec in enumerate(records):
        where = f"{source}:{i + 1}" if source else f"record {i}"
        if not isinstance(rec, Mapping):
            _fail(where, "record", "not a JSON object")
        for name, typ in (("problem_index", int), ("prompt", str), ("steps", list)):
            if name not in rec:
                _fail(where, name, "missing")
            if not isinstance(rec[name], typ) or isinstance(rec[name], bool):
                _fail(where, name, f"must be {typ.__name__}, got {type(rec[name]).__name__}")
        steps = rec["steps"]
        try:
            check_steps(steps, delimiter)
        except ValueError as e:
            _fail(where, "steps", str(e))
        h = len(steps)
        seed_steps = rec.get("num_seed_steps", h)
        if not isinstance(seed_steps, int) or seed_steps < h:
            _fail(where, "num_seed_steps", f"must be an integer >= len(steps) = {h}, got {seed_steps!r}")
        whole = seed_steps == h
        outcome = _outcome(where, rec, required=kind == "orm")
        if kind == "orm":
            if not whole:
                continue
            targets, weights = np.zeros(h + 1), np.zeros(h + 1)
            targets[-1], weights[-1] = outcome, 1.0
        else:
            key = _LABEL_KEY[kind]
            if key not in rec:
                _fail(where, key, f"missing (needed for kind {kind})")
            targets, weights = _as_label_array(where, key, rec[key], h + 1), np.ones(h + 1)
        rows.append(VerifierRow(int(rec["problem_index"]), rec["prompt"], tuple(steps), targets, weights,
                                outcome if whole else None))
    return rows


def records_delimiter(records: Sequence[Mapping[str, Any]], default: str = DEFAULT_DELIMITER, *,
                      source: str | None = None) -> str:
    """The step delimiter the records were labelled with (``provenance.delimiter``), ``default`` if none says.

    LabelRecordError if two records disagree (``source`` as in :func:`verifier_rows`).
    """
    found: str | None = None
    for i, rec in enumerate(records):
        prov = rec.get("provenance") if isinstance(rec, Mapping) else None
        d = prov.get("delimiter") if isinstance(prov, Mapping) else None
        if d is None:
            continue
        if found is not None and d != found:
            where = f"{source}:{i + 1}" if source else f"record {i}"
            raise LabelRecordError(f"{where}: provenance.delimiter: {d!r} differs from {found!r} of an earlier "
                                   "record")
        found = d
    return found if found is not None else default


def split_by_problem(rows: Sequence[VerifierRow], fraction: float,
                     seed: int) -> tuple[list[VerifierRow], list[VerifierRow]]:
    """(train, eval) rows: a random ``fraction`` of the distinct problem indices is held out, whole.

    At least one problem is held out when ``fraction > 0`` and there are two or more problems; at least one
    always stays for training.
    """
    problems = np.array(sorted({r.problem_index for r in rows}), dtype=int)
    n_eval = 0
    if fraction > 0 and len(problems) >= 2:
        n_eval = min(max(1, round(fraction * len(problems))), len(problems) - 1)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5E1]))
    held = set(rng.permutation(problems)[:n_eval].tolist())
    return [r for r in rows if r.problem_index not in held], [r for r in rows if r.problem_index in held]


def epoch_weights(rows: Sequence[VerifierRow], balance: str, seed: int) -> list[np.ndarray]:
    """Per-row position weights (H_i+1,) for one epoch of class-balanced sampling (App. D).

    The labelled prefixes (weight > 0) of all rows are flattened; ``balanced_buckets(targets, seed, mode)`` draws
    a balanced multiset of them over the buckets target < 0.5 / >= 0.5; a prefix drawn m times gets
    m × its base weight (0 if not drawn). ``balance="none"``: the base weights.
    """
    from pavkit.llm.label import balanced_buckets

    if balance not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {', '.join(BALANCE_MODES)}, got {balance!r}")
    if balance == "none":
        return [r.weights.copy() for r in rows]
    row_of, pos_of, values = [], [], []
    for i, r in enumerate(rows):
        (labelled,) = np.nonzero(r.weights > 0)
        row_of += [i] * len(labelled)
        pos_of += labelled.tolist()
        values += r.targets[labelled].tolist()
    counts = np.bincount(balanced_buckets(np.asarray(values, dtype=float), seed, mode=balance),
                         minlength=len(values))
    out = [np.zeros_like(r.weights) for r in rows]
    for k, (i, h) in enumerate(zip(row_of, pos_of, strict=True)):
        out[i][h] = counts[k] * rows[i].weights[h]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Numpy metrics.


def binary_auc(scores: Sequence[float], labels: Sequence[float]) -> float | None:
    """Area under the ROC curve: P(score of a random positive > that of a random negative), ties counting 1/2.

    Mann–Whitney form with average ranks: AUC = (Σ ranks of positives − n⁺(n⁺+1)/2) / (n⁺ n⁻).
    scores, labels: (N,); labels in {0, 1}. None when one class is absent.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=float) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based rank shared by each group of ties
    ranks = average_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Elementwise soft-label BCE from logits, stable: max(z,0) − z·y + log(1 + e^{−|z|})."""
    z, y = np.asarray(logits, dtype=float), np.asarray(targets, dtype=float)
    return np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))


def constant_bce(targets: np.ndarray, weights: np.ndarray) -> float:
    """Weighted BCE of the best constant prediction c = Σ w·y / Σ w (the floor a label-blind model reaches)."""
    y, w = np.asarray(targets, dtype=float), np.asarray(weights, dtype=float)
    c = float(np.clip((w * y).sum() / w.sum(), 1e-12, 1 - 1e-12))
    return float((w * -(y * math.log(c) + (1 - y) * math.log(1 - c))).sum() / w.sum())


# ---------------------------------------------------------------------------------------------------------------
# Tokens and the forward pass (shared by training and scoring, so both read identical positions).


def read_positions(tokenizer: Any, prompt: str, steps: Sequence[str],
                   delimiter: str = DEFAULT_DELIMITER) -> tuple[list[int], np.ndarray]:
    """(input_ids (T,), read (H+1,)): the token index where V̂(s_1) … V̂(s_{H+1}) are read.

    read[0] = the last prompt token (the token before step 1's first token; T−1 without steps);
    read[h] = the last token of step h (its delimiter), h = 1 … H.
    """
    ids, spans = step_token_spans(tokenizer, prompt, steps, delimiter)
    first = spans[0][0] if spans else len(ids)
    if first < 1:
        raise ValueError(f"the prompt {prompt!r} has no token to read V(s_1) at (empty prompt, no BOS)")
    return ids, np.array([first - 1] + [end - 1 for _, end in spans], dtype=int)


def _pad_id(tokenizer: Any) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0


def _forward_logits(model: Any, id_lists: Sequence[Sequence[int]], pad_id: int,
                    reads: Sequence[np.ndarray] | None = None, call: Any = None) -> Any:
    """Head logits (B, T) of a right-padded batch, mask 0 on padding.

    ``reads``: each row's reading positions (:func:`read_positions`); the ``lm-features`` arch needs them (the
    response starts after ``reads[b][0]``), the token-classification arch ignores them. ``call``: what runs the
    token classifier's forward pass (its DistributedDataParallel wrapper in training; default the model).
    """
    import torch

    input_ids, mask = right_pad(id_lists, pad_id, model.device)
    if is_lm_features(model):
        start = torch.as_tensor([int(r[0]) + 1 for r in reads], device=model.device)
        return model.logits(input_ids, mask, start)
    return (call or model)(input_ids=input_ids, attention_mask=mask, use_cache=False).logits[..., 0]


def is_lm_features(model: Any) -> bool:
    """Is ``model`` an ``lm-features`` verifier (:mod:`pavkit.llm.lmfeatures`) rather than a token classifier?"""
    return getattr(model, "arch", None) == LM_FEATURES


# ---------------------------------------------------------------------------------------------------------------
# Model creation.


def init_verifier(base_path: str | Path, device: str | None = None, *, dtype: Any = None,
                  dropout: float | None = None) -> tuple[Any, Any]:
    """(model, tokenizer): ``AutoModelForTokenClassification(num_labels=1)`` on the causal LM folder ``base_path``.

    The backbone (``model.*``) is loaded from the checkpoint unchanged and ``lm_head`` is dropped; the head
    ``score`` (hidden → 1, bias) is new: weights N(0, initializer_range²), bias 0 (transformers' init, from
    torch's global RNG), i.e. V̂ ≈ 0.5 everywhere until :func:`train_verifier` re-draws it from its seed with
    the bias at the label mean (:func:`init_head`). ``dropout``: the dropout
    before the head (transformers' default for Llama-type configs is 0.1). Local files only; float32 unless
    ``dtype``; device default: cuda if available, else cpu.
    """
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    extra = {} if dropout is None else {"classifier_dropout": float(dropout)}
    tokenizer = AutoTokenizer.from_pretrained(base_path, local_files_only=True)
    model = AutoModelForTokenClassification.from_pretrained(
        base_path, num_labels=1, id2label={0: "V"}, label2id={"V": 0}, local_files_only=True,
        dtype=dtype or torch.float32, **extra)
    device = default_device(device)
    return model.to(device), tokenizer


def init_for_arch(arch: str, base_path: str | Path, device: str | None = None, *, seed: int = 0) -> tuple[Any, Any]:
    """(model, tokenizer) of a new verifier of ``arch`` (:data:`ARCHS`) on the causal LM folder ``base_path``."""
    if arch == LM_FEATURES:
        from pavkit.llm.lmfeatures import init_lm_feature_verifier

        return init_lm_feature_verifier(base_path, device, seed=seed)
    if arch != TOKEN_CLASSIFIER:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    return init_verifier(base_path, device)


def save_verifier(model: Any, tokenizer: Any, folder: str | Path, info: Mapping[str, Any]) -> None:
    """Write a trained verifier to ``folder`` (which must not exist yet): the model (a token classifier with
    ``save_pretrained``, or an lm-features causal LM + ``head.pt``), its tokenizer, and ``verifier.json`` = info
    with ``"arch"`` set. :meth:`Verifier.from_path` reads it back."""
    folder = Path(folder)
    if is_lm_features(model):
        model.save(folder, tokenizer)
    else:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    arch = LM_FEATURES if is_lm_features(model) else TOKEN_CLASSIFIER
    (folder / VERIFIER_JSON).write_text(json.dumps({**info, "arch": arch}, indent=2) + "\n")


def init_head(model: Any, mean: float, seed: int) -> None:
    """Re-initialise the head ``score``: weight ~ N(0, initializer_range²) from a generator seeded with ``seed``
    (so training is a function of the seed, not of torch's global RNG when the model was loaded), and
    bias ← logit(mean) (mean clipped to [0.01, 0.99]).

    Why the label mean and not 0.5: the initial V̂ is then the training label mean (up to the small random
    weights), the initial loss about the best constant's, and the first steps go into features rather than
    into moving the bias. With class-balanced sampling the mean is that of the balanced sample.
    """
    import torch

    std = float(getattr(model.config, "initializer_range", 0.02) or 0.02)
    weight = model.score.weight
    gen = torch.Generator().manual_seed(int(seed))
    p = min(max(mean, 0.01), 0.99)
    with torch.no_grad():
        weight.copy_(torch.randn(weight.shape, generator=gen, dtype=torch.float32).to(weight) * std)
        if getattr(model.score, "bias", None) is not None:
            model.score.bias.fill_(math.log(p / (1 - p)))


# ---------------------------------------------------------------------------------------------------------------
# Training.


@dataclass
class _Encoded:
    """A row's token ids (cut at max_length) and reading positions (H+1,); positions past the cut have keep 0."""

    ids: list[int]
    read: np.ndarray
    keep: np.ndarray


def _encode_rows(tokenizer: Any, rows: Sequence[VerifierRow], delimiter: str, max_length: int) -> list[_Encoded]:
    out, dropped = [], 0
    for r in rows:
        ids, read = read_positions(tokenizer, r.prompt, r.steps, delimiter)
        keep = (read < max_length).astype(float)
        dropped += int(((keep == 0) & (r.weights > 0)).sum())
        out.append(_Encoded(ids[:max_length], np.minimum(read, max_length - 1), keep))
    if dropped:
        warnings.warn(f"{dropped} labelled prefixes lie beyond max_length={max_length} tokens and are dropped",
                      stacklevel=3)
    return out


def _labelled(enc: _Encoded, target: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pos, y, w) of a row's labelled prefixes (weight > 0 and not cut by max_length); pos indexes ``enc.read``."""
    wt = weight * enc.keep
    (pos,) = np.nonzero(wt > 0)
    return pos, target[pos], wt[pos]


def _read_logits(model: Any, encoded: Sequence[tuple[Sequence[int], np.ndarray]], pad_id: int, batch_size: int,
                 stats: VerifierStats | None = None) -> list[np.ndarray]:
    """Head logits (H_b+1,) at the reading positions of each (ids, read) trajectory, float64, batched.

    Similar lengths share a batch (less padding); values do not depend on the batch (right padding). ``stats``
    (optional) counts the work done.
    """
    import torch

    out: list[np.ndarray] = [np.zeros(0)] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            ids, reads = [encoded[i][0] for i in chunk], [encoded[i][1] for i in chunk]
            z = _forward_logits(model, ids, pad_id, reads).float().cpu().numpy().astype(float)
            for k, i in enumerate(chunk):
                out[i] = z[k, encoded[i][1]]
            if stats is not None:
                stats.forward_tokens += sum(len(x) for x in ids)
                stats.padded_tokens += len(ids) * max(len(x) for x in ids)
                stats.trajectories += len(ids)
                stats.forward_passes += 1
    return out


def within_problem_auc(scores: Sequence[float], labels: Sequence[float], groups: Sequence[Any]) -> dict:
    """How well scores rank the items of the SAME group (problem): the mean over groups with both classes of
    the group's :func:`binary_auc`, its standard error (std / √G, ddof 1; None for G < 2), and G.

    A pooled AUC over problems rewards predicting which problems are hard; this one only counts comparisons of
    a problem's own correct and incorrect responses. scores, labels (N,), groups (N,) any hashable keys.
    Returns ``{"auc": float | None, "se": float | None, "problems": G}``.
    """
    s, y, g = np.asarray(scores, dtype=float), np.asarray(labels, dtype=float), np.asarray(groups)
    aucs = []
    for key in dict.fromkeys(g.tolist()):
        sel = g == key
        a = binary_auc(s[sel], y[sel])
        if a is not None:
            aucs.append(a)
    if not aucs:
        return {"auc": None, "se": None, "problems": 0}
    se = float(np.std(aucs, ddof=1) / math.sqrt(len(aucs))) if len(aucs) > 1 else None
    return {"auc": float(np.mean(aucs)), "se": se, "problems": len(aucs)}


SLIP = -0.1  # an exact step advantage below this leaves the worked solution's track (a slip)


def step_kinds(exact: np.ndarray) -> np.ndarray:
    """Kinds of a response's steps from their exact advantages (H,): 0 before its first slip (A < SLIP), 1 the
    first slip, 2 after it; (H,) ints. A response without a slip is all 0."""
    slips = np.flatnonzero(np.asarray(exact) < SLIP)
    h = np.arange(len(exact))
    return np.zeros(h.size, int) if slips.size == 0 else np.where(h < slips[0], 0, np.where(h == slips[0], 1, 2))


def credit_profile(learned: Sequence[np.ndarray], exact: Sequence[np.ndarray], bins: int = 5) -> dict:
    """Which steps of a set of responses (meant: the wrong ones) learned advantages credit, against exact ones.

    learned[i], exact[i]: (H_i,) per-step A^μ of response i. Returns ``{"steps": {kind: {"n", "learned",
    "exact"}}`` (mean A over the steps of each :func:`step_kinds` kind: before_slip, slip, after_slip),
    ``"by_position": {"n", "learned", "exact"}`` (lists over ``bins`` equal bins of the relative position h/H_i),
    ``"on_track_auc", "on_track_auc_se", "on_track_auc_responses"`` (:func:`within_problem_auc` with responses
    as the groups: P(a before-slip step gets a higher learned A than a slip or later step of the same response),
    ties ½, over responses with both) and ``"slip_auc", "slip_auc_se", "slip_auc_responses"`` (P(the slip gets
    a lower learned A than another step of its response), over responses with a slip and another step)}``.
    Both AUCs compare steps of one response only: what permuting A^μ within a response would destroy.
    """
    kinds = [step_kinds(e) for e in exact]
    k, al, ae = (np.concatenate([np.asarray(x, float) for x in xs]) if len(xs) else np.zeros(0)
                 for xs in (kinds, learned, exact))
    response = np.repeat(np.arange(len(exact)), [len(e) for e in exact])
    position = np.concatenate([np.arange(len(e)) * bins // max(len(e), 1) for e in exact]) if len(exact) \
        else np.zeros(0, int)

    def means(sel: np.ndarray) -> dict:
        return {"n": int(sel.sum()), **{name: float(x[sel].mean()) if sel.any() else None
                                        for name, x in (("learned", al), ("exact", ae))}}

    steps = {name: means(k == j) for j, name in enumerate(("before_slip", "slip", "after_slip"))}
    per_bin = [means(position == b) for b in range(bins)]
    aucs = {"on_track": within_problem_auc(al, (k == 0).astype(float), response),
            "slip": within_problem_auc(-al, (k == 1).astype(float), response)}
    return {"steps": steps, "by_position": {f: [m[f] for m in per_bin] for f in ("n", "learned", "exact")},
            **{f"{name}_auc{suffix}": auc[key] for name, auc in aucs.items()
               for suffix, key in (("", "auc"), ("_se", "se"), ("_responses", "problems"))}}


def evaluate(model: Any, tokenizer: Any, rows: Sequence[VerifierRow], *, delimiter: str = DEFAULT_DELIMITER,
             max_length: int = 512, batch_size: int = 32, _encoded: Sequence[_Encoded] | None = None,
             _logits: Sequence[np.ndarray] | None = None) -> dict:
    """Held-out metrics with the rows' base weights (no balancing):

    eval_bce (weighted soft BCE), eval_bce_const (the best constant's, :func:`constant_bce`), eval_mae
    (weighted |V̂ − MC label|), eval_positions; over rows with a whole-response outcome, V̂(s_{H+1}) as a
    predictor of the outcome: eval_auc (pooled over problems, :func:`binary_auc`) and eval_within_auc,
    eval_within_auc_se, eval_within_problems (:func:`within_problem_auc`, the measure that counts), when
    both outcomes occur. ``_logits``: the rows' logits at their reading positions, if already computed.
    """
    if not rows:
        raise ValueError("evaluate: no rows")
    encoded = _encoded if _encoded is not None else _encode_rows(tokenizer, rows, delimiter, max_length)
    if _logits is None:
        was_training = model.training
        model.eval()
        _logits = _read_logits(model, [(e.ids, e.read) for e in encoded], _pad_id(tokenizer), batch_size)
        model.train(was_training)
    zs, ys, ws, final, outcomes, groups = [], [], [], [], [], []
    for r, e, z in zip(rows, encoded, _logits, strict=True):
        pos, y, w = _labelled(e, r.targets, r.weights)
        zs.append(z[pos]), ys.append(y), ws.append(w)
        if r.outcome is not None and e.keep[-1] > 0:
            final.append(z[-1]), outcomes.append(r.outcome), groups.append(r.problem_index)
    z, y, w = np.concatenate(zs), np.concatenate(ys), np.concatenate(ws)
    if w.sum() <= 0:
        return {"eval_positions": 0}
    v = 1.0 / (1.0 + np.exp(-z))
    out = {"eval_bce": float((w * bce_with_logits(z, y)).sum() / w.sum()), "eval_bce_const": constant_bce(y, w),
           "eval_mae": float((w * np.abs(v - y)).sum() / w.sum()), "eval_positions": int(len(w))}
    auc = binary_auc(final, outcomes)
    if auc is not None:
        out["eval_auc"] = auc
    within = within_problem_auc(final, outcomes, groups)
    if within["auc"] is not None:
        out.update(eval_within_auc=within["auc"], eval_within_auc_se=within["se"],
                   eval_within_problems=within["problems"])
    return out


def _epoch_batches(weights: Sequence[np.ndarray], batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffled batches of the rows with any weight in this epoch; a pure function of (seed, epoch)."""
    live = np.array([i for i, w in enumerate(weights) if w.sum() > 0], dtype=int)
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 0xBA7C, int(epoch)])).permutation(live)
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]


class VerifierTrainer:
    """The training loop of :func:`train_verifier`, as an object so a caller can checkpoint and resume it.

    The sampling schedule is a pure function of (seed, epoch): epoch e's class-balanced weights
    (:func:`epoch_weights`) and batch order (:func:`_epoch_batches`). Resuming at step s replays the schedule
    (no forward pass) and restores model, optimiser and torch RNG from :meth:`state_dict`, so a resumed run
    takes the same batches as an uninterrupted one.
    """

    def __init__(self, model: Any, tokenizer: Any, records: Sequence[Mapping[str, Any]], cfg: VerifierConfig,
                 process: Process = SINGLE):
        import torch

        self.model, self.tokenizer, self.cfg, self.process = model, tokenizer, cfg, process
        if (cfg.arch == LM_FEATURES) != is_lm_features(model):
            raise ValueError(f"VerifierConfig.arch is {cfg.arch!r} but the model is "
                             f"{'an lm-features verifier' if is_lm_features(model) else 'a token classifier'}")
        rows = verifier_rows(records, cfg.kind, cfg.delimiter)
        self.train_rows, self.eval_rows = split_by_problem(rows, cfg.eval_fraction, cfg.seed)
        if not self.train_rows:
            raise ValueError("no training rows (no records, or no usable record for this kind)")
        self.train_enc = _encode_rows(tokenizer, self.train_rows, cfg.delimiter, cfg.max_length)
        self.eval_enc = _encode_rows(tokenizer, self.eval_rows, cfg.delimiter, cfg.max_length)
        # lm-features: the LM is frozen, so its readings (h, f) at every reading token are computed once here
        # and the head trains on them (pavkit.llm.lmfeatures); None for a fine-tuned token classifier.
        # Under torchrun every process reads its share of the training rows and they exchange the readings; the
        # held-out rows are read by the main process alone (it alone evaluates).
        self.train_cache = self.eval_cache = None
        if is_lm_features(model):
            self.train_cache = self._readings(self.train_enc, process)
            if process.main:
                self.eval_cache = self._readings(self.eval_enc, SINGLE)
        # what trains: the head on cached readings (lm-features) or the whole token classifier; under torchrun
        # a DistributedDataParallel wrapper of it (pavkit.distributed), the forward passes of training go through
        self.trained = data_parallel(model.head if self.train_cache is not None else model, process)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.iteration = 0
        torch.manual_seed(cfg.seed)  # the head's dropout; restored from the checkpoint on resume

    def _readings(self, enc: Sequence[Any], process: Process) -> list[tuple[Any, Any]]:
        """The frozen LM's readings (h, f) of every encoded row (pavkit.llm.lmfeatures.read_features), each
        process reading every world-th row and receiving the others' (distributed.all_gather_rows)."""
        from pavkit.llm.lmfeatures import read_features

        mine = range(process.rank, len(enc), process.world)
        local = read_features(self.model, [enc[i].ids for i in mine], [enc[i].read for i in mine],
                              _pad_id(self.tokenizer), self.cfg.eval_batch_size)
        if process.world == 1:
            return local
        rows = all_gather_rows([(h.cpu(), f.cpu()) for h, f in local], len(enc), process)
        return [(h.to(self.model.device), f.to(self.model.device)) for h, f in rows]

    def _draw(self, epoch: int) -> list[np.ndarray]:
        seed = int(np.random.SeedSequence([int(self.cfg.seed), 0xE90C, int(epoch)]).generate_state(1)[0])
        return epoch_weights(self.train_rows, self.cfg.balance, seed)

    def _schedule(self) -> Iterator[tuple[int, list[np.ndarray], np.ndarray]]:
        """(epoch, weights, batch row indices) for every optimiser step, endlessly."""
        epoch = 0
        while True:
            weights = self._draw(epoch)
            batches = _epoch_batches(weights, self.cfg.batch_size, self.cfg.seed, epoch)
            if not batches:
                raise ValueError("no labelled prefix to train on")
            for idx in batches:
                yield epoch, weights, idx
            epoch += 1

    def state_dict(self) -> dict:
        """What a resume needs: iteration, model and optimiser state, torch's RNG state."""
        import torch

        return {"iter": self.iteration, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        import torch

        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        self.iteration = int(state["iter"])

    def evaluate(self) -> dict | None:
        """:func:`evaluate` on the held-out problems with ``{"iter"}``; None when nothing is held out, and in every
        process but the main one under torchrun (the main one writes the records)."""
        if not self.eval_rows or not self.process.main:
            return None
        logits = None
        if self.eval_cache is not None:
            import torch

            with torch.inference_mode():
                self.model.eval()
                logits = [self.model.head(h, f).double().cpu().numpy() for h, f in self.eval_cache]
        return {"iter": self.iteration, **evaluate(self.model, self.tokenizer, self.eval_rows,
                                                   batch_size=self.cfg.eval_batch_size, _encoded=self.eval_enc,
                                                   _logits=logits)}

    def _batch_logits(self, weights: list[np.ndarray], idx: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, int]:
        """(z, y, w, tokens run forward) at the labelled prefixes of the rows ``idx`` under this epoch's weights."""
        import torch

        parts = [(i, *_labelled(self.train_enc[i], self.train_rows[i].targets, weights[i])) for i in idx]
        y, w = np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts])
        if self.train_cache is not None:
            h = torch.cat([self.train_cache[i][0][torch.as_tensor(pos)] for i, pos, _, _ in parts])
            f = torch.cat([self.train_cache[i][1][torch.as_tensor(pos)] for i, pos, _, _ in parts])
            return self.trained(h, f), y, w, 0
        enc = [self.train_enc[i] for i in idx]
        z = _forward_logits(self.model, [e.ids for e in enc], _pad_id(self.tokenizer), [e.read for e in enc],
                            call=self.trained)
        b = np.concatenate([np.full(len(p[1]), k) for k, p in enumerate(parts)]).astype(int)
        t = np.concatenate([e.read[p[1]] for e, p in zip(enc, parts, strict=True)]).astype(int)
        return z[b, t], y, w, sum(len(e.ids) for e in enc)

    def _step(self, weights: list[np.ndarray], idx: np.ndarray) -> dict:
        """One optimiser step on the batch ``idx``: loss Σ w·BCE / Σ w over its labelled positions.

        Under torchrun each process runs its shard of ``idx`` and divides its Σ w·BCE by the whole batch's Σ w
        (known to every process without communication), times the world size that DDP's gradient average
        divides by: the summed gradient is the whole batch's. A process whose shard is empty (a last batch
        smaller than the world) runs one row with weight 0, so that every process joins the gradient exchange.
        """
        import torch

        process, scale = self.process, 1.0
        if process.world > 1:
            total = sum(float(_labelled(self.train_enc[i], self.train_rows[i].targets, weights[i])[2].sum())
                        for i in idx)
            mine = shard(idx, process)
            scale = process.world / total if len(mine) else 0.0
            idx = mine if len(mine) else idx[:1]
        z, y, w, tokens = self._batch_logits(weights, idx)
        y_t = torch.as_tensor(y, dtype=z.dtype, device=z.device)
        w_t = torch.as_tensor(w, dtype=z.dtype, device=z.device)
        per = torch.nn.functional.binary_cross_entropy_with_logits(z, y_t, reduction="none")
        loss = (w_t * per).sum() / w_t.sum() if process.world == 1 else (w_t * per).sum() * scale
        lr = self.cfg.lr * warmup_cosine(self.iteration, self.cfg.warmup, self.cfg.iters)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.optimizer.step()
        self.iteration += 1
        reported, trajectories, positions = float(loss.detach()), len(idx), len(y)
        if process.world > 1:  # the whole batch's figures, as one process reports them
            mine = scale > 0
            reported, trajectories, positions, tokens = all_sum(
                [reported / process.world, trajectories * mine, positions * mine, tokens * mine], process)
        return {"iter": self.iteration, "loss": reported, "lr": lr, "trajectories": int(trajectories),
                "positions": int(positions), "tokens": int(tokens)}

    def run(self) -> Iterator[dict]:
        """Train from ``self.iteration`` to ``cfg.iters``; yields the records described in :func:`train_verifier`."""
        cfg, schedule = self.cfg, self._schedule()
        for _ in range(self.iteration):  # replay the batches a resumed run already took
            next(schedule)
        if self.iteration == 0:
            if cfg.init_head:
                _, weights, _ = next(self._schedule())
                w = np.concatenate(weights) * np.concatenate([e.keep for e in self.train_enc])
                y = np.concatenate([r.targets for r in self.train_rows])
                mean = float((w * y).sum() / max(w.sum(), 1e-12))
                if self.train_cache is not None:
                    from pavkit.llm.lmfeatures import init_feature_head

                    feats = [f[np.nonzero(wt * e.keep > 0)[0]]
                             for (_, f), wt, e in zip(self.train_cache, weights, self.train_enc, strict=True)]
                    init_feature_head(self.model.head, feats, mean, cfg.seed)
                else:
                    init_head(self.model, mean, cfg.seed)
            if (rec := self.evaluate()) is not None:
                yield rec
        start = time.perf_counter()
        self.model.train()
        while self.iteration < cfg.iters:
            epoch, weights, idx = next(schedule)
            rec = self._step(weights, idx)
            yield {**rec, "epoch": epoch, "seconds": round(time.perf_counter() - start, 4)}
            if self.iteration % cfg.eval_every == 0 or self.iteration == cfg.iters:
                if (rec := self.evaluate()) is not None:
                    yield rec
                self.model.train()
        self.model.eval()


def train_verifier(model: Any, tokenizer: Any, records: Sequence[Mapping[str, Any]],
                   cfg: VerifierConfig) -> Iterator[dict]:
    """Train ``model`` (from :func:`init_verifier`) in place on label ``records``; a generator of log records.

    Yields per optimiser step ``{"iter", "loss", "lr", "epoch", "trajectories", "positions", "tokens",
    "seconds"}`` (iter 1 … cfg.iters; loss = the batch's weighted BCE; lr = the rate that step used; tokens =
    real tokens run forward; seconds since training started) and, before the first step, every ``eval_every``
    steps and after the last, ``{"iter", "eval_bce", "eval_bce_const", "eval_mae", "eval_positions"[,
    "eval_auc"]}`` on the held-out problems (none when ``eval_fraction`` is 0). Leaves the model in eval mode.

    One forward pass per trajectory reads all its labelled positions. Each epoch re-draws the class-balanced
    weights (:func:`epoch_weights`); batches hold ``batch_size`` trajectories; the loss is Σ w·BCE / Σ w over
    the batch's positions. Before the first step the head is re-initialised from ``cfg.seed`` with its bias at
    logit(mean training label) under the first epoch's weights (:func:`init_head`, ``cfg.init_head``).
    ``cfg.seed`` drives the split, the draws, the order, the head and torch's global RNG (head dropout). For
    checkpoint/resume use :class:`VerifierTrainer` directly.
    """
    return VerifierTrainer(model, tokenizer, records, cfg).run()


# ---------------------------------------------------------------------------------------------------------------
# Scoring.


def _saved(path: str | Path, delimiter: str | None) -> tuple[Path, dict, str]:
    """(the checkpoint folder, its verifier.json ({} without one), the delimiter): a train-verifier run directory
    resolves to its model/; ``delimiter`` None is the one verifier.json records, else "\\n"."""
    path = verifier_dir(path)
    info = json.loads((path / VERIFIER_JSON).read_text()) if (path / VERIFIER_JSON).exists() else {}
    return path, info, delimiter if delimiter is not None else info.get("config", {}).get("delimiter",
                                                                                          DEFAULT_DELIMITER)


@dataclass
class Verifier:
    """A trained verifier: V̂ of every prefix of trajectories, one forward pass per trajectory, batched.

    ``model`` is a token-classification model with one label (its logit at a reading token is V̂'s logit),
    ``tokenizer`` a fast tokenizer; ``delimiter`` the step delimiter; ``batch_size`` trajectories per forward.
    """

    model: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    delimiter: str = DEFAULT_DELIMITER
    batch_size: int = 32
    stats: VerifierStats = field(default_factory=VerifierStats)
    info: dict = field(default_factory=dict)  # verifier.json of a saved checkpoint (kind, config, metrics)

    def __post_init__(self) -> None:
        if not is_lm_features(self.model) and getattr(self.model.config, "num_labels", None) != 1:
            raise ValueError(f"a verifier model needs num_labels=1, got {self.model.config.num_labels}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        self.model.eval()

    @classmethod
    def from_path(cls, path: str | Path, *, delimiter: str | None = None, device: str | None = None,
                  batch_size: int = 32, dtype: Any = None) -> Verifier:
        """Load a saved verifier with plain transformers (local files only).

        ``path``: the checkpoint folder, or a `pavkit llm train-verifier` run directory (its ``model/``).
        ``delimiter``: default the one in the checkpoint's verifier.json, else "\\n". Device default: cuda if
        available, else cpu; float32 unless ``dtype``.
        """
        import torch
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        path, info, delimiter = _saved(path, delimiter)
        device = default_device(device)
        if info.get("arch") == LM_FEATURES:
            from pavkit.llm.lmfeatures import LMFeatureModel

            model, tokenizer = LMFeatureModel.load(path, dtype=dtype, device=device)
            return cls(model, tokenizer, delimiter=delimiter, batch_size=batch_size, info=info)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModelForTokenClassification.from_pretrained(path, local_files_only=True,
                                                                dtype=dtype or torch.float32)
        return cls(model.to(device), tokenizer, delimiter=delimiter, batch_size=batch_size, info=info)

    def prefix_logits(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Head logits (H_b+1,) at the reading tokens of s_1 … s_{H_b+1} of each trajectory b (float64)."""
        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts but {len(steps)} step lists")
        encoded = [read_positions(self.tokenizer, p, s, self.delimiter) for p, s in zip(prompts, steps, strict=True)]
        return _read_logits(self.model, encoded, _pad_id(self.tokenizer), self.batch_size, self.stats)

    def prefix_values(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """V̂ (H_b+1,) of the prefixes s_1 … s_{H_b+1} of each trajectory b: sigmoid of :meth:`prefix_logits`."""
        return [1.0 / (1.0 + np.exp(-z)) for z in self.prefix_logits(prompts, steps)]

    def values(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> np.ndarray:
        """(B,) V̂ of each whole prefix (prompt, steps[b]): the last element of :meth:`prefix_values`.

        Costs the same single forward pass per trajectory as :meth:`prefix_values`.
        """
        return np.array([v[-1] for v in self.prefix_values(prompts, steps)], dtype=float)


@dataclass
class VLLMVerifier(Verifier):
    """A token-classification verifier served by vLLM's pooling runner: the V̂ of :class:`Verifier` (the same
    reading tokens, :func:`read_positions`), every trajectory of a call in one ``LLM.encode`` that vLLM batches
    and schedules itself. ``model`` is the ``vllm.LLM``. The head's raw logits are read (``use_activation=False``)
    and the sigmoid applied here, as :class:`Verifier` does. Build it with :meth:`from_path`; vllm is imported
    only there.

    lm-features verifiers (the default arch) are refused: their head reads the LM's log-probabilities of the
    written tokens beside its hidden state, which vLLM's pooling runner does not serve.
    """

    def __post_init__(self) -> None:
        self.batch_size = 0  # vLLM schedules its own batches

    @classmethod
    def from_path(cls, path: str | Path, *, delimiter: str | None = None, **llm_kwargs: Any) -> VLLMVerifier:
        """``vllm.LLM(model=path, runner="pooling", dtype="float32", …)`` over a saved token-classification
        verifier (a checkpoint folder or a train-verifier run directory); ``llm_kwargs`` go to ``vllm.LLM``
        (float32 unless ``dtype`` is given: vLLM's "auto" would run a float32 checkpoint in bfloat16). Prefix
        caching is off: a pooled token's output is not cached, so a prefix served from the cache has none."""
        from transformers import AutoTokenizer
        from vllm import LLM
        from vllm.platforms import current_platform

        from pavkit.llm.engines import vllm_llm_kwargs

        path, info, delimiter = _saved(path, delimiter)
        if info.get("arch") == LM_FEATURES:
            raise ValueError(f"{path}: an lm-features verifier reads the LM's log-probabilities beside its hidden "
                             "state, which vLLM's pooling runner does not serve; score it with transformers "
                             "(--verifier-engine hf)")
        kwargs = vllm_llm_kwargs({"dtype": "float32", **llm_kwargs, "enable_prefix_caching": False},
                                 on_cpu=current_platform.is_cpu())
        llm = LLM(model=str(path), runner="pooling", **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        return cls(llm, tokenizer, delimiter=delimiter, info=info)

    def prefix_logits(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Head logits (H_b+1,) at the reading tokens of s_1 … s_{H_b+1} of each trajectory b (float64)."""
        from vllm import PoolingParams

        if len(prompts) != len(steps):
            raise ValueError(f"{len(prompts)} prompts but {len(steps)} step lists")
        if not prompts:
            return []
        encoded = [read_positions(self.tokenizer, p, s, self.delimiter) for p, s in zip(prompts, steps, strict=True)]
        outputs = self.model.encode([{"prompt_token_ids": list(ids)} for ids, _ in encoded],
                                    PoolingParams(use_activation=False), pooling_task="token_classify",
                                    use_tqdm=False)
        self.stats.forward_passes += 1
        self.stats.trajectories += len(encoded)
        self.stats.forward_tokens += sum(len(ids) for ids, _ in encoded)
        self.stats.padded_tokens += sum(len(ids) for ids, _ in encoded)  # vLLM packs sequences: no padding
        return [o.outputs.data[read, 0].double().cpu().numpy() for o, (_, read) in zip(outputs, encoded,
                                                                                          strict=True)]


ORACLE = "organism-oracle"  # names the exact step checker of the model organism wherever a verifier path goes


def load_verifier(path: str | Path, *, delimiter: str | None = None, tokenizer: Any = None,
                  device: str | None = None, engine: str = "hf", vllm_options: Mapping[str, Any] | None = None):
    """A verifier by path: a saved one (:meth:`Verifier.from_path`; with ``engine="vllm"``
    :meth:`VLLMVerifier.from_path`, ``vllm_options`` going to ``vllm.LLM``), a public PRM by its ``prm:DIR?…``
    spec (``pavkit.llm.prm.PRMVerifier``, which reads step tags instead of ``delimiter``), or for ``ORACLE`` the
    organism's exact step checker (``pavkit.llm.organism.OracleVerifier``, a control, not a learned model;
    ``tokenizer`` only serves token counting; no engine runs it)."""
    from pavkit.llm.prm import PRMVerifier, is_prm_spec
    from pavkit.llm.sampling import ENGINES

    if engine not in ENGINES:
        raise ValueError(f"verifier engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if str(path) == ORACLE:
        from pavkit.llm.organism import OracleVerifier

        return OracleVerifier(tokenizer, delimiter=delimiter or DEFAULT_DELIMITER)
    if is_prm_spec(str(path)):
        if engine == "vllm":
            raise ValueError(f"{path}: public PRMs are scored with transformers (--verifier-engine hf)")
        return PRMVerifier.from_spec(str(path), device=device)
    if engine == "vllm":
        return VLLMVerifier.from_path(path, delimiter=delimiter, **(vllm_options or {}))
    return Verifier.from_path(path, delimiter=delimiter, device=device)
