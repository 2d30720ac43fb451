r"""The ``lm-features`` verifier: a frozen causal LM that reads π's writing, and a small learned head.

Why. A head on the last hidden state of π's backbone, fine-tuned by BCE on Monte Carlo labels, learned problem
difficulty ("few operations = easy") but not which of a problem's responses went wrong: within-problem AUC ≈ 0.5
on the model organism while π's own token log-probabilities ranked the same responses at 0.86. Almost every
wrong organism response is an arithmetic slip, a token the LM would not have written; the evidence that a slip
happened is the LM's *next-token distribution at the written token*, which a head on the hidden state at the
step's end cannot see. So the head reads both:

    z(s) = w · h_r + MLP( standardise( f_r ) ) + b,        V̂(s) = sigmoid(z(s))

at the reading token r of the prefix s (the step's delimiter, :func:`pavkit.llm.verifier.read_positions`), with

- ``h_r`` (D,): the LM's last hidden state (after the final norm) at r;
- ``f_r`` (F,): running statistics, over the *response* tokens t ≤ r (the prompt's tokens are not π's
  writing), of two per-token quantities of the LM's next-token distribution p(· | y_<t):

      lp_t  = log p(y_t | y_<t)                       (how likely the written token was)
      gap_t = lp_t − max_v log p(v | y_<t) ≤ 0        (how far it was below the LM's own first choice)

  :data:`FEATURES` names the F = 6 statistics: min lp, min gap, mean lp, Σ gap, the count of "disagreements"
  (tokens with gap < −log 2: another token was at least twice as likely), and the number of response tokens
  (÷ 100). At the prompt's reading token (s_1) there is no response yet and every statistic is 0.

The LM is frozen (no gradient; the head's F + D + MLP parameters are all that trains), so a training run
computes ``h`` and ``f`` at the reading tokens once per trajectory (:func:`read_features`) and then fits the head
on those cached arrays: thousands of optimiser steps cost seconds. The LM may be stronger than π (the paper's
PAVs are Gemma 9B for a 2B base); it must share π's tokenizer, since f is a reading of π's tokens.

Saved as a plain causal-LM folder (``save_pretrained``, loads with ``AutoModelForCausalLM``) plus ``head.pt``
(the head's state dict and the feature standardisation) beside ``verifier.json`` (``"arch": "lm-features"``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pavkit.distributed import default_device
from pavkit.llm.folders import HEAD_FILE

FEATURES = ("min_logprob", "min_gap", "mean_logprob", "sum_gap", "disagreements", "tokens_per_100")
DISAGREE_GAP = -math.log(2.0)  # gap below this: another token was at least twice as likely as the written one
ARCH = "lm-features"
LOGIT_BUDGET = 2**25  # most logits (rows × T × V) materialised at once when reading features (128 MB of float32)


def token_statistics(logits: Any, input_ids: Any, mask: Any, start: Any) -> Any:
    r"""Running log-probability statistics (B, T, F) of every position of a right-padded batch.

    logits (B, T, V): the LM's next-token logits (position t predicts token t+1); input_ids, mask (B, T);
    start (B,): index of the first response token of each row. Position t's features summarise the response
    tokens u with start ≤ u ≤ t (see the module docstring); positions before ``start`` and padding get 0.
    Column order: :data:`FEATURES`. All float32.
    """
    import torch

    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)                       # predicts tokens 1 … T−1
    lp = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    gap = lp - logp.max(dim=-1).values
    zero = torch.zeros_like(lp[:, :1])
    lp, gap = torch.cat([zero, lp], 1), torch.cat([zero, gap], 1)                  # (B, T), token 0 has none
    pos = torch.arange(lp.shape[1], device=lp.device)[None, :]
    resp = (pos >= start[:, None]) & (mask > 0)
    lp, gap = lp.masked_fill(~resp, 0.0), gap.masked_fill(~resp, 0.0)
    n = resp.float().cumsum(1)
    min_lp = lp.clamp(min=-30.0).cummin(1).values                                  # 0 until the first response
    min_gap = gap.clamp(min=-30.0).cummin(1).values                                # token: min over nothing = 0
    mean_lp = lp.cumsum(1) / n.clamp(min=1.0)
    disagree = ((gap < DISAGREE_GAP) & resp).float().cumsum(1)
    return torch.stack([min_lp, min_gap, mean_lp, gap.cumsum(1), disagree, n / 100.0], dim=-1)


def make_head(hidden: int, features: int = len(FEATURES), width: int = 32):
    r"""The head module: z = w·h + MLP((f − μ)/σ) + b, MLP = Linear(F, width) → tanh → Linear(width, 1).

    μ, σ (F,) are buffers set from the training rows by ``head.standardise(f)``; torch is imported here only.
    """
    import torch

    class FeatureHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = torch.nn.Linear(hidden, 1)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(features, width), torch.nn.Tanh(),
                                           torch.nn.Linear(width, 1, bias=False))
            self.register_buffer("f_mean", torch.zeros(features))
            self.register_buffer("f_std", torch.ones(features))

        def standardise(self, f: Any) -> None:
            """Set μ, σ from (N, F) feature rows (σ floored so a constant feature stays finite)."""
            self.f_mean.copy_(f.mean(0))
            self.f_std.copy_(f.std(0).clamp(min=1e-3))

        def forward(self, h: Any, f: Any) -> Any:  # (..., D), (..., F) → (...)
            return (self.hidden(h) + self.mlp((f - self.f_mean) / self.f_std))[..., 0]

    return FeatureHead()


def init_feature_head(head: Any, features: Sequence[Any], mean: float, seed: int) -> None:
    """Initialise a head before training, as a function of ``seed``: standardisation from the training rows'
    features (list of (n_b, F) tensors at the labelled prefixes), hidden weights N(0, 0.02²), MLP input layer
    N(0, 1/F), MLP output layer 0 and bias logit(mean) (``mean`` clipped to [0.01, 0.99]): the first prediction
    is the label mean, as for the token-classification head (``pavkit.llm.verifier.init_head``)."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    p = min(max(mean, 0.01), 0.99)
    with torch.no_grad():
        head.standardise(torch.cat(list(features)).float())
        lin, out = head.mlp[0], head.mlp[2]
        for param, std in ((head.hidden.weight, 0.02), (lin.weight, 1 / math.sqrt(lin.in_features))):
            param.copy_(torch.randn(param.shape, generator=gen) * std)
        lin.bias.zero_()
        out.weight.zero_()
        head.hidden.bias.fill_(math.log(p / (1 - p)))


