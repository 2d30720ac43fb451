"""Learned verifiers (pavkit.llm.verifier): rows, class balance, metrics by hand, and the real tiny model.

Everything model-side runs the tiny Llama of `tests/conftest.py: tiny_model_dir` (built in memory, no
download) with one torch thread. The learning test uses synthetic label records whose label is a simple
function of the step text, so a verifier that learns must beat the best constant predictor on held-out problems.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pavkit.cli import main
from pavkit.estimators import bok
from pavkit.llm.label import balanced_buckets
from pavkit.llm.verifier import (
    KINDS,
    LabelRecordError,
    VerifierConfig,
    bce_with_logits,
    binary_auc,
    constant_bce,
    epoch_weights,
    records_delimiter,
    split_by_problem,
    verifier_rows,
)
from pavkit.runs import warmup_cosine

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the 2-core machine runs other processes; results here do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------------------------
# Synthetic label records with the keys `pavkit.llm.label.label_problem` writes.

GOOD, BAD = "Step: {b}*{c}={p}", "Answer: {a}"


def make_record(problem_index: int, seed_index: int, prompt: str, steps: list[str], v_pi: list[float],
                outcome: bool, num_seed_steps: int | None = None) -> dict:
    h = len(steps)
    assert len(v_pi) == h + 1
    return {"problem_id": f"p{problem_index}", "problem_index": problem_index, "seed_index": seed_index,
            "problem": prompt.strip(), "answer": "7", "prompt": prompt, "response": "\n".join(steps),
            "finished": True, "outcome": outcome, "num_seed_steps": h if num_seed_steps is None else num_seed_steps,
            "first_pit": None, "steps": steps, "v_pi": v_pi, "se_pi": [0.1] * (h + 1), "n_pi": [4] * (h + 1),
            "v_mu": [float(x) for x in bok(np.asarray(v_pi), 4)], "se_mu": [0.1] * (h + 1), "n_mu": [4] * (h + 1),
            "ungradable": 0, "screen": None,
            "provenance": {"model": "tiny", "prover": "bok:4", "seed": 0, "rollout_seeds": [1, 2], "n_mc": 4,
                           "n_cov": 2, "delimiter": "\n", "temperature": 1.0, "pavkit_version": "0.1.0"}}


def synthetic_records(problems: int, seeds: int = 4, seed: int = 0) -> list[dict]:
    """Trajectories of 1-3 steps, each a 'Step: b*c=p' line (good) or an 'Answer: a' line (bad).

    Label of s_{h+1}: 0.9 if step h is good else 0.1 (a function of the step's text); V(s_1) = 0.5; the outcome
    is 1 iff the last step is good.
    """
    rng = random.Random(seed)
    out = []
    for i in range(problems):
        a, b, c = rng.randint(1, 20), rng.randint(1, 9), rng.randint(1, 9)
        prompt = f"Q: What is {a}+{b}*{c}?\n"
        for j in range(seeds):
            good = [rng.random() < 0.5 for _ in range(rng.randint(1, 3))]
            steps = [(GOOD if g else BAD).format(a=a, b=b, c=c, p=b * c) for g in good]
            out.append(make_record(i, j, prompt, steps, [0.5] + [0.9 if g else 0.1 for g in good], good[-1]))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Numpy parts, by hand.


def test_binary_auc_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35 beats 0.1 only, 0.8 beats both → 3 of 4 pairs
    assert binary_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert binary_auc([0.1, 0.2, 0.3], [0, 1, 1]) == 1.0
    assert binary_auc([0.3, 0.2, 0.1], [0, 1, 1]) == 0.0
    assert binary_auc([0.5, 0.5], [0, 1]) == 0.5  # a tie counts one half
    # ties across classes: positive 0.5 vs negatives 0.5 (½) and 0.2 (1); positive 0.9 beats both → 3.5/4
    assert binary_auc([0.5, 0.5, 0.2, 0.9], [1, 0, 0, 1]) == pytest.approx(3.5 / 4)
    assert binary_auc([0.1, 0.2], [1, 1]) is None and binary_auc([], []) is None


def test_auc_matches_pairwise_count():
    rng = np.random.default_rng(0)
    s, y = rng.integers(0, 5, 40).astype(float), rng.integers(0, 2, 40)
    pos, neg = s[y == 1], s[y == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert binary_auc(s, y) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_bce_and_constant_bce():
    z, y = np.array([0.0, 2.0, -1.0]), np.array([0.5, 1.0, 0.25])
    p = 1 / (1 + np.exp(-z))
    assert bce_with_logits(z, y) == pytest.approx(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert bce_with_logits(np.array([-800.0]), np.array([0.0]))[0] == pytest.approx(0.0)  # no overflow
    # constant predictor: c = weighted mean = (1·1 + 3·0)/4 = 0.25
    c = 0.25
    assert constant_bce(np.array([1.0, 0.0]), np.array([1.0, 3.0])) == pytest.approx(
        -(1 * math.log(c) + 3 * math.log(1 - c)) / 4)


def test_lr_schedule_warms_up_then_decays_to_zero():
    f = [warmup_cosine(s, 4, 20) for s in range(20)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == 1.0 and all(a >= b for a, b in zip(f[4:], f[5:], strict=False))
    assert warmup_cosine(19, 4, 20) == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 16)))
    assert warmup_cosine(0, 0, 10) == 1.0
    # the organism's and RFT's schedule ends at a tenth: 0.1 + 0.9·½(1 + cos(π·k/span)), capped at k = span
    assert warmup_cosine(19, 4, 20, floor=0.1) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 15 / 16)))
    assert warmup_cosine(4, 4, 20, floor=0.1) == 1.0 and warmup_cosine(99, 4, 20, floor=0.1) == pytest.approx(0.1)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="kind"):
        VerifierConfig(kind="prm")
    with pytest.raises(ValueError, match="warmup"):
        VerifierConfig(kind="pqv", iters=10, warmup=11)
    with pytest.raises(ValueError, match="balance"):
        VerifierConfig(kind="pqv", balance="both")


# ---------------------------------------------------------------------------------------------------------------
# Rows, split, class balance.


def test_rows_of_each_kind():
    recs = [make_record(0, 0, "Q?\n", ["Step: 1", "Answer: 2"], [0.25, 0.5, 1.0], True),
            make_record(0, 1, "Q?\n", ["Step: 9"], [0.25, 0.0], False, num_seed_steps=3)]  # cut by first-pit
    orm = verifier_rows(recs, "orm")
    assert len(orm) == 1  # the cut record has no whole response to judge
    assert orm[0].targets.tolist() == [0, 0, 1] and orm[0].weights.tolist() == [0, 0, 1] and orm[0].outcome == 1
    pqv = verifier_rows(recs, "pqv")
    assert [r.targets.tolist() for r in pqv] == [[0.25, 0.5, 1.0], [0.25, 0.0]]
    assert all(r.weights.tolist() == [1.0] * len(r.targets) for r in pqv)
    assert pqv[1].outcome is None  # not a whole response: no outcome for the AUC
    qmu = verifier_rows(recs, "qmu")
    assert qmu[0].targets == pytest.approx(bok(np.array([0.25, 0.5, 1.0]), 4))
    assert records_delimiter(recs) == "\n"


@pytest.mark.parametrize("edit, field", [
    (lambda r: r.pop("v_pi"), "v_pi"),
    (lambda r: r.update(v_pi=[0.5, 0.5]), "v_pi"),
    (lambda r: r.update(v_pi=[0.5, 1.5, 0.0]), "v_pi"),
    (lambda r: r.update(steps=["a\nb", "c"]), "steps"),
    (lambda r: r.update(problem_index="0"), "problem_index"),
    (lambda r: r.pop("prompt"), "prompt"),
])
def test_bad_record_names_line_and_field(edit, field):
    recs = [make_record(0, 0, "Q?\n", ["Step: 1", "Answer: 2"], [0.25, 0.5, 1.0], True) for _ in range(3)]
    edit(recs[1])
    with pytest.raises(LabelRecordError, match=rf"^labels\.jsonl:2: {field}: "):
        verifier_rows(recs, "pqv", source="labels.jsonl")


def test_orm_needs_an_outcome():
    rec = make_record(0, 0, "Q?\n", ["Step: 1"], [0.5, 1.0], True)
    rec["outcome"] = 0.5
    with pytest.raises(LabelRecordError, match="record 0: outcome"):
        verifier_rows([rec], "orm")


def test_split_is_by_problem():
    rows = verifier_rows(synthetic_records(20, seeds=3), "pqv")
    train, held = split_by_problem(rows, 0.25, seed=1)
    assert {r.problem_index for r in train}.isdisjoint({r.problem_index for r in held})
    assert len({r.problem_index for r in held}) == 5 and len(train) + len(held) == len(rows)
    assert split_by_problem(rows, 0.0, 1)[1] == []


def _imbalanced_rows():
    """100 single-step trajectories: 90 with Q̂(s_2) = 0.1, 10 with Q̂(s_2) = 0.8 (V(s_1) unlabelled: orm rows)."""
    recs = [make_record(i, 0, "Q?\n", ["Step: 1"], [0.3, 0.1 if i < 90 else 0.8], i >= 90) for i in range(100)]
    return verifier_rows(recs, "orm"), verifier_rows(recs, "pqv")


def test_class_balance_90_10():
    orm, _ = _imbalanced_rows()
    w = epoch_weights(orm, "down", seed=3)
    low = sum(x[-1] for r, x in zip(orm, w, strict=True) if r.targets[-1] < 0.5)
    high = sum(x[-1] for r, x in zip(orm, w, strict=True) if r.targets[-1] >= 0.5)
    assert (low, high) == (10, 10)  # exactly the counts balanced_buckets draws: 2·min
    idx = balanced_buckets(np.array([r.targets[-1] for r in orm]), 3, mode="down")
    assert np.array_equal(np.array([x[-1] for x in w]), np.bincount(idx, minlength=100))
    up = epoch_weights(orm, "up", seed=3)
    up_low = sum(x[-1] for r, x in zip(orm, up, strict=True) if r.targets[-1] < 0.5)
    up_high = sum(x[-1] for r, x in zip(orm, up, strict=True) if r.targets[-1] >= 0.5)
    assert (up_low, up_high) == (90, 90)  # a prefix drawn m times weighs m
    assert max(x[-1] for x in up) > 1
    assert [x.tolist() for x in epoch_weights(orm, "none", 0)] == [r.weights.tolist() for r in orm]


def test_class_balance_over_all_prefixes_of_pqv():
    _, pqv = _imbalanced_rows()
    w = epoch_weights(pqv, "down", seed=0)
    flat_y = np.concatenate([r.targets for r in pqv])
    flat_w = np.concatenate(w)
    # buckets over all 200 prefixes: 100 × 0.3 and 90 × 0.1 are low (190), 10 × 0.8 high → 10 + 10
    assert flat_w[flat_y < 0.5].sum() == 10 and flat_w[flat_y >= 0.5].sum() == 10


def test_epochs_redraw_the_sample(tiny_model_dir):
    from pavkit.llm.verifier import VerifierTrainer, init_verifier

    model, tok = init_verifier(tiny_model_dir, device="cpu")
    recs = [make_record(i, 0, "Q?\n", ["Step: 1"], [0.3, 0.1 if i < 90 else 0.8], i >= 90) for i in range(100)]
    trainer = VerifierTrainer(model, tok, recs, VerifierConfig(kind="orm", iters=3, warmup=0, eval_fraction=0,
                                                             arch="token-classification"))
    draws = [trainer._draw(e) for e in range(3)]
    assert all(sum(x.sum() for x in d) == 20 for d in draws)  # 10 + 10 every epoch
    assert len({tuple(np.flatnonzero([x[-1] for x in d])) for d in draws}) == 3  # a different sample each time


# ---------------------------------------------------------------------------------------------------------------
# The model: backbone kept, prefix values, batching, token counts, save/load.


def test_backbone_weights_are_the_causal_lms(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from pavkit.llm.verifier import init_verifier

    model, tok = init_verifier(tiny_model_dir, device="cpu")
    lm = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True, dtype=torch.float32).eval()
    model.eval()
    ids = tok(["Q: What is 3+4*2?\nStep: 4*2=8\n"], return_tensors="pt").input_ids
    with torch.no_grad():
        h_v = model.model(input_ids=ids).last_hidden_state
        h_lm = lm.model(input_ids=ids).last_hidden_state
    assert torch.equal(h_v, h_lm)
    assert model.config.num_labels == 1 and model.score.out_features == 1
    assert not hasattr(model, "lm_head")


def _random_trajectories(rng: random.Random, n: int):
    prompts, steps = [], []
    for _ in range(n):
        a, b, c = rng.randint(1, 20), rng.randint(1, 9), rng.randint(1, 9)
        prompts.append(f"Q: What is {a}+{b}*{c}?\n")
        pool = [f"Step: {b}*{c}={b * c}", f"Step: {a}+{b * c}={a + b * c}", f"Answer: {a + b * c}", "Hmm, wait",
                f"Step: {rng.randint(1, 99)}"]
        steps.append([rng.choice(pool) for _ in range(rng.randint(0, 5))])
    return prompts, steps


def test_prefix_values_equal_scoring_each_prefix_alone(tiny_model_dir):
    from pavkit.llm.steps import step_token_spans
    from pavkit.llm.verifier import Verifier, init_verifier

    torch.manual_seed(0)
    model, tok = init_verifier(tiny_model_dir, device="cpu")
    torch.nn.init.normal_(model.score.weight, std=1.0)  # a head that actually varies with the hidden state
    v = Verifier(model, tok, batch_size=4)
    prompts, steps = _random_trajectories(random.Random(0), 6)
    whole = v.prefix_values(prompts, steps)
    for p, s, vals in zip(prompts, steps, whole, strict=True):
        assert vals.shape == (len(s) + 1,)
        for h in range(len(s) + 1):
            ids, _ = step_token_spans(tok, p, s[:h])  # the prefix (prompt, steps[:h]) alone, unpadded
            with torch.no_grad():
                z = model(input_ids=torch.tensor([ids])).logits[0, -1, 0].item()
            assert vals[h] == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-5)
            assert v.values([p], [s[:h]])[0] == pytest.approx(vals[h], abs=1e-5)
    assert len({round(float(x), 4) for vals in whole for x in vals}) > 5  # values do differ across prefixes


def test_batching_and_padding_do_not_change_values_and_tokens_are_counted(tiny_model_dir):
    from pavkit.llm.steps import step_token_spans
    from pavkit.llm.verifier import Verifier, init_verifier

    torch.manual_seed(1)
    model, tok = init_verifier(tiny_model_dir, device="cpu")
    torch.nn.init.normal_(model.score.weight, std=1.0)
    prompts, steps = _random_trajectories(random.Random(1), 9)
    batched = Verifier(model, tok, batch_size=4)
    single = Verifier(model, tok, batch_size=1)
    vb = batched.prefix_values(prompts, steps)
    vs = [single.prefix_values([p], [s])[0] for p, s in zip(prompts, steps, strict=True)]
    for a, b in zip(vb, vs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    lengths = [len(step_token_spans(tok, p, s)[0]) for p, s in zip(prompts, steps, strict=True)]
    assert batched.stats.forward_tokens == single.stats.forward_tokens == sum(lengths)
    assert batched.stats.trajectories == 9 and batched.stats.forward_passes == 3
    assert single.stats.padded_tokens == sum(lengths) < batched.stats.padded_tokens
    # batches group similar lengths: the padded total is that of the sorted order in chunks of 4
    srt = sorted(lengths)
    assert batched.stats.padded_tokens == sum(len(srt[k:k + 4]) * max(srt[k:k + 4]) for k in range(0, 9, 4))
    assert batched.values(prompts, steps) == pytest.approx([x[-1] for x in vb], abs=1e-6)


def test_save_pretrained_round_trip(tiny_model_dir, tmp_path):
    from transformers import AutoModelForTokenClassification

    from pavkit.llm.verifier import Verifier, init_verifier

    torch.manual_seed(2)
    model, tok = init_verifier(tiny_model_dir, device="cpu")
    torch.nn.init.normal_(model.score.weight, std=1.0)
    model.save_pretrained(tmp_path / "v")
    tok.save_pretrained(tmp_path / "v")
    prompts, steps = _random_trajectories(random.Random(2), 4)
    before = Verifier(model, tok).prefix_values(prompts, steps)
    plain = AutoModelForTokenClassification.from_pretrained(tmp_path / "v", local_files_only=True)
    assert type(plain).__name__ == "LlamaForTokenClassification"
    after = Verifier(plain, tok).prefix_values(prompts, steps)
    loaded = Verifier.from_path(tmp_path / "v", device="cpu").prefix_values(prompts, steps)
    for a, b, c in zip(before, after, loaded, strict=True):
        assert np.array_equal(a, b) and np.array_equal(a, c)


# ---------------------------------------------------------------------------------------------------------------
# Training.


def _train(tiny_model_dir, records, **cfg):
    from pavkit.llm.verifier import init_verifier, train_verifier

    model, tok = init_verifier(tiny_model_dir, device="cpu")
    log = list(train_verifier(model, tok, records, VerifierConfig(arch="token-classification", **cfg)))
    return model, tok, log


def test_training_learns_a_function_of_the_step_text(tiny_model_dir):
    records = synthetic_records(60, seeds=4, seed=0)
    model, tok, log = _train(tiny_model_dir, records, kind="pqv", iters=80, batch_size=16, lr=3e-3, warmup=8,
                             eval_fraction=0.25, eval_every=40, seed=0)
    evals = [r for r in log if "eval_bce" in r]
    steps = [r for r in log if "loss" in r]
    assert [r["iter"] for r in evals] == [0, 40, 80] and [r["iter"] for r in steps] == list(range(1, 81))
    first, last = evals[0], evals[-1]
    # the head's bias starts at the (class-balanced) training label mean: the initial loss is near the best
    # constant's on the (unbalanced) held-out labels
    assert first["eval_bce"] == pytest.approx(first["eval_bce_const"], abs=0.1)
    # learned: clearly below every constant predictor (entropy floor of the 0.9/0.1 labels ≈ 0.33 there)
    assert last["eval_bce"] < 0.75 * last["eval_bce_const"]
    assert last["eval_mae"] < 0.6 * first["eval_mae"]
    assert last["eval_auc"] > 0.9  # the final prefix's value predicts the outcome
    assert steps[0]["lr"] == pytest.approx(3e-3 / 8) and steps[-1]["lr"] < 1e-4
    assert not model.training


def test_orm_learns_the_outcome(tiny_model_dir):
    records = synthetic_records(60, seeds=4, seed=1)
    _, _, log = _train(tiny_model_dir, records, kind="orm", iters=60, batch_size=16, lr=3e-3, warmup=6,
                       eval_fraction=0.25, eval_every=60, seed=1)
    last = [r for r in log if "eval_bce" in r][-1]
    assert last["eval_auc"] > 0.9 and last["eval_bce"] < 0.75 * last["eval_bce_const"]
    # orm trains on one position per trajectory
    assert all(r["positions"] == r["trajectories"] for r in log if "loss" in r)


def test_resume_takes_the_same_steps(tiny_model_dir):
    from pavkit.llm.verifier import VerifierTrainer, init_verifier

    records = synthetic_records(12, seeds=2, seed=3)
    cfg = VerifierConfig(kind="pqv", iters=6, batch_size=4, lr=1e-3, warmup=2, eval_every=3, seed=5,
                         arch="token-classification")
    model, tok = init_verifier(tiny_model_dir, device="cpu")
    full = [r for r in VerifierTrainer(model, tok, records, cfg).run() if "loss" in r]
    model_a, tok = init_verifier(tiny_model_dir, device="cpu")
    first = VerifierTrainer(model_a, tok, records, cfg)
    head = []
    for r in first.run():
        head.append(r)
        if r.get("iter") == 3 and "eval_bce" in r:
            break
    state = {k: v for k, v in first.state_dict().items()}
    model_b, tok = init_verifier(tiny_model_dir, device="cpu")
    second = VerifierTrainer(model_b, tok, records, cfg)
    second.load_state_dict(state)
    tail = [r for r in second.run() if "loss" in r]
    losses = [r["loss"] for r in head if "loss" in r] + [r["loss"] for r in tail]
    assert losses == pytest.approx([r["loss"] for r in full], rel=1e-5)
    for p, q in zip(model.parameters(), model_b.parameters(), strict=True):
        torch.testing.assert_close(p, q)


# ---------------------------------------------------------------------------------------------------------------
# The command line.


def _write_labels(path: Path, records: list[dict]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def train_cli(tiny_model_dir, tmp_path, kind: str, *extra: str) -> tuple[Path, list[str], dict]:
    """`pavkit llm train-verifier` on 16 synthetic problems, 6 steps: (OUT, the arguments, the summary line)."""
    labels = _write_labels(tmp_path / "labels", synthetic_records(16, seeds=2, seed=4))
    out = tmp_path / kind
    args = ["llm", "train-verifier", str(labels), "--base", str(tiny_model_dir), "--kind", kind, "--out", str(out),
            "--iters", "6", "--batch-size", "4", "--warmup", "2", "--eval-every", "3", "--eval-fraction", "0.25",
            *extra, "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    return out, args, json.loads(res.stdout.strip().splitlines()[-1])


def test_cli_trains_saves_and_loads(tiny_model_dir, tmp_path):
    from transformers import AutoModelForTokenClassification

    from pavkit.llm.verifier import Verifier

    out, args, summary = train_cli(tiny_model_dir, tmp_path, "pqv", "--arch", "token-classification")
    assert {"eval_bce", "eval_mae", "iters", "seconds"} <= set(summary) and summary["iters"] == 6
    config = json.loads((out / "config.json").read_text())
    assert config["verifier"]["kind"] == "pqv" and config["verifier"]["delimiter"] == "\n"
    assert (out / "meta.json").exists() and not (out / "checkpoint.pt").exists()
    records = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "loss" in r] == list(range(1, 7))
    assert [r["iter"] for r in records if "eval_bce" in r] == [0, 3, 6]
    info = json.loads((out / "model" / "verifier.json").read_text())
    assert info["kind"] == "pqv" and info["metrics"]["eval_bce"] == summary["eval_bce"]
    plain = AutoModelForTokenClassification.from_pretrained(out / "model", local_files_only=True)
    assert plain.config.num_labels == 1
    v = Verifier.from_path(out, device="cpu")  # the run directory resolves to OUT/model
    vals = v.prefix_values(["Q: What is 1+2*3?\n"], [["Step: 2*3=6", "Answer: 7"]])
    assert vals[0].shape == (3,) and np.all((vals[0] > 0) & (vals[0] < 1))

    again = CliRunner().invoke(main, args)  # a finished run is a no-op
    assert again.exit_code == 0 and json.loads(again.stdout.strip().splitlines()[-1]) == summary
    assert (out / "train.jsonl").read_text().count("\n") == len(records)
    changed = CliRunner().invoke(main, args[:-1] + ["--lr", "0.01"])
    assert changed.exit_code == 2 and "lr" in changed.output


def test_cli_resumes_from_checkpoint(tiny_model_dir, tmp_path, monkeypatch):
    from pavkit import runs

    labels = _write_labels(tmp_path / "labels", synthetic_records(8, seeds=2, seed=5))
    base_args = ["llm", "train-verifier", str(labels / "labels.jsonl"), "--base", str(tiny_model_dir), "--kind",
                 "orm", "--iters", "4", "--batch-size", "4", "--warmup", "1", "--eval-every", "2"]
    assert CliRunner().invoke(main, base_args + ["--out", str(tmp_path / "full")]).exit_code == 0
    full = [r for r in runs.read_records(tmp_path / "full") if "loss" in r]

    out = tmp_path / "killed"
    append = runs.append_record

    def killed_after_step_3(path, record, name="train.jsonl"):
        append(path, record, name)
        if record.get("iter") == 3:
            raise KeyboardInterrupt  # a kill after step 3's record, before the next checkpoint (step 4)

    monkeypatch.setattr(runs, "append_record", killed_after_step_3)
    assert CliRunner().invoke(main, base_args + ["--out", str(out)]).exit_code != 0
    assert (out / "checkpoint.pt").exists() and not (out / "model").exists()
    monkeypatch.setattr(runs, "append_record", append)
    res = CliRunner().invoke(main, base_args + ["--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["resumed_from_iter"] == 2
    resumed = [r for r in runs.read_records(out) if "loss" in r]
    assert [r["iter"] for r in resumed] == [1, 2, 3, 4]  # step 3 is not written twice
    assert [r["loss"] for r in resumed] == pytest.approx([r["loss"] for r in full], rel=1e-5)
    assert [r["iter"] for r in runs.read_records(out) if "eval_bce" in r] == [0, 2, 4]


def test_cli_bad_label_line_is_input_error(tiny_model_dir, tmp_path):
    recs = synthetic_records(3, seeds=1)
    recs[1]["v_pi"] = recs[1]["v_pi"][:-1]
    labels = _write_labels(tmp_path / "labels", recs)
    res = CliRunner().invoke(main, ["llm", "train-verifier", str(labels), "--base", str(tiny_model_dir),
                                    "--kind", "pqv", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert f"{labels / 'labels.jsonl'}:2: v_pi:" in res.output
    (labels / "labels.jsonl").write_text("{not json\n")
    res = CliRunner().invoke(main, ["llm", "train-verifier", str(labels), "--base", str(tiny_model_dir),
                                    "--kind", "orm", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "labels.jsonl:1" in res.output
    _write_labels(labels, synthetic_records(3, seeds=1))
    res = CliRunner().invoke(main, ["llm", "train-verifier", str(labels), "--base", str(tiny_model_dir),
                                    "--kind", "orm", "--out", str(tmp_path / "o"), "--iters", "5", "--warmup", "9"])
    assert res.exit_code == 2 and "--warmup: must be in [0, iters], got 9" in res.output
    assert not (tmp_path / "o").exists()  # nothing written on bad input


def test_kinds_are_the_contracts():
    assert KINDS == ("orm", "pqv", "qmu")
