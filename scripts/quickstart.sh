#!/usr/bin/env bash
# The main job: set up .venv, then run `t2t quickstart` (tokenizer -> pretraining -> multi-task
# fine-tuning with and without it -> evaluation table -> prompts) on the built-in data.
# Extra arguments go to the quickstart, e.g. `bash scripts/quickstart.sh --fast --out /tmp/qs`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/t2t quickstart "$@"
