#!/usr/bin/env bash
# The main job on the embedded default: build a sample study, list it, run it.
# Usage: scripts/demo.sh [DEST]   (default: ./demo)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
dest="${1:-demo}"
mkdir -p "$dest"
root=$(.venv/bin/python examples/convergence_study.py "$dest")
echo "== the study on disk: $root"
.venv/bin/autojob list "$root"
echo "== running each task's run.sh in its directory"
for script in "$root"/convergence/*/attempt-*/run.sh; do
    bash "$script"
done
echo "== results (outputs.json of each task)"
cat "$root"/convergence/*/attempt-*/outputs.json; echo
