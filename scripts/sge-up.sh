#!/usr/bin/env bash
# Install (if missing) and start a real single-host Grid Engine cluster (Son of
# Grid Engine, Debian's gridengine-* packages) on this machine, without systemd:
# sge_qmaster and sge_execd run as background daemons whose pids are recorded in
# $state; the script writes the cluster's configuration itself (global and
# scheduler configuration, the execution host, a parallel environment "smp" and
# the queue all.q with this machine's cores). Idempotent: when everything is up and
# configured it returns at once; a daemon that died is started again, and a
# configuration that differs from the one written here is applied again. Needs root.
# Stop the cluster with scripts/sge-down.sh.
# Usage: scripts/sge-up.sh
# Environment: AUTOJOB_SGE_TIMEOUT (seconds to wait for each daemon, default 60),
#   AUTOJOB_SGE_STATE (pid and state directory, default /run/autojob-sge).
set -euo pipefail

timeout="${AUTOJOB_SGE_TIMEOUT:-60}"
state="${AUTOJOB_SGE_STATE:-/run/autojob-sge}"
export AUTOJOB_SGE_STATE="$state" # for sge-down.sh
logs=/var/log/autojob-sge
packages=(gridengine-master gridengine-exec gridengine-client mailutils)
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
common="$SGE_ROOT/$SGE_CELL/common"
spool=/var/spool/gridengine
host=localhost # the name qmaster gives this host (see host_aliases below)
queue=all.q
pe=smp

