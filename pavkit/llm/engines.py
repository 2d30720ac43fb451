"""Generation engines: the policy pi that samples next steps and full continuations of step prefixes.

A prefix is a TEXT: `steps.prefix_text(prompt, steps, delimiter)` (for chat models the prompt already holds the
chat template), so every completed step ends with the delimiter and the next step starts right after it.

Two calls, the same for every engine (the `Policy` protocol):

- `extend(prefixes, c, seed)`: for each of the P prefixes, c sampled next steps. A step stops at the first
  delimiter (the delimiter and any text after it, even inside the same merged token, are cut off), at EOS
  (`finished=True`: the response is over) or after `max_step_tokens` tokens.
- `complete(prefixes, n, seed)`: for each prefix, n sampled continuations up to EOS or `max_new_tokens`.

Both return `list[list[Continuation]]` of shape (P, c) / (P, n), grouped by prefix in input order. The same seed
gives the same outputs (same machine, same batch_size). `stats` counts the tokens the model actually processed,
for compute accounting.

`HFEngine` (a transformers causal LM, left padding, batched) prefills each prefix ONCE and expands its KV cache
to the n rows that continue it (`batch_repeat_interleave`), so a prefix of L tokens costs L + n - 1 prompt-token
computations instead of n * L. It then decodes with its own loop over the model's forward (`_decode_loop`): the KV
cache is preallocated and filled in place (no copy of the whole cache per token), rows that stopped leave the
batch, the step delimiter is decoded only for rows whose new token could contain it, and sampling inverts the CDF
with one uniform per row. Greedy outputs are those of `generate` (tested); sampled ones follow the same
distribution, but a seed draws other tokens than `generate` did (different random numbers per step), so outputs
for a seed differ from pavkit versions before this loop. `use_generate=True` keeps the `generate` path (the
baseline of `bench/rollouts.py`). `VLLMEngine` delegates the same to `vllm.LLM` with prefix caching and
`SamplingParams(n=...)`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pavkit.distributed import default_device

DEFAULT_DELIMITER = "\n"  # same default as pavkit.llm.steps


@dataclass
class Continuation:
    """One sampled continuation of a prefix.

    text: the generated text, EOS removed (for `extend`, also the delimiter and anything after it);
    num_tokens: tokens sampled for it, including the token that stopped it (delimiter-bearing token or EOS);
    finished: True iff generation hit EOS, i.e. the response is over;
    token_ids: the sampled ids (``num_tokens`` of them, the stopping token included), for callers that need the
    exact tokens (RL's log-probabilities), since re-tokenising ``text`` need not give them back.
    """

    text: str
    num_tokens: int
    finished: bool
    token_ids: tuple[int, ...] = ()


@dataclass
class EngineStats:
    """Token counts since construction (or `reset()`).

    prompt_tokens: prompt tokens run through the model (after KV reuse: a prefix of L tokens with n rows counts
    L - 1 + n for HFEngine; vLLM counts prompt tokens minus prefix-cache hits); generated_tokens: sampled tokens
    (sum of `Continuation.num_tokens`); sequences: continuations returned; prefixes: prefixes served;
    calls: `extend`/`complete` calls.
    """

    prompt_tokens: int = 0
    generated_tokens: int = 0
    sequences: int = 0
    prefixes: int = 0
    calls: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def reset(self) -> None:
        self.prompt_tokens = self.generated_tokens = self.sequences = self.prefixes = self.calls = 0


@runtime_checkable
class Policy(Protocol):
    """What labelling, search and RL need from a generator (see the module docstring)."""

    delimiter: str
    stats: EngineStats

    def extend(self, prefixes: Sequence[str], c: int, seed: int) -> list[list[Continuation]]: ...

    def complete(self, prefixes: Sequence[str], n: int, seed: int) -> list[list[Continuation]]: ...


def cut_at_delimiter(text: str, delimiter: str) -> tuple[str, bool]:
    """(text before the first delimiter, whether one was found). An empty delimiter never cuts."""
    if not delimiter:
        return text, False
    i = text.find(delimiter)
    return (text, False) if i < 0 else (text[:i], True)


def eos_token_ids(*sources: Any) -> set[int]:
    """Every EOS id that any of ``sources`` declares (``eos_token_id``: an int or a list; a source may be a
    generation config, a tokenizer, or a dict of either's fields, e.g. vLLM's generation config).

    A folder's tokenizer and generation config can disagree: SmolLM2 converted from its GGUF has tokenizer
    eos ``<|im_start|>`` (1) but generation-config eos ``<|im_end|>`` (2). Either one ends the response, in every
    engine, so that HFEngine and VLLMEngine report the same ``finished`` on the same model.
    """
    ids: set[int] = set()
    for src in sources:
        eos = src.get("eos_token_id") if isinstance(src, Mapping) else getattr(src, "eos_token_id", None)
        ids.update([eos] if isinstance(eos, int) else (eos or []))
    if not ids:
        raise ValueError("the model/tokenizer declares no EOS token")
    return ids


def _check_args(prefixes: Sequence[str], k: int) -> list[str]:
    if isinstance(prefixes, str):
        raise TypeError("prefixes must be a sequence of strings, not a single string")
    prefixes = list(prefixes)
    if any(not isinstance(p, str) for p in prefixes):
        raise TypeError("every prefix must be a str")
    if k < 1:
        raise ValueError(f"number of continuations per prefix must be >= 1, got {k}")
    return prefixes


# ---------------------------------------------------------------------------------------------- transformers


class _StopTracker:
    """A per-row StoppingCriteria for `generate`: a row stops at EOS or once its text contains the delimiter.

    Records, per row, how many tokens it had generated when it stopped (`lengths`, -1 while running) and whether
    that was EOS (`eos`). Text is decoded after an anchor of the last prompt tokens, so tokenizers that drop a
    leading space when decoding a lone token (SentencePiece) still see the exact text.
    """

    def __init__(self, decode, prompt_len: int, anchors: list[list[int]], eos_ids: set[int], delimiter: str | None):
        self.decode, self.prompt_len, self.anchors = decode, prompt_len, anchors
        self.eos_ids, self.delimiter = eos_ids, delimiter
        self.lengths = [-1] * len(anchors)
        self.eos = [False] * len(anchors)

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        n_gen = input_ids.shape[1] - self.prompt_len
        last = input_ids[:, -1].tolist()
        for r, tok in enumerate(last):
            if self.lengths[r] >= 0:
                done[r] = True
            elif tok in self.eos_ids:
                self.lengths[r], self.eos[r], done[r] = n_gen, True, True
            elif self.delimiter and self.delimiter in self.decode(self.anchors[r], input_ids[r, self.prompt_len:]):
                self.lengths[r], done[r] = n_gen, True
        return done


@functools.cache
def _preallocated_layer_class():
    """The KV-cache layer class of `_preallocated_cache` (defined on first use: importing this module must not
    import transformers)."""
    from transformers.cache_utils import DynamicLayer

    class Layer(DynamicLayer):
        """A DynamicLayer whose keys/values live in buffers of a fixed `capacity` (tokens), filled in place.

        DynamicLayer concatenates the whole cache with every new token (a copy per step: a third of the CPU
        time of sampling from the organism, as much as attention itself). Here `keys`/`values` are views of the
        filled part, so attention still spans exactly the tokens seen so far and computes what DynamicLayer
        computes.
        """

        is_croppable = False  # `crop` would cut the views, not `length`; nothing here crops

        def __init__(self, capacity: int):
            super().__init__()
            self.capacity, self.length = capacity, 0

        def lazy_initialization(self, key_states, value_states) -> None:
            self.dtype, self.device = key_states.dtype, key_states.device
            b, h = key_states.shape[:2]
            self._k = key_states.new_empty((b, h, self.capacity, key_states.shape[-1]))
            self._v = value_states.new_empty((b, h, self.capacity, value_states.shape[-1]))
            self.is_initialized = True

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self.capacity:
                raise RuntimeError(f"KV cache capacity {self.capacity} exceeded ({end} tokens)")
            self._k[:, :, self.length:end] = key_states
            self._v[:, :, self.length:end] = value_states
            self.length = end
            self._views()
            return self.keys, self.values

        def _views(self) -> None:
            self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]

        def get_seq_length(self) -> int:
            return self.length

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.is_initialized:
                self._k, self._v = self._repeat(self._k, repeats), self._repeat(self._v, repeats)
                self._views()

        def _repeat(self, buf, repeats: int):
            b, h, cap, d = buf.shape
            out = buf.new_empty((b * repeats, h, cap, d))
            # one copy of the filled part, broadcast over the repeats (no temporary, no unfilled capacity)
            out.view(b, repeats, h, cap, d)[:, :, :, :self.length] = buf[:, None, :, :self.length]
            return out

        def batch_select_indices(self, indices) -> None:
            if self.is_initialized:
                self._k, self._v = self._select(self._k, indices), self._select(self._v, indices)
                self._views()

        def _select(self, buf, indices):
            out = buf.new_empty((len(indices),) + tuple(buf.shape[1:]))
            out[:, :, :self.length] = buf[indices, :, :self.length]  # the unfilled capacity is not copied
            return out

    return Layer


def _preallocated_cache(config, capacity: int):
    """A `Cache` of preallocated layers for `config`'s layers; None for models with non-full-attention layers
    (sliding windows, linear attention), which keep the DynamicCache path."""
    from transformers.cache_utils import Cache

    text = config.get_text_config(decoder=True)
    kinds = getattr(text, "layer_types", None) or ["full_attention"] * text.num_hidden_layers
    if any(k != "full_attention" for k in kinds):
        return None
    layer = _preallocated_layer_class()
    return Cache(layers=[layer(capacity) for _ in kinds])


_GQA_SDPA = "pavkit_sdpa_gqa"


def _gqa_sdpa_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                        is_causal=None, **kwargs):
    """transformers' sdpa attention, except that grouped KV heads are broadcast by SDPA (`enable_gqa`).

    transformers copies every KV head `num_key_value_groups` times (`repeat_kv`) whenever there is an attention
    mask (left padding) on CPU, i.e. a full copy of the cache per layer and token; SDPA's own broadcasting gives
    the same numbers (the same kernel, equal outputs) without it.
    """
    import torch

    groups = getattr(module, "num_key_value_groups", 1)
    is_causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    is_causal = query.shape[2] > 1 and attention_mask is None and is_causal
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=attention_mask,
                                                           dropout_p=dropout, scale=scaling, is_causal=is_causal,
                                                           enable_gqa=groups > 1)
    return out.transpose(1, 2).contiguous(), None


@contextlib.contextmanager
def _broadcast_kv_heads(model):
    """While sampling, run a "sdpa" model's attention through `_gqa_sdpa_attention`; restored afterwards."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    old = getattr(model.config, "_attn_implementation", None)
    if old != "sdpa":
        yield
        return
    AttentionInterface.register(_GQA_SDPA, _gqa_sdpa_attention)
    AttentionMaskInterface.register(_GQA_SDPA, sdpa_mask)
    model.set_attn_implementation(_GQA_SDPA)
    try:
        yield
    finally:
        model.set_attn_implementation(old)


def _sample_tokens(logits, temperature: float):
    """One token per row: argmax at temperature 0, else a draw from softmax(logits / temperature).

    The draw inverts the CDF with one uniform number per row (float64 cumulative sums): the same distribution
    as `torch.multinomial`, which on CPU spends one exponential variate per vocabulary entry (~60 ms per step
    for 48 rows of a 49k vocabulary).
    """
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    scores = logits.float() if temperature == 1 else logits.float() / temperature
    cdf = torch.softmax(scores, -1).double().cumsum(-1)
    u = torch.rand((cdf.shape[0], 1), dtype=torch.float64, device=cdf.device) * cdf[:, -1:]
    # right=True: the first entry whose CDF exceeds u, so zero-probability tokens are never drawn
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=cdf.shape[1] - 1)


