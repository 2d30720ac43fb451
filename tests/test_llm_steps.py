"""The one step format: split/join round trips, char spans, token spans on real tokenizers (hypothesis)."""

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from pavkit.llm.steps import (
    DEFAULT_DELIMITER,
    check_steps,
    clean_step,
    first_step,
    join_steps,
    prefix_text,
    split_steps,
    step_char_spans,
    step_end_indices,
    step_token_spans,
)

DELIMITERS = ["\n", "\n\n", " | "]
# Multi-byte, combining marks, emoji (incl. ZWJ sequences and skin tones), CJK, RTL, whitespace oddities.
UNICODE_PIECES = ["é", "e\u0301", "a\u0308\u0301", "😀", "👩\u200d💻", "👍🏽", "数学", "שלום", "∑", "½", "\t", " ",
                  "\r", "\u00a0", "\u2028", "x", "=", "42", "\\frac{1}{2}", "$", "<s>"]
text_piece = st.one_of(st.text(max_size=6), st.sampled_from(UNICODE_PIECES))
any_text = st.lists(st.one_of(text_piece, st.sampled_from(["\n", "\n\n", " | "])), max_size=12).map("".join)


@st.composite
def canonical_steps(draw, delimiter, min_size=0, max_size=6):
    """Lists of canonical steps for `delimiter` (any unicode, cleaned with clean_step, empties dropped)."""
    raw = draw(st.lists(st.lists(text_piece, min_size=1, max_size=4).map("".join), min_size=min_size,
                        max_size=max_size))
    steps = [c for c in (clean_step(r, delimiter) for r in raw) if c]
    assume(len(steps) >= min_size)
    return steps


def _content(text, delimiter):
    return "".join(text.replace(delimiter, " ").split())


def test_default_delimiter_is_newline():
    assert DEFAULT_DELIMITER == "\n"


@pytest.mark.parametrize("delimiter", DELIMITERS)
@given(data=st.data())
def test_split_join_round_trip(delimiter, data):
    steps = data.draw(canonical_steps(delimiter))
    check_steps(steps, delimiter)
    assert split_steps(join_steps(steps, delimiter), delimiter) == steps


@pytest.mark.parametrize("delimiter", DELIMITERS)
@given(text=any_text)
@example(text="")
@example(text="\n\n\n")
@example(text="  \n a \r\n\n\nb  ")
def test_split_is_canonical_and_idempotent(delimiter, text):
    steps = split_steps(text, delimiter)
    check_steps(steps, delimiter)  # every piece split_steps returns is canonical
    joined = join_steps(steps, delimiter)
    assert split_steps(joined, delimiter) == steps
    assert join_steps(split_steps(joined, delimiter), delimiter) == joined
    # Nothing but whitespace and delimiters is lost: the other characters survive, in order.
    assert _content(text, delimiter) == _content(joined, delimiter)


def test_split_examples():
    assert split_steps("") == []
    assert split_steps("\n\n") == []
    assert split_steps("a\n\nb\n") == ["a", "b"]  # empty steps and trailing delimiters are dropped
    assert split_steps("a\n \n\tb  \r\nc") == ["a", "\tb", "c"]  # whitespace-only steps dropped, indent kept
    assert split_steps("a\nb\n\nc", "\n\n") == ["a\nb", "c"]
    assert split_steps("a\n\n\nb", "\n\n") == ["a", "\nb"]  # left-to-right: the third newline starts step 2
    assert join_steps(["a", "b"]) == "a\nb" and join_steps([]) == ""


@pytest.mark.parametrize("delimiter", DELIMITERS)
@given(raw=any_text)
def test_clean_step(delimiter, raw):
    c = clean_step(raw, delimiter)
    assert clean_step(c, delimiter) == c
    assert delimiter not in c and c == c.rstrip()
    if c:
        check_steps([c], delimiter)
        check_steps([c, c], delimiter)


def test_clean_step_keeps_labels_aligned():
    steps = ["x = 1\ny = 2 ", "so\n\nz = 3\r"]
    assert [clean_step(s) for s in steps] == ["x = 1 y = 2", "so  z = 3"]
    assert [clean_step(s, "\n\n") for s in steps] == ["x = 1\ny = 2", "so z = 3"]


@pytest.mark.parametrize("bad", [[""], ["  "], ["a", ""], ["a\nb"], ["a "], ["a\r"], [3]])
def test_check_steps_rejects(bad):
    with pytest.raises(ValueError):
        check_steps(bad)
    with pytest.raises(ValueError):
        step_char_spans("p", bad)


