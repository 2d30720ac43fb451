"""How well a learned PAV's advantages agree with exact ones on the organism. One JSON line.

Samples ``--samples`` responses per held-out problem from ``--policy`` (temperature 1), splits them into steps,
and computes on every step A^μ(s_h, a_h) twice with the same prover ``--prover bok:K``: from the learned PQV
(``--pqv``) and from the exact organism checker (``organism-oracle``, V = p^(steps left) on the worked
solution's track, 0 off it). Prints

    {"steps", "slip_steps", "corr", "slip_auc", "mean_abs_learned", "mean_abs_exact", ...}

slip steps are those where the exact advantage drops below −0.1 (the step leaves the track: an arithmetic slip
or a skipped operation); slip_auc is the probability that a random slip step gets a lower learned advantage
than a random other step (0.5 = no information, 1 = perfect). These are the advantages PAV-RL multiplies by α.
Pooled numbers also reward knowing which problems are hard (more slips, larger |A|); the within-problem view
counts only comparisons inside a problem: within_corr correlates the advantages after subtracting each
problem's mean (of its steps, over all its responses), within_slip_auc is the mean over problems with both
kinds of step of the problem's own slip AUC (``verifier.within_problem_auc``, with its standard error).
missed_slip_rate is the share of slip steps whose learned advantage is above −0.1 (a slip the PAV does not
punish), false_slip_rate the share of other steps below −0.1; --examples K adds the K missed slips with the
highest learned advantage ("missed_slips": problem, the steps before, the slip step, learned and exact A) —
run it on a policy after PAV-RL to see what the policy learned to write that the verifier takes for progress.

A ``model:DIR`` prover (a Q^μ model of another policy) has no exact counterpart in the checker: give
``--exact-prover bok:K`` to compare it with the checker's Bo-K advantages (bok:1 = π's own). The response-level
view suits it: sum_learned_wrong / sum_exact_wrong are the mean over wrong responses of Σ_h A^μ (which
telescopes to V^μ after the last step − V^μ(problem)), final_value_wrong the mean learned V^μ of a wrong
response's full text, and mean_steps the steps per response. A positive sum on wrong responses is what PAV-RL
with ``--terminal-value verifier`` rewards; ``--terminal-value outcome`` (here too) anchors it at r(y) = 0.
What the learned advantages credit inside wrong responses (what PAV-RL's update sees in an all-wrong group,
where r − b = 0 and only α·A^μ is left; ``verifier.credit_profile``): "wrong_steps" splits their steps by the
exact advantages into before_slip (on the track), slip (the first step with exact A < −0.1) and after_slip,
each with its count and mean learned and exact A; "wrong_by_position" the mean learned and exact A in five
bins of the step's relative position h/H; "wrong_on_track_auc" the probability that a before-slip step gets a
higher learned A than a later step of the same response, "wrong_slip_auc" that the slip gets a lower learned
A than another step of its response (each a mean over responses, with its standard error).
Usage: python bench/rl_advantages.py --policy runs/bench-rl/rft/model --pqv runs/organism-cpu/pqv
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def _demean(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """x (N,) minus the mean of its group (groups (N,) ints)."""
    sums = np.bincount(groups, weights=x)
    return x - (sums / np.maximum(np.bincount(groups), 1))[groups]


def main() -> None:
    from pavkit.llm.rl import TERMINAL_VALUES

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", required=True, help="the policy π whose samples are scored (an HF model folder)")
    p.add_argument("--pqv", required=True, help="the learned PQV behind bok:K provers (unused by model: provers)")
    p.add_argument("--prover", default="bok:4", help="μ of the learned advantages: bok:K (from --pqv) or model:DIR")
    p.add_argument("--exact-prover", default=None,
                   help="μ of the exact advantages (a bok:K of the checker); default --prover, needed for model:")
    p.add_argument("--terminal-value", default="verifier", choices=TERMINAL_VALUES,
                   help="V^μ after a response's last step, as `pavkit llm rl --terminal-value`")
    p.add_argument("--problems", type=int, default=100, help="organism test problems")
    p.add_argument("--samples", type=int, default=4, help="responses per problem (temperature 1)")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--examples", type=int, default=0, help="list this many missed slips (see above)")
    a = p.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pavkit.llm.organism import organism_problems
    from pavkit.llm.rl import (
        RLConfig,
        grade,
        load_prover_values,
        prompts_of,
        response_steps,
        sampler,
        terminal_outcome_values,
    )
    from pavkit.llm.verifier import SLIP, binary_auc, credit_profile, within_problem_auc

    torch.set_num_threads(a.threads)
    learned_cfg = RLConfig(policy=a.policy, verifier=a.pqv, prover=a.prover, alpha=1.0)
    exact_prover = a.exact_prover or a.prover
    if exact_prover.startswith("model:"):
        p.error(f"--exact-prover {exact_prover}: the checker has no model: provers; give --exact-prover bok:K")
    exact_cfg = RLConfig(policy=a.policy, verifier="organism-oracle", prover=exact_prover, alpha=1.0)
    tok = AutoTokenizer.from_pretrained(a.policy, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(a.policy, local_files_only=True)
    problems = organism_problems(a.problems, 0, "test")
    prompts = prompts_of(problems, tok, learned_cfg)
    outs = sampler(model, tok, learned_cfg).complete(prompts, a.samples, a.seed)
    flat = [c for row in outs for c in row]
    rep = [prompts[i // a.samples] for i in range(len(flat))]
    steps = [response_steps(tok.batch_decode([[t] for t in c.token_ids], skip_special_tokens=True))[0] for c in flat]
    correct = grade([c.text for c in flat], [problems[i // a.samples].answer for i in range(len(flat))], learned_cfg)
    learned = load_prover_values(learned_cfg)(rep, steps)
    exact = load_prover_values(exact_cfg)(rep, steps)
    verifier_final = np.array([v[-1] for v in learned])
    if a.terminal_value == "outcome":
        learned = terminal_outcome_values(learned, correct)
    adv_l, adv_e = [np.diff(v) for v in learned], [np.diff(v) for v in exact]  # per response (H_i,)
    a_l, a_e = np.concatenate(adv_l), np.concatenate(adv_e)
    slip = a_e < SLIP
    problem = np.concatenate([np.full(len(v) - 1, i // a.samples) for i, v in enumerate(learned)])  # of each step
    within = within_problem_auc(-a_l, slip.astype(float), problem)
    # within a problem: does the learned V^μ of the final prefix rank correct responses above wrong ones?
    final = verifier_final.reshape(len(problems), a.samples)
    wrong = ~correct.astype(bool)
    sums = {name: np.array([v[-1] - v[0] for v in vs]) for name, vs in (("learned", learned), ("exact", exact))}
    ok = correct.reshape(len(problems), a.samples)
    outcome_auc = [binary_auc(final[i], ok[i]) for i in range(len(problems))]
    outcome_auc = [x for x in outcome_auc if x is not None]
    print(json.dumps({
        "responses": len(flat), "accuracy": float(correct.mean()), "steps": int(a_l.size),
        "slip_steps": int(slip.sum()), "corr": float(np.corrcoef(a_l, a_e)[0, 1]),
        "slip_auc": binary_auc(-a_l, slip.astype(float)),
        "mean_abs_learned": float(np.abs(a_l).mean()), "mean_abs_exact": float(np.abs(a_e).mean()),
        "mean_learned_on_slips": float(a_l[slip].mean()), "mean_learned_elsewhere": float(a_l[~slip].mean()),
        "within_corr": float(np.corrcoef(_demean(a_l, problem), _demean(a_e, problem))[0, 1]),
        "within_slip_auc": within["auc"], "within_slip_auc_se": within["se"], "slip_problems": within["problems"],
        "within_problem_outcome_auc": float(np.mean(outcome_auc)) if outcome_auc else None,
        "problems_with_mixed_outcomes": len(outcome_auc),
        "mean_steps": float(np.mean([len(s) for s in steps])),
        "sum_learned_wrong": float(sums["learned"][wrong].mean()) if wrong.any() else None,
        "sum_exact_wrong": float(sums["exact"][wrong].mean()) if wrong.any() else None,
        "final_value_wrong": float(verifier_final[wrong].mean()) if wrong.any() else None,
        **{f"wrong_{k}": v for k, v in credit_profile([x for x, w in zip(adv_l, wrong, strict=True) if w],
                                                       [x for x, w in zip(adv_e, wrong, strict=True) if w]).items()},
        "prover": a.prover, "exact_prover": exact_prover, "terminal_value": a.terminal_value,
        "missed_slip_rate": float((a_l[slip] > SLIP).mean()) if slip.any() else None,
        "false_slip_rate": float((a_l[~slip] < SLIP).mean()) if (~slip).any() else None,
        **({"missed_slips": _missed(problems, steps, learned, exact, a.samples, a.examples)} if a.examples else {})}))


def _missed(problems, steps, learned, exact, samples: int, k: int) -> list[dict]:
    """The k slip steps (exact A < −0.1) with the highest learned advantage."""
    from pavkit.llm.verifier import SLIP

    rows = []
    for i, (s, vl, ve) in enumerate(zip(steps, learned, exact, strict=True)):
        for h, (al, ae) in enumerate(zip(np.diff(vl), np.diff(ve), strict=True)):
            if ae < SLIP:
                rows.append({"problem": problems[i // samples].problem, "before": s[:h], "step": s[h],
                             "learned": round(float(al), 3), "exact": round(float(ae), 3)})
    return sorted(rows, key=lambda r: -r["learned"])[:k]


if __name__ == "__main__":
    main()
