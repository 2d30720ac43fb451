"""Which verifier recipe ranks a problem's own responses? Held-out within-problem AUC of each recipe on the same
Monte Carlo labels. One JSON line.

Recipes (every one trained on the labels of `pavkit llm label`, the ORM on outcomes, the PQV on Q̂^π):

    token-classification   the LM fine-tuned with a linear head on the hidden state (the paper's setup)
    lm-features            the LM frozen, a head on its hidden state and its token log-prob statistics
    lm-features/no-logprobs  the same with the log-prob statistics zeroed (hidden state only)
    lm-features/no-hidden    the same with the hidden state zeroed (log-prob statistics only)

each on the LMs given by --roles (folders of --organism) and for --kinds. Problems are split by problem, a
--eval-fraction of them held out; the figure per recipe is `eval_within_auc` with its SE (pavkit.llm.verifier
.within_problem_auc) and the pooled AUC beside it.

Usage: python bench/verifiers.py --labels runs/organism-cpu/labels --organism runs/organism-cpu/organism
    [--records 692] [--roles base,strong] [--kinds orm,pqv] [--recipes lm-features,lm-features/no-hidden,...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

RECIPES = ("token-classification", "lm-features", "lm-features/no-logprobs", "lm-features/no-hidden")
ABLATE = {"": None, "no-logprobs": "features", "no-hidden": "hidden"}  # recipe suffix → LMFeatureModel.ablate
SETTINGS = {"token-classification": {"iters": 400, "batch_size": 16, "lr": 1e-3, "warmup": 40},
            "lm-features": {"iters": 2000, "batch_size": 32, "lr": 3e-3, "warmup": 100}}  # the pipeline's


def run(recipe: str, lm: Path, kind: str, records: list, eval_fraction: float, seed: int) -> dict:
    from pavkit.llm.lmfeatures import init_lm_feature_verifier
    from pavkit.llm.verifier import VerifierConfig, VerifierTrainer, init_verifier

    arch, _, suffix = recipe.partition("/")
    model, tok = (init_verifier(lm) if arch == "token-classification" else
                  init_lm_feature_verifier(lm, seed=seed, ablate=ABLATE[suffix]))
    cfg = VerifierConfig(kind=kind, arch=arch, eval_fraction=eval_fraction, seed=seed,
                         eval_every=SETTINGS[arch]["iters"], **SETTINGS[arch])
    t0 = time.perf_counter()
    last = [r for r in VerifierTrainer(model, tok, records, cfg).run() if "eval_bce" in r][-1]
    return {"within_auc": last.get("eval_within_auc"), "within_auc_se": last.get("eval_within_auc_se"),
            "problems": last.get("eval_within_problems"), "pooled_auc": last.get("eval_auc"),
            "eval_bce": last["eval_bce"], "eval_bce_const": last["eval_bce_const"],
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", required=True, help="a `pavkit llm label` run directory or labels .jsonl")
    parser.add_argument("--organism", required=True, help="folder holding the LM folders named by --roles")
    parser.add_argument("--records", type=int, default=None, help="use the first N label records (default all)")
    parser.add_argument("--roles", default="base,strong", help="LM folders under --organism")
    parser.add_argument("--kinds", default="orm,pqv")
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--eval-fraction", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from pavkit.llm.label import scan_labels

    torch.set_num_threads(args.threads)
    file = Path(args.labels) / "labels.jsonl" if Path(args.labels).is_dir() else Path(args.labels)
    records, _ = scan_labels(file.read_bytes(), str(file))
    records = records[:args.records] if args.records else records
    t0 = time.perf_counter()
    out = {}
    for recipe in args.recipes.split(","):
        for role in args.roles.split(","):
            for kind in args.kinds.split(","):
                out[f"{recipe}:{role}:{kind}"] = run(recipe, Path(args.organism) / role, kind, records,
                                                      args.eval_fraction, args.seed)
    print(json.dumps({"records": len(records), "eval_fraction": args.eval_fraction, "results": out,
                      "minutes": round((time.perf_counter() - t0) / 60, 1)}))


if __name__ == "__main__":
    main()
