#!/usr/bin/env bash
# Test pavkit.integrations.verl against verl itself (0.9.1), in its own venv `.venv-verl`: verl pins
# transformers < 5.11, so it cannot share the main venv (transformers 5.17). Idempotent: a second run reuses the
# venv. First run about 1.5 min (installs about 1.9 GB), then seconds. verl's trainer needs GPUs; its data
# structures (DataProto), registries and estimators run on CPU, and so do these tests.
#   ci/test-verl.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VERL_VENV:-.venv-verl}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
if ! python -c "import verl" >/dev/null 2>&1; then
  python -m pip install -q --upgrade pip
  # torch pinned to the CPU wheel (an unpinned one pulls a CUDA build); transformers as verl 0.9.1 allows.
  python -m pip install -q torch==2.13.0 verl==0.9.1 "transformers<5.11"
fi
# pavkit itself (no deps: verl brought torch/transformers) plus what pavkit and the tests import.
python -m pip install -q --no-deps -e .
python -m pip install -q numpy scipy click matplotlib pytest tokenizers "math-verify>=0.7"

export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Fail (rather than skip) if verl cannot be used here: this script exists to test it.
export PAVKIT_REQUIRE_VERL=1
python -m pytest -q -p no:cacheprovider tests/test_verl.py "$@"
