#!/usr/bin/env bash
# The main job on the embedded default executor (this machine's cores): build a
# sample study (a sweep of a toy SCF calculation, some of whose tasks fail on
# purpose), run it with a progress bar, and print its status.
# Usage: scripts/demo.sh [DEST]   (default: ./demo)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
dest="${1:-demo}"
mkdir -p "$dest"
root=$(.venv/bin/python examples/scf_sweep.py "$dest")
echo "== built the sample study in $root"
.venv/bin/autojob list "$root"
echo "== running it on this machine's cores"
# some tasks fail on purpose, so submit --wait exits 1: carry on to the status
.venv/bin/autojob submit "$root" --wait || true
echo "== status"
.venv/bin/autojob status "$root"
echo "== results of the tasks that converged (outputs.json)"
cat "$root"/scf-sweep/*/*/outputs.json; echo
