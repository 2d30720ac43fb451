"""ONE step format, shared by generation, labelling, the verifier and RL.

A response is a sequence of steps separated by a delimiter (paper §2: "next line"; default ``"\\n"``, and
``"\\n\\n"`` for blank-line steps). The state ``s_h = (prompt, steps[:h-1])`` has the text

    prefix_text(prompt, steps) = prompt + "".join(step + delimiter for step in steps)

so every completed step is followed by the delimiter: the next step is generated right after it and stops at
the next delimiter.

Canonical steps. :func:`split_steps` returns *canonical* steps: no step contains the delimiter, no step is
empty or whitespace-only, and no step ends with whitespace (trailing blanks and ``"\\r"`` before a newline
carry nothing, and a step that ended in whitespace could merge with the delimiter and the next step's
indentation into one token, which would put text of step h+1 inside the token that scores step h). Leading
whitespace (indentation) is kept. Hence

    split_steps(join_steps(steps)) == steps    for canonical steps, and
    join_steps(split_steps(text)) == text      when ``text`` is already in canonical form.

:func:`clean_step` turns any step text (a dataset's, a model's) into a canonical one without changing the
number of steps, which keeps step-level labels aligned.

Token spans. :func:`step_token_spans` tokenizes the prefix (fast tokenizer, offset mapping) and gives each
step the [start, end) range of the tokens whose last character lies in the step or its delimiter. A token that
straddles a boundary goes to the segment holding its last character: ``".\n"`` (step end + delimiter) belongs
to the step, ``"\nThe"`` (delimiter + next step, only possible with ``tokenization="joint"``) to the next step.
So the last token of step h (index ``end - 1``, where a verifier reads V(s_{h+1})) never contains a character of
step h+1, and every character of the step is checked to lie in one of the step's tokens. By default the prompt
and every ``step + delimiter`` are tokenized separately, so a prefix's ids are a prefix of the whole
trajectory's ids (see :func:`step_token_spans`).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

DEFAULT_DELIMITER: str = "\n"


def _check_delimiter(delimiter: str) -> None:
    if not delimiter:
        raise ValueError("the step delimiter must be a non-empty string")


def clean_step(text: str, delimiter: str = DEFAULT_DELIMITER) -> str:
    """Make one step canonical: delimiters inside it become a space, trailing whitespace is removed.

    Returns "" for a step with no content (callers decide whether to drop it). ``clean_step`` is idempotent.
    """
    _check_delimiter(delimiter)
    filler = " " if " " not in delimiter else ""
    while delimiter in text:  # one pass suffices unless filler rebuilds the delimiter; loop shortens text
        text = text.replace(delimiter, filler)
    return text.rstrip()


def split_steps(text: str, delimiter: str = DEFAULT_DELIMITER) -> list[str]:
    """Split a response into canonical steps.

    The pieces between delimiters are right-stripped; pieces that are then empty (leading, trailing or
    repeated delimiters, whitespace-only lines) are dropped. ``split_steps("") == []``.
    """
    _check_delimiter(delimiter)
    return [s for s in (piece.rstrip() for piece in text.split(delimiter)) if s]


def join_steps(steps: Sequence[str], delimiter: str = DEFAULT_DELIMITER) -> str:
    """The response text of ``steps``: ``delimiter.join(steps)`` (no delimiter after the last step)."""
    _check_delimiter(delimiter)
    return delimiter.join(steps)


def prefix_text(prompt: str, steps: Sequence[str], delimiter: str = DEFAULT_DELIMITER) -> str:
    """Text of the state (prompt, steps): ``prompt + "".join(s + delimiter for s in steps)``."""
    _check_delimiter(delimiter)
    return prompt + "".join(s + delimiter for s in steps)


def first_step(text: str, delimiter: str = DEFAULT_DELIMITER) -> tuple[str, bool]:
    """Cut generated text at its first delimiter: (the step's raw text, whether a delimiter was found).

    A generation engine that stops "at the delimiter" may overshoot it inside one token (``"\\nThe"``); the
    text after the delimiter is not part of this step. The returned text is raw: apply :func:`clean_step`.
    """
    _check_delimiter(delimiter)
    head, sep, _ = text.partition(delimiter)
    return head, bool(sep)


def check_steps(steps: Sequence[str], delimiter: str = DEFAULT_DELIMITER) -> None:
    """Raise ValueError naming the first non-canonical step (see the module docstring)."""
    _check_delimiter(delimiter)
    for h, s in enumerate(steps):
        if not isinstance(s, str):
            raise ValueError(f"step {h} is {type(s).__name__}, not str")
        if delimiter in s:
            raise ValueError(f"step {h} contains the step delimiter {delimiter!r}: {s!r}")
        if not s.strip():
            raise ValueError(f"step {h} is empty or whitespace-only: {s!r}")
        if s != s.rstrip():
            raise ValueError(f"step {h} ends with whitespace: {s!r}")
    # A step can be free of the delimiter and still shift a boundary once joined (delimiter "ab", step
    # ending in "a" followed by "ab"): the round trip is the definitive test.
    if split_steps(join_steps(steps, delimiter), delimiter) != list(steps):
        raise ValueError(f"steps do not survive join/split with delimiter {delimiter!r}: {list(steps)!r}")


def step_char_spans(prompt: str, steps: Sequence[str], delimiter: str = DEFAULT_DELIMITER) -> list[tuple[int, int]]:
    """[start, end) character span of every step inside ``prefix_text(prompt, steps, delimiter)``.

    ``text[a:b] == steps[h]`` for ``(a, b) = spans[h]``; the delimiter follows at ``b``. Steps must be
    canonical (:func:`check_steps`).
    """
    check_steps(steps, delimiter)
    spans, pos = [], len(prompt)
    for s in steps:
        spans.append((pos, pos + len(s)))
        pos += len(s) + len(delimiter)
    return spans


def _encode(tokenizer: Any, text: str, add_special_tokens: bool) -> tuple[list[int], list[tuple[int, int]]]:
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("step_token_spans needs a fast tokenizer (offset mapping); load it with use_fast=True")
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=add_special_tokens)
    return list(enc["input_ids"]), [(int(a), int(b)) for a, b in enc["offset_mapping"]]


def _encode_segments(tokenizer: Any, segments: Sequence[str],
                     add_special_tokens: bool) -> tuple[list[int], list[tuple[int, int]]]:
    """Tokenize each segment alone and concatenate; offsets are shifted into the joined text.

    Special tokens (BOS) are added to the first segment only.
    """
    ids: list[int] = []
    offsets: list[tuple[int, int]] = []
    base = 0
    for i, seg in enumerate(segments):
        seg_ids, seg_offsets = _encode(tokenizer, seg, add_special_tokens and i == 0)
        ids += seg_ids
        offsets += [(a + base, b + base) if b > a else (a, b) for a, b in seg_offsets]
        base += len(seg)
    return ids, offsets


def _check_decodes(tokenizer: Any, text: str, ids: list[int], offsets: list[tuple[int, int]]) -> None:
    """Raise ValueError unless the text-bearing tokens decode back to ``text`` exactly.

    Catches characters outside the vocabulary (mapped to an unknown token) and tokenizers that prepend a
    space to every separately tokenized piece (SentencePiece "legacy" mode), which offsets alone do not show.
    """
    kept = [i for i, (a, b) in zip(ids, offsets, strict=True) if b > a]
    decoded = tokenizer.decode(kept, clean_up_tokenization_spaces=False)
    if decoded != text:
        pairs = enumerate(zip(decoded, text, strict=False))
        at = next((k for k, (x, y) in pairs if x != y), min(len(decoded), len(text)))
        raise ValueError(f"the tokenizer does not reproduce the text (first difference at character {at}: "
                         f"{text[at:at + 8]!r} became {decoded[at:at + 8]!r}): a character outside its vocabulary, "
                         f"or a space it adds to every separately tokenized piece (then use tokenization='joint')")


def _fill_whitespace_gaps(text: str, offsets: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Attach uncovered whitespace before a token to that token.

    Tokenizers with ``trim_offsets`` report ``" b"`` as covering only ``"b"``; the space is still encoded by
    the token. Non-whitespace gaps are left alone so that the coverage check catches dropped characters.
    """
    out, prev_end = [], 0
    for a, b in offsets:
        if b > a:
            if prev_end < a and not text[prev_end:a].strip():
                a = prev_end
            prev_end = max(prev_end, b)
        out.append((a, b))
    return out


def _check_coverage(text: str, h: int, char_span: tuple[int, int], offsets: list[tuple[int, int]]) -> None:
    """Raise ValueError unless the union of ``offsets`` covers every character of ``char_span``."""
    pos, stop = char_span
    for a, b in sorted(o for o in offsets if o[1] > o[0]):
        if a > pos:
            break
        pos = max(pos, b)
        if pos >= stop:
            return
    if pos < stop:
        raise ValueError(f"step {h}: character {pos} ({text[pos]!r}) is not covered by the step's tokens; "
                         f"the tokenizer merges it with the next step (use tokenization='segments')")


def step_token_spans(tokenizer: Any, prompt: str, steps: Sequence[str], delimiter: str = DEFAULT_DELIMITER, *,
                     add_special_tokens: bool = True,
                     tokenization: str = "segments") -> tuple[list[int], list[tuple[int, int]]]:
    """Tokenize ``prefix_text(prompt, steps, delimiter)`` and give every step its [start, end) token span.

    Returns ``(input_ids, spans)``: ``input_ids`` (T,) encode exactly ``prefix_text(...)`` (special tokens,
    i.e. BOS, only at the start and only with ``add_special_tokens``, which must match how the model sees the
    text), and ``spans[h]`` the tokens of step h. Spans are non-empty, disjoint and increasing; tokens outside
    every span belong to the prompt or are special tokens. ``spans[h][1] - 1`` is the last token of step h:
    the verifier's reading position for V(s_{h+1}).

    ``tokenization``:
      - ``"segments"`` (default): the prompt and each ``step + delimiter`` are tokenized separately and
        concatenated. Token boundaries then always fall on segment boundaries, so the ids of a prefix
        (prompt, steps[:h]) are a prefix of the ids of (prompt, steps): a verifier reads the same V(s_{h+1})
        from a whole trajectory in one forward pass as from the prefix alone. Tokenizers without
        pre-tokenization merge across newlines (``"?\nStep: "``); this mode never lets such a token hold
        text of two steps.
      - ``"joint"``: ``tokenizer(prefix_text(...))`` exactly, as a generation engine would encode it. Raises
        ValueError if a token holds characters of two steps.

    Each token is assigned to the segment (prompt, or step h with its delimiter) that holds its last
    character; every character of step h is checked to lie in one of its tokens, and the ids are checked to
    decode back to the text (ValueError otherwise). TypeError for a slow tokenizer (no offset mapping).
    """
    text = prefix_text(prompt, steps, delimiter)
    char_spans = step_char_spans(prompt, steps, delimiter)
    if tokenization == "segments":
        ids, offsets = _encode_segments(tokenizer, [prompt] + [s + delimiter for s in steps], add_special_tokens)
    elif tokenization == "joint":
        ids, offsets = _encode(tokenizer, text, add_special_tokens)
    else:
        raise ValueError(f"tokenization must be 'segments' or 'joint', got {tokenization!r}")
    _check_decodes(tokenizer, text, ids, offsets)
    offsets = _fill_whitespace_gaps(text, offsets)
    seg_starts = [0] + [a for a, _ in char_spans]  # segment 0 = prompt, segment h+1 = step h + its delimiter
    members: list[list[int]] = [[] for _ in steps]
    for t, (a, b) in enumerate(offsets):
        if b <= a:  # special tokens (BOS/EOS) carry no characters and belong to no step
            continue
        seg = bisect.bisect_right(seg_starts, b - 1) - 1
        if seg > 0:
            members[seg - 1].append(t)
    spans = []
    for h, toks in enumerate(members):
        if not toks:
            raise ValueError(f"step {h} ({steps[h]!r}) has no token of its own: its text is merged into the "
                             f"next segment's first token; use tokenization='segments'")
        span = (toks[0], toks[-1] + 1)
        _check_coverage(text, h, char_spans[h], offsets[span[0]:span[1]])
        spans.append(span)
    return ids, spans


def step_end_indices(spans: Sequence[tuple[int, int]]) -> list[int]:
    """Token index where each step ends (``end - 1``): where V(s_{h+1}) is read. Shape (H,)."""
    return [end - 1 for _, end in spans]
