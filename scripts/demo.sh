#!/usr/bin/env bash
# The main job on the embedded default executor (this machine's cores): build a
# sample study (a sweep of a toy SCF calculation, some of whose tasks fail on
# purpose), run it with a progress bar, print its status and harvest its results.
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
echo "== harvest: every task's metadata, inputs, state and outputs in one archive"
.venv/bin/autojob harvest "$root" --output "$dest/archive.json"
.venv/bin/autojob harvest "$root" --output "$dest/archive.csv" --state success
echo "== the converged tasks ($dest/archive.csv)"
.venv/bin/python - "$dest/archive.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
print(f"{'label':<24} {'mixing':>7} {'cutoff':>7} {'steps':>6}")
for row in rows:
    print(f"{row['metadata.label']:<24} {row['outputs.mixing']:>7} "
          f"{row['outputs.cutoff']:>7} {row['outputs.steps']:>6}")
PY