def test_check_steps_rejects_boundary_shift():
    # "a\n" is free of the delimiter "\n\n" but joined with it reads "a\n\n\nb", which splits as ["a", "\nb"].
    with pytest.raises(ValueError):
        check_steps(["x", "a\n", "b"], "\n\n")
    with pytest.raises(ValueError):
        split_steps("a", "")


def test_first_step():
    assert first_step("x = 2\nThe next", "\n") == ("x = 2", True)
    assert first_step("x = 2", "\n") == ("x = 2", False)
    assert first_step("a\nb\n\nc", "\n\n") == ("a\nb", True)


@pytest.mark.parametrize("delimiter", DELIMITERS)
@given(data=st.data(), prompt=any_text)
def test_prefix_text_and_char_spans(delimiter, data, prompt):
    steps = data.draw(canonical_steps(delimiter))
    text = prefix_text(prompt, steps, delimiter)
    assert text == prompt + "".join(s + delimiter for s in steps)
    spans = step_char_spans(prompt, steps, delimiter)
    assert len(spans) == len(steps)
    prev_end = len(prompt)
    for s, (a, b) in zip(steps, spans, strict=True):
        assert a >= prev_end and text[a:b] == s and text[b:b + len(delimiter)] == delimiter
        prev_end = b + len(delimiter)
    assert prev_end == len(text)
    for h in range(len(steps) + 1):  # a state's text is a prefix of every later state's text
        assert text.startswith(prefix_text(prompt, steps[:h], delimiter))


# ------------------------------------------------------------------------------------------------------------
# Token spans on real tokenizers.


@pytest.fixture(scope="module")
def tiny_tokenizer():
    pytest.importorskip("transformers")
    from llm_fixtures import build_tiny_tokenizer

    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


def _check_token_spans(tok, prompt, steps, delimiter, tokenization):
    """Independent checks of step_token_spans' contract from the offset mapping and decoding."""
    ids, spans = step_token_spans(tok, prompt, steps, delimiter, tokenization=tokenization)
    text = prefix_text(prompt, steps, delimiter)
    char_spans = step_char_spans(prompt, steps, delimiter)
    assert len(spans) == len(steps)
    prev = 0
    for start, end in spans:
        assert prev <= start < end <= len(ids)
        prev = end
    # Offsets of the returned ids, recomputed here from the same encoding the mode promises.
    if tokenization == "joint":
        enc = tok(text, return_offsets_mapping=True)
        assert list(enc["input_ids"]) == ids
        offsets = [tuple(o) for o in enc["offset_mapping"]]
        for (start, end), (a, b) in zip(spans, char_spans, strict=True):
            covered = set()
            for x, y in offsets[start:end]:
                covered.update(range(x, y))
            # Every character of the step is covered, except whitespace a trim_offsets tokenizer leaves out.
            assert all(i in covered or text[i].isspace() for i in range(a, b))
            # The reading token (end - 1) holds no character of the next segment beyond this step's delimiter.
            assert offsets[end - 1][1] <= b + len(delimiter)
    else:
        added = tok.decode(tok("")["input_ids"], clean_up_tokenization_spaces=False)  # e.g. BOS
        assert tok.decode(ids, clean_up_tokenization_spaces=False) == added + text
        for s, (start, end) in zip(steps, spans, strict=True):
            # Segment tokenization: a step's tokens are exactly the tokens of "step + delimiter".
            assert tok.decode(ids[start:end], clean_up_tokenization_spaces=False) == s + delimiter
        for h in range(len(steps)):  # prefix stability: a prefix's ids are a prefix of the trajectory's ids
            sub_ids, sub_spans = step_token_spans(tok, prompt, steps[:h + 1], delimiter)
            assert sub_spans == spans[:h + 1] and sub_ids == ids[:spans[h][1]]
    assert step_end_indices(spans) == [e - 1 for _, e in spans]
    return ids, spans


@pytest.mark.parametrize("delimiter", ["\n", "\n\n"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), prompt=any_text)
def test_tiny_tokenizer_segment_spans(tiny_tokenizer, delimiter, data, prompt):
    steps = data.draw(canonical_steps(delimiter, min_size=1))
    _check_token_spans(tiny_tokenizer, prompt, steps, delimiter, "segments")


