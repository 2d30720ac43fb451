#!/usr/bin/env bash
# Issue #13's RL comparison on one leased GPU in a fixed time budget (the README's "On a GPU" RL section).
#
# Needs, under the repository root: ORG (an organism pipeline directory: pqv/ and the qmu-* provers; carried
# without checkpoints) and OUT_DIR with the stages made beforehand on a CPU: rft/model (`pavkit llm rft`), sft/
# and rft-eval/ (the --iters 0 evaluations), recorded in OUT_DIR/stages.jsonl. Run directories record absolute
# paths, so the tree is reached under the path it had where those stages ran (ROOT, a symbolic link if needed).
# Every RL run of the grid runs at once (one process each, one torch thread, the GPU shared); bench/rl.py's
# --minutes times a few iterations of all of them and gives each run the iterations that fit the budget.
# Writes $OUT/rl-gpu.tgz (records, configs, metrics, figures; the final policies of seed 0's main arms) and
# prints bench/rl.py's JSON line.
set -uo pipefail
ROOT=${ROOT:-/work/main}
ORG=${ORG:-runs/organism-cpu}
OUT_DIR=${OUT_DIR:-runs/bench-rl-gpu}
POLICY=${POLICY:?the SFT policy RL starts from (its RFT is OUT_DIR/rft/model)}
MINUTES=${MINUTES:-6}
WORKERS=${WORKERS:-24}
if ! [ "$(pwd -P)" -ef "$ROOT" ]; then  # best effort: elsewhere, new runs record this tree's own paths
    { mkdir -p "$(dirname "$ROOT")" && ln -sfn "$(pwd -P)" "$ROOT" && cd "$ROOT"; } ||
        echo "note: running in $(pwd -P), not under $ROOT"
fi
export PYTHONPATH=$PWD HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
'transformers', transformers.__version__)"
timeout $((${MINUTES%.*} * 60 + 150)) python3 bench/rl.py --organism "$ORG" --policy "$POLICY" --out "$OUT_DIR" \
    --minutes "$MINUTES" --iters 5000 --problems-per-iter 64 --workers "$WORKERS" --threads 1 \
    --seeds 0,1,2 --alpha 1 --prover bok:4 --control-seeds 0,1 --sft-samples 256 \
    --arm "pav-a0.5=0,1:--alpha 0.5 --prover bok:4" --arm "pav-a3=0,1:--alpha 3 --prover bok:4" \
    --arm "pav-a5=0,1:--alpha 5 --prover bok:4" \
    --arm "pav-bok2=0,1:--alpha 1 --prover bok:2" --arm "pav-bok8=0,1:--alpha 1 --prover bok:8" \
    --arm "pav-weak=0,1:--alpha 1 --prover model:$ORG/qmu-weak" \
    --arm "pav-strong=0,1:--alpha 1 --prover model:$ORG/qmu-strong" \
    --arm "outcome-value=0:--alpha 0 --baseline value" \
    --arm "pav-value=0:--alpha 1 --prover bok:4 --baseline value"
echo "bench exit $?"
pkill -f "pavkit llm rl" || true  # runs the timeout cut short leave their parent behind
if [ -n "${OUT:-}" ]; then  # the device tool's folder of files to bring back
    excludes=(--exclude=checkpoint.pt --exclude="$OUT_DIR/rft/model")
    for d in "$OUT_DIR"/*/policy "$OUT_DIR"/probe/*/policy; do
        case "$d" in
            "$OUT_DIR"/outcome-s0/policy | "$OUT_DIR"/pav-s0/policy | "$OUT_DIR"/control-s0/policy | \
                "$OUT_DIR"/pav-a3-s0/policy) ;;
            *) excludes+=("--exclude=$d") ;;
        esac
    done
    tar czf "$OUT/rl-gpu.tgz" "${excludes[@]}" "$OUT_DIR" && ls -la "$OUT"
fi
