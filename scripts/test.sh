#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, virtualenv, lint,
# types, tests. Usage: scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck checks the generated task scripts (Debian package)
if ! command -v shellcheck >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing shellcheck"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
    else
        echo "note: shellcheck is not installed; its test will be skipped outside CI" >&2
    fi
fi

scripts/bootstrap.sh test
echo "== ruff"
.venv/bin/ruff check src tests benchmarks examples
.venv/bin/ruff format --check src tests benchmarks examples
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest "$@"