class HFEngine:
    """Policy over a transformers causal LM: batched decoding with left padding and prefix-KV reuse.

    model: a causal LM (eval mode is set); tokenizer: its tokenizer (padding side is forced to left);
    delimiter: the step delimiter; max_step_tokens: cap per `extend` step; max_new_tokens: cap per `complete`
    continuation; temperature: sampling temperature (0 means greedy); batch_size: most rows decoded together;
    reuse_prefix_cache: prefill each prefix once and copy its KV cache to its rows (False re-prefills every row,
    the baseline that tests and benchmarks compare against); use_generate: sample with transformers `generate`
    and a DynamicCache (the previous implementation, kept as the baseline of `bench/rollouts.py` and as a test
    reference) instead of the engine's own decoding loop (see `_decode_loop`).
    """

    def __init__(self, model, tokenizer, *, delimiter: str = DEFAULT_DELIMITER, max_step_tokens: int = 64,
                 max_new_tokens: int = 256, temperature: float = 1.0, batch_size: int = 32,
                 reuse_prefix_cache: bool = True, use_generate: bool = False):
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if batch_size < 1 or max_step_tokens < 1 or max_new_tokens < 1:
            raise ValueError("batch_size, max_step_tokens and max_new_tokens must be >= 1")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.delimiter, self.temperature, self.batch_size = delimiter, float(temperature), int(batch_size)
        self.max_step_tokens, self.max_new_tokens = int(max_step_tokens), int(max_new_tokens)
        self.reuse_prefix_cache, self.use_generate = bool(reuse_prefix_cache), bool(use_generate)
        self._stop_candidates: dict[str, Any] = {}  # delimiter -> (vocab,) bool tensor, see `_candidates`
        self.eos_ids = self._eos_ids()
        self.pad_id = self._pad_id()
        self.stats = EngineStats()

    @classmethod
    def from_path(cls, path: str | Path, *, dtype: Any = None, device: str | None = None, **kw) -> HFEngine:
        """Load a local HF folder, or a `.gguf` file (dequantised to float32; needs `gguf`), never downloading.

        dtype: torch dtype or name (default float32); device: e.g. "cuda" (default: cuda if available, else cpu);
        other keyword arguments go to `HFEngine.__init__`.
        """
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else (dtype or torch.float32)
        if path.suffix == ".gguf":
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no such GGUF file")
            load = {"gguf_file": path.name}
            path = path.parent
            dtype = torch.float32  # GGUF weights are dequantised; float32 keeps them exact
        elif path.is_dir():
            load = {}
        else:
            raise FileNotFoundError(f"{path}: not a model folder or a .gguf file")
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, **load)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True, **load)
        device = default_device(device)
        return cls(model.to(device), tokenizer, **kw)

    # -- public API ---------------------------------------------------------------------------------------------

    def extend(self, prefixes: Sequence[str], c: int, seed: int) -> list[list[Continuation]]:
        """c next steps per prefix: stop at the delimiter (cut, excluded), EOS or max_step_tokens. Shape (P, c)."""
        return self._sample(_check_args(prefixes, c), c, seed, self.max_step_tokens, self.delimiter)

    def complete(self, prefixes: Sequence[str], n: int, seed: int) -> list[list[Continuation]]:
        """n full continuations per prefix: stop at EOS or max_new_tokens. Shape (P, n)."""
        return self._sample(_check_args(prefixes, n), n, seed, self.max_new_tokens, None)

    # -- internals ----------------------------------------------------------------------------------------------

    def _eos_ids(self) -> set[int]:
        """EOS ids from the generation config and the tokenizer (:func:`eos_token_ids`)."""
        return eos_token_ids(getattr(self.model, "generation_config", None), self.tokenizer)

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = getattr(self.model.generation_config, "pad_token_id", None)
        if pad is None:
            pad = min(self.eos_ids)
        return int(pad)

    def _decode(self, anchor: list[int], ids) -> str:
        """Text of `ids` as it reads after `anchor` (exact continuation text; special tokens dropped)."""
        tok = self.tokenizer
        kw = {"skip_special_tokens": True, "clean_up_tokenization_spaces": False}
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        if not anchor:
            return tok.decode(ids, **kw)
        head = tok.decode(anchor, **kw)
        full = tok.decode(anchor + ids, **kw)
        return full[len(head):] if full.startswith(head) else tok.decode(ids, **kw)

    def _sample(self, prefixes: list[str], k: int, seed: int, max_tokens: int, stop: str | None):
        import torch

        self.stats.calls += 1
        self.stats.prefixes += len(prefixes)
        if not prefixes:
            return []
        ids = self.tokenizer(prefixes, add_special_tokens=True)["input_ids"]
        if any(len(x) == 0 for x in ids):
            raise ValueError("a prefix tokenises to zero tokens; give it at least one token")
        out: list[list[Continuation]] = [[] for _ in prefixes]
        device = self.model.device
        attention = contextlib.nullcontext() if self.use_generate else _broadcast_kv_heads(self.model)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode(), \
                attention:
            torch.manual_seed(seed)
            for group, counts in self._plan(ids, k):
                for i, conts in zip(group, self._run_group([ids[i] for i in group], counts, max_tokens, stop),
                                    strict=True):
                    out[i].extend(conts)
        self.stats.sequences += sum(len(o) for o in out)
        self.stats.generated_tokens += sum(c.num_tokens for o in out for c in o)
        return out

    def _plan(self, ids: list[list[int]], k: int):
        """Yield (prefix indices, rows per prefix) chunks of at most batch_size rows.

        Prefixes are sorted by length so a chunk pads little; a prefix whose k rows exceed batch_size is split
        into several chunks (each reuses one prefill of that prefix only within itself).
        """
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        per = max(1, self.batch_size // k)
        for s in range(0, len(order), per):
            group = order[s:s + per]
            left = k
            while left > 0:
                m = min(left, self.batch_size)
                yield group, m
                left -= m

    def _left_pad(self, ids: list[list[int]]):
        import torch

        width = max(len(x) for x in ids)
        input_ids = torch.full((len(ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for r, x in enumerate(ids):
            input_ids[r, width - len(x):] = torch.tensor(x, dtype=torch.long)
            mask[r, width - len(x):] = 1
        return input_ids.to(self.model.device), mask.to(self.model.device)

    def _prefill(self, input_ids, mask, cache) -> None:
        """Run all but the last prompt token once into `cache` (P rows; the caller repeats them).

        Position ids follow `generate`'s left-padding rule (cumsum of the mask - 1), so the continued rows see
        exactly the positions a full re-prefill would give them.
        """
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        self.model(input_ids=input_ids[:, :-1], attention_mask=mask[:, :-1], position_ids=pos[:, :-1],
                   past_key_values=cache, use_cache=True, logits_to_keep=1)

    def _run_group(self, ids: list[list[int]], m: int, max_tokens: int, stop: str | None):
        """m continuations for each prefix in `ids` in one batch; returns (len(ids), m) Continuations."""
        input_ids, mask = self._left_pad(ids)
        lengths = [len(x) for x in ids]
        if self.reuse_prefix_cache:
            self.stats.prompt_tokens += sum(n - 1 for n in lengths) + m * len(ids)
        else:
            self.stats.prompt_tokens += m * sum(lengths)
        anchors = [x[-4:] for x in ids for _ in range(m)]
        cache = None if self.use_generate else _preallocated_cache(self.model.config, input_ids.shape[1] + max_tokens)
        if cache is None:
            rows = self._generate(input_ids, mask, m, max_tokens, stop, anchors)
        else:
            rows = self._decode_loop(input_ids, mask, m, max_tokens, stop, anchors, cache)
        conts = []
        for anchor, (toks, eos) in zip(anchors, rows, strict=True):
            text = self._decode(anchor, toks)
            if stop:
                text, _ = cut_at_delimiter(text, stop)
            conts.append(Continuation(text=text, num_tokens=len(toks), finished=eos, token_ids=tuple(toks)))
        return [conts[i * m:(i + 1) * m] for i in range(len(ids))]

    def _generate(self, input_ids, mask, m: int, max_tokens: int, stop: str | None, anchors: list[list[int]]):
        """`generate` with a DynamicCache and `_StopTracker`: per row, (sampled ids, hit EOS)."""
        from transformers import DynamicCache

        cache = None
        if self.reuse_prefix_cache and input_ids.shape[1] > 1:
            cache = DynamicCache(config=self.model.config)
            self._prefill(input_ids, mask, cache)
            cache.batch_repeat_interleave(m)
        width = input_ids.shape[1]
        tracker = _StopTracker(self._decode, width, anchors, self.eos_ids, stop)
        gen = self.model.generate(input_ids=input_ids.repeat_interleave(m, 0),
                                  attention_mask=mask.repeat_interleave(m, 0), past_key_values=cache,
                                  stopping_criteria=[tracker], **self._gen_kwargs(max_tokens))
        rows = []
        for r in range(gen.shape[0]):
            n_tok = tracker.lengths[r] if tracker.lengths[r] >= 0 else gen.shape[1] - width
            rows.append((gen[r, width:width + n_tok].tolist(), tracker.eos[r]))
        return rows

    def _decode_loop(self, input_ids, mask, m: int, max_tokens: int, stop: str | None, anchors: list[list[int]],
                     cache):
        """The model's forward in a loop over a preallocated KV cache: per row, (sampled ids, hit EOS).

        Each step runs the batch's rows one token, samples (`_sample_tokens`) and checks stops (`_stopped`).
        Rows that stopped leave the batch (and the cache) once they are an eighth of it: `generate` keeps
        computing them until the last row ends, most of the work when lengths vary (Monte Carlo completions).
        """
        import torch

        n_rows, width, device = input_ids.shape[0] * m, input_ids.shape[1], input_ids.device
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        feed, feed_pos = input_ids, pos
        if self.reuse_prefix_cache and width > 1:
            self._prefill(input_ids, mask, cache)
            cache.batch_repeat_interleave(m)
            feed, feed_pos = input_ids[:, -1:], pos[:, -1:]
        feed, feed_pos = feed.repeat_interleave(m, 0), feed_pos.repeat_interleave(m, 0)
        attn = torch.ones((n_rows, width + max_tokens), dtype=mask.dtype, device=device)
        attn[:, :width] = mask.repeat_interleave(m, 0)
        eos_ids = torch.tensor(sorted(self.eos_ids), device=device)
        tokens = torch.empty((n_rows, max_tokens), dtype=torch.long, device=device)
        rows = torch.arange(n_rows, device=device)  # the row each batch position holds
        done = torch.zeros(n_rows, dtype=torch.bool, device=device)  # stopped, still in the batch
        ends: dict[int, tuple[int, bool]] = {}  # row -> (tokens, hit EOS), for rows that stopped
        for t in range(max_tokens):
            logits = self.model(input_ids=feed, attention_mask=attn[:, :width + t], position_ids=feed_pos,
                                past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
            tok = _sample_tokens(logits, self.temperature)
            tokens[rows, t] = tok
            eos = torch.isin(tok, eos_ids) & ~done
            new = eos | self._delimiter_hits(tok, ~done & ~eos, rows, tokens, t, stop, anchors)
            for b in new.nonzero().flatten().tolist():
                ends[int(rows[b])] = (t + 1, bool(eos[b]))
            done |= new
            if len(ends) == n_rows or t + 1 == max_tokens:
                break
            if int(done.sum()) >= max(1, len(done) // 8):
                keep = (~done).nonzero().flatten()
                cache.batch_select_indices(keep)
                rows, attn, tok, feed_pos, done = rows[keep], attn[keep], tok[keep], feed_pos[keep], done[keep]
            feed, feed_pos = tok[:, None], feed_pos[:, -1:] + 1
        out = []
        for r in range(n_rows):
            n_tok, eos = ends.get(r, (max_tokens, False))
            out.append((tokens[r, :n_tok].tolist(), eos))
        return out

    def _delimiter_hits(self, tok, check, rows, tokens, t: int, stop: str | None, anchors: list[list[int]]):
        """(batch,) bool: rows in `check` whose text (after their anchor) now contains the delimiter.

        The same text test as `_StopTracker`, but decoded only for rows whose new token can complete the
        delimiter (`_stop_candidates`); any other token leaves the text without it, so no stopping point moves.
        """
        import torch

        hits = torch.zeros_like(check)
        if not stop:
            return hits
        for b in (check & self._candidates(stop)[tok]).nonzero().flatten().tolist():
            r = int(rows[b])
            hits[b] = stop in self._decode(anchors[r], tokens[r, :t + 1])
        return hits

    def _candidates(self, stop: str):
        """(vocab,) bool, once per delimiter: can this token complete `stop` in a row's text?

        True when the token's text, decoded alone or after an anchor token, shares a character with `stop`, or
        does not decode on its own (U+FFFD: part of a character split over tokens, or an id past the
        tokenizer). For "\n" on a character-level tokenizer that is the "\n" token only; for a BPE also the
        tokens that merge "\n" with other text.
        """
        import torch

        if stop not in self._stop_candidates:
            tok = self.tokenizer
            kw = {"skip_special_tokens": True, "clean_up_tokenization_spaces": False}
            n = len(tok)
            anchor = tok("a", add_special_tokens=False)["input_ids"][:1]
            head = tok.decode(anchor, **kw)
            alone = tok.batch_decode([[i] for i in range(n)], **kw)
            after = tok.batch_decode([anchor + [i] for i in range(n)], **kw)
            chars = set(stop)
            flags = [bool(chars & set(a + b)) or "\ufffd" in a + b
                     for a, b in zip(alone, (x[len(head):] if x.startswith(head) else x for x in after), strict=True)]
            vocab = max(n, self.model.config.get_text_config(decoder=True).vocab_size)
            self._stop_candidates[stop] = torch.tensor(flags + [True] * (vocab - n), dtype=torch.bool,
                                                       device=self.model.device)
        return self._stop_candidates[stop]

    def _gen_kwargs(self, max_tokens: int) -> dict:
        """Plain ancestral sampling at `temperature` (greedy at 0), overriding any model-default top-k/top-p."""
        kw = {"max_new_tokens": max_tokens, "min_new_tokens": 0, "num_beams": 1, "pad_token_id": self.pad_id,
              "eos_token_id": sorted(self.eos_ids), "repetition_penalty": 1.0, "use_cache": True}
        if self.temperature > 0:
            kw.update(do_sample=True, temperature=self.temperature, top_k=0, top_p=1.0)
        else:
            kw.update(do_sample=False)
        return kw


# ---------------------------------------------------------------------------------------------- vLLM


def _request_seed(seed: int, index: int) -> int:
    """A per-request seed: vLLM seeds each request separately, so equal prefixes in one call must not share it."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def engine_from_path(kind: str, path: str | Path, **kw: Any) -> Any:
    """``HFEngine.from_path`` (kind "hf") or ``VLLMEngine.from_path`` ("vllm"; vllm imported there) with ``kw``."""
    from pavkit.llm.sampling import ENGINES

    if kind not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {kind!r}")
    return (HFEngine if kind == "hf" else VLLMEngine).from_path(path, **kw)


def at_temperature(engine: Any, temperature: float) -> Any:
    """The ``temp:T`` prover's engine: another engine object over ``engine``'s weights (HFEngine's model,
    VLLMEngine's LLM; nothing is loaded twice) that samples at ``temperature``, with its own stats."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    other = copy.copy(engine)
    other.temperature, other.stats = float(temperature), EngineStats()
    return other


def vllm_llm_kwargs(llm_kwargs: Mapping[str, Any], *, on_cpu: bool) -> dict[str, Any]:
    """The keyword arguments for ``vllm.LLM``: the caller's, over pavkit's defaults.

    - ``enable_prefix_caching=True``: the n continuations of a prefix, and prefixes that share steps, reuse its
      KV blocks.
    - On CPU, ``enable_chunked_prefill=False``. VLLMEngine seeds every request, and when a prefill is split
      over scheduler steps (prompts × n above ``max_num_batched_tokens``, 4096 on CPU by default: e.g. 16
      prefixes × 16 continuations) vLLM rewinds the request's torch generator with ``set_offset``, which a CPU
      generator does not have: ``RuntimeError: CPU Generator does not use offset``. Without chunked prefill no
      prefill is split; vLLM then needs ``max_num_batched_tokens >= max_model_len`` (its default is).

    Note that vLLM's ``dtype="auto"`` runs float32 checkpoints in bfloat16 (on CPU too, with only an INFO log
    line): pass ``dtype="float32"`` for the numerics of HFEngine.
    """
    out = {"enable_prefix_caching": True, **llm_kwargs}
    if on_cpu:
        out.setdefault("enable_chunked_prefill", False)
    budget, length = out.get("max_num_batched_tokens"), out.get("max_model_len")
    if not out.get("enable_chunked_prefill", True) and budget and length and budget < length:
        raise ValueError(f"max_num_batched_tokens ({budget}) must be >= max_model_len ({length}) without chunked "
                         "prefill")
    return out


def _vllm_eos_ids(llm) -> set[int]:
    """The EOS set of a ``vllm.LLM``: its generation config's and its tokenizer's (:func:`eos_token_ids`)."""
    return eos_token_ids(llm.llm_engine.model_config.try_get_generation_config(), llm.get_tokenizer())


def vllm_continuation(o, stop: str | None, eos_ids: set[int]) -> Continuation:
    """A Continuation from one vLLM ``CompletionOutput``.

    It finished (EOS) when vLLM stopped on its own EOS (``stop_reason`` None) or on a stop token id of the EOS set
    (``stop_reason`` that id: vLLM reports a generation-config EOS that differs from the tokenizer's this way); a
    str ``stop_reason`` is the delimiter, not EOS.
    """
    eos = o.finish_reason == "stop" and (o.stop_reason is None or o.stop_reason in eos_ids)
    text = cut_at_delimiter(o.text, stop)[0] if stop else o.text
    return Continuation(text=text, num_tokens=len(o.token_ids), finished=eos, token_ids=tuple(o.token_ids))


class VLLMEngine:
    """Policy over `vllm.LLM` (prefix caching on; `SamplingParams(n=..., stop=[delimiter], seed=...)`).

    Build it with `from_path`; vllm is imported only there. Same keyword arguments as HFEngine; `batch_size` is
    accepted for symmetry but vLLM schedules batches itself. ``eos_ids`` is the same EOS set HFEngine uses
    (:func:`eos_token_ids`), passed to vLLM as stop token ids.
    """

    def __init__(self, llm, *, delimiter: str = DEFAULT_DELIMITER, max_step_tokens: int = 64,
                 max_new_tokens: int = 256, temperature: float = 1.0, batch_size: int = 32):
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.llm = llm
        self.delimiter, self.temperature, self.batch_size = delimiter, float(temperature), int(batch_size)
        self.max_step_tokens, self.max_new_tokens = int(max_step_tokens), int(max_new_tokens)
        self.eos_ids = _vllm_eos_ids(llm)
        self.stats = EngineStats()

    @classmethod
    def from_path(cls, path: str | Path, *, delimiter: str = DEFAULT_DELIMITER, max_step_tokens: int = 64,
                  max_new_tokens: int = 256, temperature: float = 1.0, batch_size: int = 32,
                  **llm_kwargs) -> VLLMEngine:
        """`vllm.LLM(model=path, **vllm_llm_kwargs(llm_kwargs))` (prefix caching on; on CPU no chunked prefill).

        llm_kwargs go to vllm.LLM, e.g. tensor_parallel_size, data_parallel_size, dtype, max_model_len,
        max_num_batched_tokens, gpu_memory_utilization, enforce_eager.
        """
        from vllm import LLM
        from vllm.platforms import current_platform

        llm = LLM(model=str(path), **vllm_llm_kwargs(llm_kwargs, on_cpu=current_platform.is_cpu()))
        return cls(llm, delimiter=delimiter, max_step_tokens=max_step_tokens, max_new_tokens=max_new_tokens,
                   temperature=temperature, batch_size=batch_size)

    def extend(self, prefixes: Sequence[str], c: int, seed: int) -> list[list[Continuation]]:
        """c next steps per prefix: stop at the delimiter (excluded), EOS or max_step_tokens. Shape (P, c)."""
        return self._sample(_check_args(prefixes, c), c, seed, self.max_step_tokens, self.delimiter)

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """Give the served model new weights, named as transformers names them (``state_dict().items()`` of
        the same architecture), and drop the prefix cache, whose keys and values the old weights computed. For
        online RL with a colocated engine; vLLM's model converts the names (e.g. stacks q, k, v)."""
        weights = [(name, tensor.detach()) for name, tensor in weights]
        # the worker's in-place reload, not the model's load_weights: a loaded model's kernels may have repacked
        # its parameters (vLLM's CPU backend does), which only the reload path restores to the checkpoint format
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()

    def complete(self, prefixes: Sequence[str], n: int, seed: int) -> list[list[Continuation]]:
        """n full continuations per prefix: stop at EOS or max_new_tokens. Shape (P, n)."""
        return self._sample(_check_args(prefixes, n), n, seed, self.max_new_tokens, None)

    def _params(self, n: int, max_tokens: int, stop: str | None, seed: int):
        from vllm import SamplingParams

        kw = {"n": n, "max_tokens": max_tokens, "seed": seed, "skip_special_tokens": True,
              "stop_token_ids": sorted(self.eos_ids)}
        if stop:
            kw["stop"] = [stop]
        if self.temperature > 0:
            kw.update(temperature=self.temperature, top_p=1.0, top_k=0, min_p=0.0)
        else:
            kw.update(temperature=0.0)
        return SamplingParams(**kw)

    def _sample(self, prefixes: list[str], k: int, seed: int, max_tokens: int, stop: str | None):
        self.stats.calls += 1
        self.stats.prefixes += len(prefixes)
        if not prefixes:
            return []
        # vLLM refuses n > 1 with greedy sampling: send k requests of n=1 instead (prefix caching still shares
        # the prompt's KV blocks between them).
        reqs = 1 if self.temperature > 0 else k
        prompts = [p for p in prefixes for _ in range(reqs)]
        params = [self._params(k // reqs, max_tokens, stop, _request_seed(seed, i)) for i in range(len(prompts))]
        results = self.llm.generate(prompts, params, use_tqdm=False)
        out = []
        for i in range(len(prefixes)):
            conts = []
            for res in results[i * reqs:(i + 1) * reqs]:
                cached = getattr(res, "num_cached_tokens", None) or 0
                self.stats.prompt_tokens += len(res.prompt_token_ids or []) - cached
                conts.extend(vllm_continuation(o, stop, self.eos_ids)
                             for o in sorted(res.outputs, key=lambda o: o.index))
            out.append(conts)
        self.stats.sequences += sum(len(o) for o in out)
        self.stats.generated_tokens += sum(c.num_tokens for o in out for c in o)
        return out


__all__ = ["DEFAULT_DELIMITER", "Continuation", "EngineStats", "HFEngine", "Policy", "VLLMEngine",
           "cut_at_delimiter", "eos_token_ids", "vllm_continuation", "vllm_llm_kwargs"]