class LMFeatureModel:
    """A frozen causal LM plus a head (:func:`make_head`): what ``Verifier`` and the trainer call for this arch.

    ``lm``: an ``AutoModelForCausalLM`` (eval mode, requires_grad off); ``head``: the head module.
    """

    arch = ARCH

    def __init__(self, lm: Any, head: Any, *, ablate: str | None = None):
        if ablate not in (None, "hidden", "features"):
            raise ValueError(f"ablate must be None, 'hidden' or 'features', got {ablate!r}")
        self.lm, self.head = lm.eval(), head
        self.ablate = ablate  # zero one input of the head (ablation studies, bench/verifiers.py); not saved
        for p in self.lm.parameters():
            p.requires_grad_(False)
        self.config = lm.config

    @property
    def device(self):
        return self.lm.device

    def parameters(self):
        """The trainable parameters: the head's."""
        return self.head.parameters()

    def train(self, mode: bool = True) -> LMFeatureModel:
        self.head.train(mode)  # the LM stays in eval mode: it is a fixed reader
        return self

    def eval(self) -> LMFeatureModel:
        return self.train(False)

    @property
    def training(self) -> bool:
        return self.head.training

    def state_dict(self) -> dict:
        return self.head.state_dict()  # the LM never changes: a checkpoint holds the head only

    def load_state_dict(self, state: dict) -> None:
        self.head.load_state_dict(state)

    def hidden_and_features(self, input_ids: Any, mask: Any, start: Any) -> tuple[Any, Any]:
        """(h (B, T, D), f (B, T, F)) of a right-padded batch, without gradient (the LM is frozen)."""
        import torch

        with torch.no_grad():
            h = self.lm.base_model(input_ids=input_ids, attention_mask=mask, use_cache=False).last_hidden_state
            head = self.lm.get_output_embeddings()
            # (rows, T, V) logits in chunks of rows: a 49k vocabulary at T = 300 is 60 MB per row in float32
            rows = max(1, LOGIT_BUDGET // max(1, h.shape[1] * head.out_features))
            f = torch.cat([token_statistics(head(h[i:i + rows]), input_ids[i:i + rows], mask[i:i + rows],
                                            start[i:i + rows]) for i in range(0, h.shape[0], rows)])
            h = h.float()
            if self.ablate == "hidden":
                h = torch.zeros_like(h)
            elif self.ablate == "features":
                f = torch.zeros_like(f)
            return h, f

    def logits(self, input_ids: Any, mask: Any, start: Any) -> Any:
        """Head logits (B, T) at every position."""
        h, f = self.hidden_and_features(input_ids, mask, start)
        return self.head(h, f)

    def save(self, folder: str | Path, tokenizer: Any) -> None:
        import torch

        folder = Path(folder)
        self.lm.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        torch.save({"state": self.head.state_dict(), "hidden": self.head.hidden.in_features,
                    "width": self.head.mlp[0].out_features, "features": list(FEATURES)}, folder / HEAD_FILE)

    @classmethod
    def load(cls, folder: str | Path, *, dtype: Any = None, device: str | None = None) -> tuple[Any, Any]:
        """(model, tokenizer) of a saved lm-features verifier folder (local files only)."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder)
        saved = torch.load(folder / HEAD_FILE, map_location="cpu", weights_only=True)
        if list(saved["features"]) != list(FEATURES):
            raise ValueError(f"{folder / HEAD_FILE}: features {saved['features']} differ from this pavkit's "
                             f"{list(FEATURES)}")
        lm = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32, local_files_only=True)
        head = make_head(int(saved["hidden"]), len(FEATURES), int(saved["width"]))
        head.load_state_dict(saved["state"])
        device = default_device(device)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return cls(lm.to(device), head.to(device)), tokenizer


def init_lm_feature_verifier(base_path: str | Path, device: str | None = None, *, dtype: Any = None,
                             width: int = 32, seed: int = 0, ablate: str | None = None) -> tuple[LMFeatureModel, Any]:
    """(model, tokenizer): the causal LM at ``base_path`` (frozen) and a new head (weights from ``seed``);
    ``ablate`` "hidden" / "features" zeroes that input of the head (:class:`LMFeatureModel`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    lm = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype or torch.float32, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(base_path, local_files_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        head = make_head(lm.config.hidden_size, len(FEATURES), width)
    device = default_device(device)
    return LMFeatureModel(lm.to(device), head.to(device), ablate=ablate), tokenizer


def read_features(model: LMFeatureModel, id_lists: Sequence[Sequence[int]], reads: Sequence[np.ndarray],
                  pad_id: int, batch_size: int = 32) -> list[tuple[Any, Any]]:
    """Per trajectory, (h (H+1, D), f (H+1, F)) at its reading positions ``reads[b]`` (H_b+1,), batched.

    ``reads[b][0]`` is the last prompt token, so the response starts at ``reads[b][0] + 1``. Similar lengths
    share a batch; right padding cannot change any value (causal attention).
    """
    import torch

    from pavkit.llm.prefix import right_pad

    out: list[tuple[Any, Any]] = [None] * len(id_lists)  # type: ignore[list-item]
    order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]))
    for s in range(0, len(order), batch_size):
        chunk = order[s:s + batch_size]
        input_ids, mask = right_pad([id_lists[i] for i in chunk], pad_id, model.device)
        start = torch.as_tensor([int(reads[i][0]) + 1 for i in chunk], device=model.device)
        h, f = model.hidden_and_features(input_ids, mask, start)
        for k, i in enumerate(chunk):
            r = torch.as_tensor(np.asarray(reads[i]), device=model.device)
            out[i] = (h[k, r], f[k, r])
    return out
