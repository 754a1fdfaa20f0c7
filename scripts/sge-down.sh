#!/usr/bin/env bash
# Stop the single-host Grid Engine cluster that scripts/sge-up.sh started: only
# the processes whose pids it recorded in its state directory and the jobs their
# execd runs, nothing else. Jobs go first, by process group (killing a job's
# shepherd alone would orphan the job), then their shepherds, sge_execd and
# sge_qmaster.
# Usage: scripts/sge-down.sh [DAEMON...]   (default: both, sge_execd first;
# sge_qmaster alone leaves the jobs running under sge_execd, which reports them
# once sge_qmaster is back)
set -euo pipefail

state="${AUTOJOB_SGE_STATE:-/run/autojob-sge}"

# true while process $1 exists and is not a zombie
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

# prints the recorded pid of daemon $1 if that process is still the daemon
recorded_pid() {
    local file="$state/$1.pid" pid comm
    [ -r "$file" ] || return 1
    read -r pid <"$file" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$1" ] || return 1
    running "$pid" || return 1
    echo "$pid"
}

# children PID [COMM]: the pids of the children of PID (named COMM if given)
children() {
    local pid
    # shellcheck disable=SC2013 # the file is one line of pids
    for pid in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        if [ -z "${2:-}" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]; then
            echo "$pid"
        fi
    done
}

# wait_gone PID...: up to 5 s for the processes to end
wait_gone() {
    local i pid left
    for ((i = 0; i < 50; i++)); do
        left=0
        for pid in "$@"; do
            if running "$pid"; then left=1; fi
        done
        [ "$left" = 1 ] || return 0
        sleep 0.1
    done
    return 1
}

# the jobs of execd: each shepherd's child leads the job's process group
stop_jobs() {
    local execd="$1" shepherd job pgid shepherds=() groups=()
    mapfile -t shepherds < <(children "$execd" sge_shepherd)
    [ "${#shepherds[@]}" -gt 0 ] || return 0
    echo "sge-down: stopping ${#shepherds[@]} running job(s)"
    for shepherd in "${shepherds[@]}"; do
        for job in $(children "$shepherd"); do
            pgid=$(ps -o pgid= -p "$job" 2>/dev/null | tr -d ' ') || continue
            [ -n "$pgid" ] && [ "$pgid" != 0 ] && groups+=("$pgid")
        done
    done
    for pgid in "${groups[@]}"; do kill -TERM -- "-$pgid" 2>/dev/null || true; done
    if [ "${#groups[@]}" -gt 0 ] && ! wait_gone "${groups[@]}"; then
        for pgid in "${groups[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null || true; done
    fi
    for shepherd in "${shepherds[@]}"; do kill -TERM "$shepherd" 2>/dev/null || true; done
    wait_gone "${shepherds[@]}" || kill -KILL "${shepherds[@]}" 2>/dev/null || true
}

stop() {
    local name="$1" pid i
    if ! pid=$(recorded_pid "$name"); then
        rm -f "$state/$name.pid"
        return 0
    fi
    [ "$name" != sge_execd ] || stop_jobs "$pid"
    echo "sge-down: stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do # up to 15 s, then SIGKILL
        running "$pid" || break
        sleep 0.1
    done
    if running "$pid"; then
        echo "sge-down: $name (pid $pid) ignored SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        wait_gone "$pid" || true
    fi
    rm -f "$state/$name.pid"
}

if [ "$#" -eq 0 ]; then
    set -- sge_execd sge_qmaster
fi
for name in "$@"; do
    case "$name" in
        sge_execd | sge_qmaster) ;;
        *)
            echo "sge-down: unknown daemon '$name' (known: sge_execd sge_qmaster)" >&2
            exit 2
            ;;
    esac
done
for name in "$@"; do
    stop "$name"
done
