#!/usr/bin/env bash
# The reliability suite on its own, with its figures written as JSON.
# Usage: scripts/reliability.sh [TRIALS] [PYTEST ARGS...]
#   TRIALS: SIGKILL trials in all (default 360, as in CI; e.g. 3600 for a long run)
# Hostile-input examples scale with AUTOJOB_HOSTILE_EXAMPLES (default 150).
# Figures go to AUTOJOB_RELIABILITY_FIGURES (default reliability-figures.json);
# docs/reliability.md quotes those of the last full run.
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-360}"
shift || true
scripts/bootstrap.sh test
export AUTOJOB_CRASH_TRIALS="$trials"
export AUTOJOB_RELIABILITY_FIGURES="${AUTOJOB_RELIABILITY_FIGURES:-$PWD/reliability-figures.json}"
.venv/bin/pytest tests/test_reliability_*.py "$@"
echo "figures: $AUTOJOB_RELIABILITY_FIGURES"
