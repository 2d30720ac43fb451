"""Forward passes over many continuations of a few prompts, each distinct prompt run once.

RL scores a group of responses to one prompt (log-probs under π and π_init, the verifier's prefix values): the
prompt is about half the tokens of an organism row. Here every distinct prompt runs forward once, all but its
last token, left-padded (:func:`prompt_cache`); each row then runs only its *tail*, the prompt's last token
followed by the row's own tokens, right-padded, on a copy of its prompt's keys and values
(:func:`tail_batches`). Position ids follow the left-padding rule of ``HFEngine`` (cumsum of the mask − 1), so a
tail sees the positions of its unpadded row, and causal attention makes the right padding invisible: the outputs
are those of each unpadded row (up to float rounding). Gradients flow through both passes when grad is enabled.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any


def right_pad(id_lists: Sequence[Sequence[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    """(input_ids, attention_mask) (B, T) of a right-padded batch on ``device``; T = the longest sequence."""
    import torch

    width = max(len(ids) for ids in id_lists)
    input_ids = torch.full((len(id_lists), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(id_lists), width), dtype=torch.long)
    for b, ids in enumerate(id_lists):
        input_ids[b, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
        mask[b, : len(ids)] = 1
    return input_ids.to(device), mask.to(device)


@dataclass
class PromptCache:
    """Keys and values of P distinct prompts (all but their last token), left-padded to width W.

    kv: per layer (keys, values) (P, heads, W−1, d), or None when every prompt is one token; mask (P, W) and
    positions (P, W): attention mask and position ids of the padded prompts.
    """

    kv: list | None
    mask: Any
    positions: Any


def prompt_cache(model: Any, prompts: Sequence[Sequence[int]], pad_id: int) -> PromptCache:
    """Run every prompt but its last token once through ``model`` (a causal LM; its base model computes the same
    keys and values, so either can run the tails)."""
    import torch
    from transformers import DynamicCache

    device = next(model.parameters()).device
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(list(p))
        mask[i, width - len(p):] = 1
    ids, mask = ids.to(device), mask.to(device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    if width == 1:
        return PromptCache(None, mask, pos)
    cache = DynamicCache(config=model.config)
    model(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], position_ids=pos[:, :-1], past_key_values=cache,
          use_cache=True, logits_to_keep=1)
    return PromptCache([(layer.keys, layer.values) for layer in cache.layers], mask, pos)


def tail_batches(prompts: PromptCache, which: Sequence[int], tails: Sequence[Sequence[int]], pad_id: int,
                 rows: int) -> Iterator[tuple[list[int], Any, Any, dict]]:
    """Batches of at most ``rows`` tails of similar length (sorted, so a batch pads little).

    which (N,): the prompt index of each row; tails: N token lists, each its prompt's last token and then the
    row's tokens. Yields (row indices (b,), input_ids (b, w), tail mask (b, w), keyword arguments of the model's
    forward: attention_mask (b, W−1+w) over prompt and tail, position_ids (b, w), past_key_values).
    """
    import torch
    from transformers import DynamicCache

    device = prompts.mask.device
    order = sorted(range(len(tails)), key=lambda i: len(tails[i]))
    for s in range(0, len(order), rows):
        chunk = order[s:s + rows]
        src = torch.tensor([which[i] for i in chunk], device=device)
        w = max(len(tails[i]) for i in chunk)
        ids = torch.full((len(chunk), w), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), w), dtype=torch.long)
        for k, i in enumerate(chunk):
            ids[k, :len(tails[i])] = torch.tensor(list(tails[i]), dtype=torch.long)
            mask[k, :len(tails[i])] = 1
        ids, mask = ids.to(device), mask.to(device)
        cache = DynamicCache(ddp_cache_data=[(k[src], v[src]) for k, v in prompts.kv]) if prompts.kv else None
        kwargs = {"attention_mask": torch.cat([prompts.mask[src, :-1], mask], dim=1),
                  "position_ids": prompts.positions[src, -1:] + torch.arange(w, device=device),
                  "past_key_values": cache, "use_cache": cache is not None}
        yield chunk, ids, mask, kwargs


def distinct_prompts(prompt_ids: Sequence[Sequence[int]]) -> tuple[list[tuple[int, ...]], list[int]]:
    """(the distinct prompts in first-seen order, the index of each row's prompt among them (N,))."""
    index: dict[tuple[int, ...], int] = {}
    which = [index.setdefault(tuple(p), len(index)) for p in prompt_ids]
    return list(index), which
