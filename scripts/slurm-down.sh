#!/usr/bin/env bash
# Stop the single-node SLURM cluster that scripts/slurm-up.sh started: only the
# processes whose pids it recorded in its state directory, nothing else (job
# processes still running under a stopped slurmd are left alone).
# Usage: scripts/slurm-down.sh [DAEMON...]   (default: all, in the reverse order
# of starting: slurmd slurmctld slurmdbd mariadb munged)
set -euo pipefail

state="${AUTOJOB_SLURM_STATE:-/run/autojob-slurm}"
all=(slurmd slurmctld slurmdbd mariadb munged)

# the process name each recorded pid must have, so a reused pid is never signalled
comm_of() {
    case "$1" in
        mariadb) echo mariadbd ;;
        slurmd | slurmctld | slurmdbd | munged) echo "$1" ;;
        *) return 1 ;;
    esac
}

# prints the recorded pid of daemon $1 if that process is still the daemon
recorded_pid() {
    local file="$state/$1.pid" pid comm
    [ -r "$file" ] || return 1
    read -r pid <"$file" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$(comm_of "$1")" ] || return 1
    running "$pid" || return 1
    echo "$pid"
}

# true while process $1 exists and is not a zombie
running() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ]
}

stop() {
    local name="$1" pid i
    if ! pid=$(recorded_pid "$name"); then
        rm -f "$state/$name.pid"
        return 0
    fi
    echo "slurm-down: stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do # up to 15 s, then SIGKILL
        running "$pid" || break
        sleep 0.1
    done
    if running "$pid"; then
        echo "slurm-down: $name (pid $pid) ignored SIGTERM; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            running "$pid" || break
            sleep 0.1
        done
    fi
    rm -f "$state/$name.pid"
}

if [ "$#" -eq 0 ]; then
    set -- "${all[@]}"
fi
for name in "$@"; do
    comm_of "$name" >/dev/null || {
        echo "slurm-down: unknown daemon '$name' (known: ${all[*]})" >&2
        exit 2
    }
done
for name in "$@"; do
    stop "$name"
done
