#!/usr/bin/env bash
# Create (or reuse) .venv and install t2t from this checkout's own files, with the tested versions of
# every dependency (constraints.txt; pyproject.toml itself states ranges).
#   scripts/setup.sh          t2t with its optional features (plots, TensorBoard, Parquet, datasets)
#   scripts/setup.sh --dev    and the test tools (pytest, ruff, transformers as the oracle, ...)
# Re-running is cheap: the install is skipped while pyproject.toml and constraints.txt are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="[all]"
[ "${1:-}" = "--dev" ] && extras="[all,dev]"
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null 2>&1 || py=python3
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
stamp=".venv/.t2t-installed${extras}"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".${extras}"
    echo "$want" > "$stamp"
fi
