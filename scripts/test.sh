#!/usr/bin/env bash
# The whole test suite on a fresh machine: system packages, virtualenv, lint,
# types, tests. Usage: scripts/test.sh [PYTEST ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages some tests use: ShellCheck checks the generated task scripts,
# Chromium (driven through chromium-driver) opens the HTML report, tmux is the
# terminal the live view of status --watch is driven in, zsh and fish source the
# completion scripts of autojob completion, Graphviz's dot draws the workflow
# graph of autojob workflow show --format dot (an example of its help)
missing=()
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing ${missing[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "note: ${missing[*]} not installed; their tests will be skipped outside CI" >&2
    fi
fi

# the clusters the slurm- and sge-marked tests run on (Debian packages and daemons,
# so only as root, as in CI; elsewhere those tests are skipped). AUTOJOB_SLURM=0 /
# AUTOJOB_SGE=0 leave one out; AUTOJOB_SLURM_KEEP=1 / AUTOJOB_SGE_KEEP=1 keep its
# daemons running when the suite ends.
stops=()
stop_clusters() {
    local s
    for s in "${stops[@]}"; do
        echo "== stopping the $s cluster"
        "scripts/$s-down.sh" || true
    done
}
trap stop_clusters EXIT
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    if [ "${AUTOJOB_SLURM:-1}" != 0 ]; then
        echo "== slurm cluster"
        [ "${AUTOJOB_SLURM_KEEP:-0}" = 1 ] || stops+=(slurm)
        scripts/slurm-up.sh
    fi
    if [ "${AUTOJOB_SGE:-1}" != 0 ]; then
        echo "== grid engine cluster"
        [ "${AUTOJOB_SGE_KEEP:-0}" = 1 ] || stops+=(sge)
        scripts/sge-up.sh
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
