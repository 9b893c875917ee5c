#!/usr/bin/env bash
# The main job: set up .venv, then run t2t's main demonstration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Until `t2t quickstart` lands (issue 6) the main job is the model demo.
exec .venv/bin/t2t demo "$@"
