#!/usr/bin/env bash
# Refresh constraints.txt, the lock: the exact versions of everything `pip install -e ".[dev]"` resolves to today.
#   bash tools/lock.sh            # writes constraints.txt from a fresh virtual environment (no lock applied)
#   bash .ci/run                  # then the whole test suite on exactly those versions; commit both if it passes
# settings.ini keeps the ranges library users install from; the lock is what the README's commands and CI use. If a
# newer release inside a range breaks a test, cap that range in settings.ini and run this again.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/lock-venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check ${TORCH_INDEX:+--extra-index-url "$TORCH_INDEX"} "torch==${TORCH_VERSION:-2.13.0}"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
"$venv/bin/python" -m pip check
{
  echo "# The lock: exact versions CI ran (Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'), $(uname -m), $(date -u +%Y-%m-%d))."
  echo "# Use: pip install -c constraints.txt -e \".[dev]\"   Refresh: bash tools/lock.sh (then bash .ci/run)."
  # local version labels (torch's +cpu) are dropped: the pin then accepts the CPU and the CUDA build of that version
  "$venv/bin/python" -m pip freeze --exclude-editable --all | grep -v -E '^(pip|setuptools|wheel)==' | sed -E 's/\+[a-z0-9.]+$//' | LC_ALL=C sort -f
} > constraints.txt
rm -rf "$(dirname "$venv")"
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) pins)"
