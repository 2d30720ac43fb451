#!/usr/bin/env bash
# Issue #16: the model organism scaled up on one GPU, end to end, with nothing downloaded: train a 28× larger
# organism there (`pavkit llm pipeline --preset organism-gpu`: 14.2 M parameters, 6 layers), Monte Carlo labels,
# the ORM and the PQV, test-time search (bench/search.py's JSON line), then a short RL comparison from its base
# (bench/rl.py's JSON line: outcome-only vs PAV-RL, one seed). Each stage's wall time goes to DIR/stages.jsonl
# and DIR/rl/stages.jsonl, so a first run sizes the next.
#
#   bench/gpu.sh                               # on a GPU machine, from the repository root or anywhere
#   PRESET=organism-tiny RL_ITERS=2 bench/gpu.sh   # the same steps at toy sizes, on a CPU (a check of the script)
#
# Environment: PRESET (organism-gpu), DIR (runs/gpu-PRESET), RL_ITERS (100), RL_PROBLEMS (64 problems × 4
# responses per RL iteration), THREADS (4 torch threads per stage), PYTHON (python3). With OUT set (the device
# tool's folder of files to bring back) it also writes OUT/gpu.tgz: records, configs, metrics, figures.
set -euo pipefail
cd "$(dirname "$0")/.."
PRESET=${PRESET:-organism-gpu}
DIR=${DIR:-runs/gpu-$PRESET}
RL_ITERS=${RL_ITERS:-100}
RL_PROBLEMS=${RL_PROBLEMS:-64}
THREADS=${THREADS:-4}
PYTHON=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1 MPLBACKEND=Agg PYTHONUNBUFFERED=1
"$PYTHON" -c "import json, torch, transformers; print(json.dumps({'torch': torch.__version__,
'transformers': transformers.__version__, 'cuda': torch.cuda.is_available(),
'device': torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}))"
# the organism, labels, ORM and PQV, search: one JSON line
"$PYTHON" bench/search.py --preset "$PRESET" --out "$DIR" --threads "$THREADS"
# RFT of the base, then outcome-only and PAV-RL (α = 1, Bo4 from the PQV): one JSON line
"$PYTHON" bench/rl.py --organism "$DIR" --out "$DIR/rl" --seeds 0 --alpha 1 --prover bok:4 --iters "$RL_ITERS" \
    --problems-per-iter "$RL_PROBLEMS" --eval-every "$(( RL_ITERS < 10 ? 1 : RL_ITERS / 10 ))" \
    --control-verifier '' --sft-samples 32 --final-samples 32 --workers 2 --threads "$(( THREADS / 2 > 0 ? THREADS / 2 : 1 ))"
"$PYTHON" - "$DIR" <<'PY'
import json, sys
from pathlib import Path
d = Path(sys.argv[1])
stages = [json.loads(x) for f in (d / "stages.jsonl", d / "rl" / "stages.jsonl") if f.exists()
          for x in f.read_text().splitlines()]
seconds = {}
for s in stages:  # a resumed stage appears once per call
    seconds[s["stage"]] = round(seconds.get(s["stage"], 0) + s["seconds"], 1)
print(json.dumps({"stage_seconds": seconds, "minutes": round(sum(seconds.values()) / 60, 1)}))
PY
if [ -n "${OUT:-}" ]; then
    tar czf "$OUT/gpu.tgz" --exclude=checkpoint.pt --exclude='*.safetensors' --exclude='*.pt' "$DIR"
fi