t0=$(date +%s%N)
say() { echo "sge-up: $*"; }
die() {
    echo "sge-up: error: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

# one sge-up at a time (test sessions may start it together)
install -d -m 0755 "$state" "$logs"
exec 9>"$state/lock"
flock -w 600 9 || die "another sge-up.sh holds $state/lock"

# --- packages -----------------------------------------------------------------

missing=()
for p in "${packages[@]}"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
    export DEBIAN_FRONTEND=noninteractive
    # the packages' questions, answered: let them configure a cell "default"
    # whose master is this host
    for p in gridengine-common gridengine-client gridengine-master gridengine-exec; do
        debconf-set-selections <<EOF
$p shared/gridengineconfig boolean true
$p shared/gridenginecell string $SGE_CELL
$p shared/gridenginemaster string $host
EOF
    done
    apt_install() {
        # full output in apt.log; progress lines on the terminal
        apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
            -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
            "${missing[@]}" 2>&1 | tee -a "$logs/apt.log" |
            awk '/^(Fetched |Setting up |E: )/ { print "  " $0; fflush() }'
    }
    say "installing ${missing[*]}"
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        say "apt-get update (package lists lack them)"
        apt-get update -q 2>&1 | tail -n 1
    fi
    if ! apt_install; then
        say "install failed; apt-get update and retrying"
        apt-get update -q 2>&1 | tail -n 1
        apt_install || {
            tail -n 30 "$logs/apt.log" >&2
            die "apt-get install failed (full log: $logs/apt.log)"
        }
    fi
fi
[ -r "$common/bootstrap" ] || die "$common/bootstrap is missing: the gridengine packages" \
    "did not configure the cell; run 'dpkg-reconfigure gridengine-common' or reinstall them"

# --- helpers ------------------------------------------------------------------

# pid_of NAME PIDFILE: prints the pid in PIDFILE if that process is alive and is NAME
pid_of() {
    local file="$2" pid comm stat
    [ -r "$file" ] || return 1
    read -r pid <"$file" 2>/dev/null || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$1" ] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat="${stat##*) }"
    [ "${stat%% *}" != Z ] || return 1
    echo "$pid"
}
alive() { pid_of "$1" "$state/$1.pid" >/dev/null; }

show_logs() {
    local f
    for f in "$@"; do
        if [ -s "$f" ]; then
            echo "----- last lines of $f" >&2
            tail -n 40 "$f" >&2
        fi
    done
}

# poll DESCRIPTION LOG... -- COMMAND...: run COMMAND until it succeeds, or give up
# after $timeout seconds, showing the logs
poll() {
    local what="$1" deadline
    shift
    local files=()
    while [ "$1" != -- ]; do
        files+=("$1")
        shift
    done
    shift
    deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            show_logs "${files[@]}"
            die "$what: not ready after ${timeout}s"
        fi
        sleep 0.1
    done
}

# record NAME PIDFILE: wait for the daemon's own pid file, copy it into $state
record() {
    local name="$1" file="$2" pid
    poll "$name did not start" "$logs/$name.out" "${@:3}" -- pid_of "$name" "$file"
    pid=$(pid_of "$name" "$file")
    echo "$pid" >"$state/$name.pid"
    say "started $name (pid $pid)"
}

# daemon NAME COMMAND...: start a daemon that forks into the background itself,
# with stdin from /dev/null, output to its log and no other inherited file
# descriptor (an inherited pipe would keep whoever reads this script's output
# waiting for as long as the daemon lives; the lock would block the next run)
daemon() {
    local name="$1" fd pid
    shift
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd="${fd##*/}"
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        exec "$@"
    ) </dev/null >>"$logs/$name.out" 2>&1 &
    pid=$!
    wait "$pid" || {
        show_logs "$logs/$name.out"
        die "$name failed to start"
    }
}

# write_file PATH < CONTENT: replace PATH if its content differs; true when it did
write_file() {
    local path="$1" tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    chmod 0644 "$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$path"
    return 0
}

# q ARGS...: qconf, quiet on success; on failure its output and a stop
q() {
    local out
    out=$(qconf "$@" 2>&1) || die "qconf $* failed: $out"
}

# --- name resolution ----------------------------------------------------------

# Where this host's name resolves to 127.0.0.1, qmaster calls itself "localhost"
# and refuses clients that call it by its name: tell it they are one host.
if [ "$(hostname)" != "$host" ]; then
    if write_file "$common/host_aliases" <<<"$host $(hostname)" && alive sge_qmaster; then
        say "host_aliases changed: restarting the cluster"
        "$(dirname "$0")/sge-down.sh"
    fi
fi
echo "$host" >"$common/act_qmaster"

# --- daemons ------------------------------------------------------------------

qmaster_log=$spool/qmaster/messages
execd_log=$spool/execd/$host/messages

if ! alive sge_qmaster; then
    if qstat >/dev/null 2>&1; then
        die "a sge_qmaster that sge-up did not start is running; stop it first"
    fi
    rm -f "$state/sge_qmaster.pid" "$spool/qmaster/qmaster.pid"
    daemon sge_qmaster /usr/sbin/sge_qmaster
    record sge_qmaster "$spool/qmaster/qmaster.pid" "$qmaster_log"
fi
poll "sge_qmaster" "$qmaster_log" "$logs/sge_qmaster.out" -- qconf -sh

# --- configuration ------------------------------------------------------------

cpus=$(nproc)
conf="$state/conf"
install -d -m 0755 "$conf"

# the global configuration (qconf -Mconf wants a file named "global"): jobs of
# root allowed, scripts started by their #! line and not through a login shell,
# accounting flushed every second, load reported often
# joined continuation lines, single spaces: the form the comparisons below use
normal() { grep -v '^#' | awk '{ if (sub(/\\$/, "")) { buf = buf $0; next } print buf $0; buf = "" }' | tr -s ' \t' ' '; }
qconf -sconf global | normal | awk '
    $1 == "min_uid" || $1 == "min_gid" { print $1, "0"; next }
    $1 == "login_shells" { print $1, "none"; next }
    $1 == "shell_start_mode" { print $1, "unix_behavior"; next }
    $1 == "load_report_time" { print $1, "00:00:05"; next }
    $1 == "max_unheard" { print $1, "00:01:00"; next }
    $1 == "mailer" { print $1, "/bin/true"; next }
    $1 == "execd_params" { print $1, "ENABLE_ADDGRP_KILL=TRUE"; next }
    $1 == "reporting_params" { print $1, "accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00"; next }
    { print }
' >"$conf/global.new"
if ! qconf -sconf global | normal | cmp -s - "$conf/global.new"; then
    cp "$conf/global.new" "$conf/global"
    q -Mconf "$conf/global"
    say "global configuration written"
fi

# the scheduler: a pass every second, and one at each submission and job end
qconf -ssconf | normal | awk '
    $1 == "schedule_interval" { print $1, "0:0:1"; next }
    $1 == "flush_submit_sec" || $1 == "flush_finish_sec" { print $1, "1"; next }
    $1 == "job_load_adjustments" { print $1, "NONE"; next }
    $1 == "load_adjustment_decay_time" { print $1, "0:0:0"; next }
    { print }
' >"$conf/sched.new"
if ! qconf -ssconf | normal | cmp -s - "$conf/sched.new"; then
    q -Msconf "$conf/sched.new"
    say "scheduler configuration written"
fi

# apply KIND NAME FILE: add (qconf -A<kind>) or modify (-M<kind>) an object whose
# shown form (-s<kind> NAME) differs from FILE
apply() {
    local kind="$1" name="$2" file="$3"
    if qconf -s"$kind" "$name" >"$conf/$name.$kind.now" 2>/dev/null; then
        if ! diff -qw "$conf/$name.$kind.now" "$file" >/dev/null; then
            q -M"$kind" "$file"
            say "$name updated"
        fi
    else
        q -A"$kind" "$file"
        say "$name added"
    fi
}

# the execution host (also an administrative and submit host)
qconf -sh 2>/dev/null | grep -qx "$host" || q -ah "$host"
qconf -ss 2>/dev/null | grep -qx "$host" || q -as "$host"
cat >"$conf/$host.e" <<EOF
hostname              $host
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EOF
if ! qconf -sel 2>/dev/null | grep -qx "$host"; then
    q -Ae "$conf/$host.e"
    say "execution host $host added"
fi

# the parallel environment for tasks with several cores (all on this host)
cat >"$conf/$pe.p" <<EOF
pe_name            $pe
slots              $cpus
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     TRUE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary TRUE
qsort_args         NONE
EOF
apply p "$pe" "$conf/$pe.p"

# the queue: this machine's cores, no load alarm (a busy 2-core machine would put
# the default np_load_avg=1.75 queue in alarm), bash as the shell of scripts
# without a #! line
qconf -sq >"$conf/$queue.q"
sed -i \
    -e "s/^qname .*/qname                 $queue/" \
    -e "s/^hostlist .*/hostlist              $host/" \
    -e "s/^load_thresholds .*/load_thresholds       NONE/" \
    -e "s/^pe_list .*/pe_list               $pe/" \
    -e "s/^slots .*/slots                 $cpus/" \
    -e "s|^shell .*|shell                 /bin/bash|" \
    -e "s/^shell_start_mode .*/shell_start_mode      unix_behavior/" \
    -e "s/^qtype .*/qtype                 BATCH/" \
    "$conf/$queue.q"
apply q "$queue" "$conf/$queue.q"

if ! alive sge_execd; then
    install -d -o sgeadmin -g sgeadmin -m 0755 "$spool/execd"
    rm -f "$state/sge_execd.pid" "$spool/execd/$host/execd.pid"
    daemon sge_execd /usr/sbin/sge_execd
    record sge_execd "$spool/execd/$host/execd.pid" "$execd_log"
fi

# --- ready? -------------------------------------------------------------------

# the queue instance reports load and is neither unknown, in alarm nor in error
queue_ready() {
    local s
    s=$(qstat -f -q "$queue@$host" | awk -v q="$queue@$host" '$1 == q { print $6 }')
    [ -n "$(qstat -f -q "$queue@$host" | awk -v q="$queue@$host" '$1 == q')" ] || return 1
    case "$s" in
        *u* | *a* | *d* | *D*) return 1 ;;
        *E*)
            qmod -c "$queue@$host" >/dev/null 2>&1 || true # cleared once: error state
            return 1
            ;;
    esac
    return 0
}
poll "queue $queue@$host" "$execd_log" "$qmaster_log" "$logs/sge_execd.out" -- queue_ready

ms=$((($(date +%s%N) - t0) / 1000000))
say "cluster up in $((ms / 1000)).$(printf %03d $((ms % 1000))) s:" \
    "$(qstat -help | head -n 1), queue $queue@$host with $cpus slots, parallel environment $pe"