def test_tiny_tokenizer_cross_step_merge(tiny_tokenizer):
    """The tiny BPE has no pre-tokenizer and learned "?\\nStep: ": joint mode must refuse, segments must not."""
    steps = ["Q: What is 3+4*2?", "Step: 4*2=8", "Step: 3+8=11", "Answer: 11"]
    ids, spans = _check_token_spans(tiny_tokenizer, "", steps, "\n", "segments")
    assert spans[0][0] == 1 and ids[0] == tiny_tokenizer.bos_token_id  # BOS belongs to no step
    with pytest.raises(ValueError, match="tokenization='segments'"):
        step_token_spans(tiny_tokenizer, "", steps, "\n", tokenization="joint")
    # Where the merge falls inside the prompt, joint mode works and gives "?\nStep: " to step 0.
    ids, spans = _check_token_spans(tiny_tokenizer, steps[0] + "\n", steps[1:], "\n", "joint")
    assert tiny_tokenizer.decode(ids[spans[0][0]:spans[0][0] + 1]).startswith("?\n")


@pytest.mark.slow
def test_unencodable_text_is_refused(smollm2_tokenizer):
    for tokenization in ["joint", "segments"]:
        with pytest.raises(ValueError, match="does not reproduce"):
            step_token_spans(smollm2_tokenizer, "Q", ["x \U00040000 y"], tokenization=tokenization)


def test_token_spans_errors(tiny_tokenizer):
    with pytest.raises(ValueError):
        step_token_spans(tiny_tokenizer, "p", ["ok", ""])
    with pytest.raises(ValueError, match="tokenization"):
        step_token_spans(tiny_tokenizer, "p", ["ok"], tokenization="other")

    class Slow:
        is_fast = False

    with pytest.raises(TypeError):
        step_token_spans(Slow(), "p", ["ok"])
    assert step_token_spans(tiny_tokenizer, "p", []) == (list(tiny_tokenizer("p")["input_ids"]), [])


@pytest.mark.slow
@pytest.mark.parametrize("tokenization", ["joint", "segments"])
@pytest.mark.parametrize("delimiter", ["\n", "\n\n"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), prompt=any_text)
def test_smollm2_spans(smollm2_tokenizer, tokenization, delimiter, data, prompt):
    steps = data.draw(canonical_steps(delimiter, min_size=1))
    text = prefix_text(prompt, steps, delimiter)
    try:
        _check_token_spans(smollm2_tokenizer, prompt, steps, delimiter, tokenization)
    except ValueError as e:
        if "does not reproduce" in str(e):
            # SmolLM2's GGUF vocabulary lacks some byte tokens (e.g. for U+40000): confirm independently.
            ids = smollm2_tokenizer(text)["input_ids"]
            assert smollm2_tokenizer.decode(ids, clean_up_tokenization_spaces=False) != text
        else:
            # Joint mode may otherwise refuse only because a token really holds characters of two steps.
            assert tokenization == "joint" and "merges" in str(e)


@pytest.mark.slow
def test_smollm2_chat_prompt(smollm2_tokenizer):
    tok = smollm2_tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": "What is 3+4*2?"}], tokenize=False,
                                     add_generation_prompt=True)
    steps = ["First, 4*2 = 8.", "Then 3 + 8 = 11 😀 é.", "The answer is $\\boxed{11}$."]
    for delimiter in ["\n", "\n\n"]:
        joint_ids, joint_spans = _check_token_spans(tok, prompt, steps, delimiter, "joint")
        seg_ids, seg_spans = _check_token_spans(tok, prompt, steps, delimiter, "segments")
        if delimiter == "\n":  # SmolLM2's regex pre-tokenizer never merges "\n" into a word: the modes agree
            assert joint_ids == seg_ids and joint_spans == seg_spans
        else:
            # "\n\nThen" pre-tokenizes as "\n", "\n", "Then" while the model emits the one token "\n\n" at a
            # step's end: segment mode keeps that token (the text the model generated), joint mode splits it.
            assert all(tok.decode(seg_ids[e - 1:e], clean_up_tokenization_spaces=False) == "\n\n"
                       for _, e in seg_spans)
            assert len(joint_ids) == len(seg_ids) + len(steps) - 1
        # An indented step: joint mode merges "\n " into one token (delimiter + the step's first space) and
        # gives it to the indented step; segment mode keeps "\n" with the previous step.
        indented = [steps[0], "  " + steps[1], steps[2]]
        joint_ids, joint_spans = _check_token_spans(tok, prompt, indented, delimiter, "joint")
        seg_ids, seg_spans = _check_token_spans(tok, prompt, indented, delimiter, "segments")
        assert joint_spans[0][1] - joint_spans[0][0] == seg_spans[0][1] - seg_spans[0][0] - 1
        # "." and the delimiter: the reading token is the step's own last token.
        last = joint_spans[0][1] - 1
        assert tok.decode(joint_ids[last:last + 1], clean_up_tokenization_spaces=False).strip() in {".", ".\n", ".\n\n"}
