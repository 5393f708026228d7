#!/usr/bin/env bash
# The project's test command (README): every notebook, then the tests that cannot live in a notebook.
set -euo pipefail
cd "$(dirname "$0")/.."
export DS_ACCELERATOR=cpu TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
export LLM_METHODS_HOME="${LLM_METHODS_HOME:-$PWD/.cache/llm_methods}"
start=$(date +%s)
nbdev_test --timing --n_workers "${NBDEV_WORKERS:-2}"
echo "nbdev_test took $(( $(date +%s) - start )) s"
python -m pytest -q tests
