#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, virtualenv, lint,
# types, tests. Usage: scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

# ShellCheck checks the generated task scripts (Debian package)
if ! command -v shellcheck >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing shellcheck"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
    else
        echo "note: shellcheck is not installed; its test will be skipped outside CI" >&2
    fi
fi

# the single-node SLURM cluster the slurm-marked tests run on (Debian packages and
# daemons, so only as root, as in CI; elsewhere those tests are skipped).
# AUTOJOB_SLURM=0 leaves it out.
if [ "${AUTOJOB_SLURM:-1}" != 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== slurm cluster"
    scripts/slurm-up.sh
    # stop the daemons again when the suite ends (AUTOJOB_SLURM_KEEP=1 keeps them)
    if [ "${AUTOJOB_SLURM_KEEP:-0}" != 1 ]; then
        trap 'echo "== stopping the slurm cluster"; scripts/slurm-down.sh' EXIT
    fi
fi

scripts/bootstrap.sh test,cwl
echo "== ruff"
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
