#!/usr/bin/env bash
# Install (if missing) and start a real single-node SLURM cluster with accounting
# on this Debian machine, without systemd: munged, MariaDB, slurmdbd, slurmctld and
# slurmd run as background daemons whose pids are recorded in $state; the script
# writes all their configuration itself. Idempotent: when everything is up it
# returns at once; a daemon that died is restarted, and a daemon whose
# configuration this script changed is restarted too. Needs root.
# Stop the cluster with scripts/slurm-down.sh.
# Usage: scripts/slurm-up.sh
# Environment: AUTOJOB_SLURM_CLUSTER (cluster name, default autojob),
#   AUTOJOB_SLURM_TIMEOUT (seconds to wait for each daemon, default 60),
#   AUTOJOB_SLURM_TASK (how --mem is enforced: "cgroup" = TaskPlugin=task/cgroup on
#   the cgroup v1 memory controller, a job over its memory ends OUT_OF_MEMORY;
#   "none" = TaskPlugin=task/none with JobAcctGatherParams=OverMemoryKill, such a
#   job is killed and ends FAILED with ExitCode 0:9; default "auto": cgroup when
#   the cgroup v1 memory controller is mounted, else none).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cluster="${AUTOJOB_SLURM_CLUSTER:-autojob}"
timeout="${AUTOJOB_SLURM_TIMEOUT:-60}"
state="${AUTOJOB_SLURM_STATE:-/run/autojob-slurm}" # pid files
export AUTOJOB_SLURM_STATE="$state"                 # for slurm-down.sh
logs=/var/log/autojob-slurm
node=localhost # the node's name; slurmd is started with -N localhost
packages=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
db_socket=/run/mysqld/mysqld.sock
db_user=slurm
db_pass=autojob-slurm # MariaDB listens on its unix socket only
db_name=slurm_acct_db

t0=$(date +%s%N)
say() { echo "slurm-up: $*"; }
die() {
    echo "slurm-up: error: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

# one slurm-up at a time (test sessions may start it together)
install -d -m 0755 "$state" "$logs"
exec 9>"$state/lock"
flock -w 600 9 || die "another slurm-up.sh holds $state/lock"

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

# --- helpers ------------------------------------------------------------------

# the process name of each daemon, checked so that a reused pid is never taken for it
comm_of() {
    case "$1" in
        mariadb) echo mariadbd ;;
        *) echo "$1" ;;
    esac
}
# pid_of NAME PIDFILE: prints the pid in PIDFILE if that process is alive and is NAME
pid_of() {
    local file="$2" pid comm stat
    [ -r "$file" ] || return 1
    read -r pid <"$file" 2>/dev/null || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [ "$comm" = "$(comm_of "$1")" ] || return 1
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
        sleep 0.2
    done
}

# record NAME PIDFILE: wait for the daemon's own pid file, copy it into $state
record() {
    local name="$1" file="$2" pid
    poll "$name did not start" "$logs/$name.log" "$logs/$name.out" -- pid_of "$name" "$file"
    pid=$(pid_of "$name" "$file")
    if [ "$file" != "$state/$name.pid" ]; then
        echo "$pid" >"$state/$name.pid"
    fi
    say "started $name (pid $pid)"
}

# detach LOG COMMAND...: start COMMAND (a daemon) in the background, its pid in
# $detached, with stdin from /dev/null, output to LOG and no other inherited file
# descriptor (an inherited pipe would keep whoever reads this script's output
# waiting for as long as the daemon lives; the lock would block the next run)
detached=
detach() {
    local log="$1" fd
    shift
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd="${fd##*/}"
            if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
        done
        exec "$@"
    ) </dev/null >>"$log" 2>&1 &
    detached=$!
}

# daemon NAME COMMAND...: start a daemon that forks into the background itself
daemon() {
    local name="$1"
    shift
    detach "$logs/$name.out" "$@"
    wait "$detached" || {
        show_logs "$logs/$name.log" "$logs/$name.out"
        die "$name failed to start"
    }
}

# write_file PATH MODE OWNER < CONTENT: replace PATH if its content differs;
# true when it did
write_file() {
    local path="$1" tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    chmod "$2" "$tmp"
    chown "$3" "$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path" &&
        [ "$(stat -c %a:%U:%G "$path")" = "$(stat -c %a:%U:%G "$tmp")" ]; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$path"
    return 0
}

# --- configuration ------------------------------------------------------------

# munge: key and directories as munged demands (owned by munge, not group/world open)
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    (umask 077 && dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none)
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# slurm: daemons run as root (SlurmUser=root), state and spool dirs owned by root
install -d -m 0755 /etc/slurm /var/spool/slurmctld /var/spool/slurmd

task="${AUTOJOB_SLURM_TASK:-auto}"
if [ "$task" = auto ]; then
    task=none
    # slurm 22.05's cgroup/v2 needs systemd (dbus); its cgroup/v1 does not
    if awk '$2 == "/sys/fs/cgroup/memory" && $3 == "cgroup" { found = 1 } END { exit !found }' \
        /proc/mounts; then
        task=cgroup
    fi
fi
case "$task" in
    cgroup)
        task_conf="TaskPlugin=task/cgroup"
        over_memory="" # task/cgroup refuses to run alongside OverMemoryKill
        ;;
    none)
        task_conf="TaskPlugin=task/none"
        over_memory="JobAcctGatherParams=OverMemoryKill"
        ;;
    *) die "AUTOJOB_SLURM_TASK must be auto, cgroup or none (not '$task')" ;;
esac
swap=no
[ ! -e /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes ] || swap=yes

cpus=$(nproc)
mem_total=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
real_mem=$((mem_total * 9 / 10))       # slurmd drains a node that claims more than it has
def_mem=$((real_mem / cpus))
[ "$def_mem" -le 2048 ] || def_mem=2048 # per CPU, for jobs that ask for no --mem

slurm_conf_changed=0
if write_file /etc/slurm/slurm.conf 0644 root:root <<EOF; then
# Written by autojob's scripts/slurm-up.sh: a single-node test cluster.
ClusterName=$cluster
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ReturnToService=2
SlurmdParameters=config_overrides

# processes tracked through their parents; with task/cgroup (see cgroup.conf) a
# job's memory is limited to its --mem and exceeding it ends OUT_OF_MEMORY
ProctrackType=proctrack/linuxproc
$task_conf
SchedulerType=sched/backfill
# schedule each submission at once (the default batches them every 3 s)
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem
EnforcePartLimits=ALL
MaxArraySize=1001

# time limits end jobs promptly: no grace, SIGKILL 2 s after SIGTERM
# (slurmctld checks time limits about every 30 s, so --time=1 ends within 60-90 s)
OverTimeLimit=0
KillWait=2
InactiveLimit=0
Waittime=0

# accounting: sacct through slurmdbd, memory (MaxRSS) sampled every second;
# with task/none, OverMemoryKill kills a job step that uses more than its --mem
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
$over_memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none

NodeName=$node CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=ALL MaxTime=00:10:00 State=UP
EOF
    slurm_conf_changed=1
fi

if write_file /etc/slurm/cgroup.conf 0644 root:root <<EOF; then
# Written by autojob's scripts/slurm-up.sh; used with TaskPlugin=task/cgroup.
CgroupPlugin=cgroup/v1
CgroupAutomount=no
ConstrainCores=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=$swap
AllowedSwapSpace=0
EOF
    slurm_conf_changed=1
fi

slurmdbd_conf_changed=0
if write_file /etc/slurm/slurmdbd.conf 0600 root:root <<EOF; then
# Written by autojob's scripts/slurm-up.sh.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$state/slurmdbd.pid
LogFile=$logs/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$db_user
StoragePass=$db_pass
StorageLoc=$db_name
EOF
    slurmdbd_conf_changed=1
fi

# --- daemons ------------------------------------------------------------------

# munged
if ! alive munged; then
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        die "a munged that slurm-up did not start is running; stop it first"
    fi
    rm -f "$state/munged.pid"
    daemon munged runuser -u munge -- /usr/sbin/munged
    record munged /run/munge/munged.pid
fi
poll "munge" /var/log/munge/munged.log "$logs/munged.out" -- \
    bash -c 'munge -n </dev/null | unmunge'

# MariaDB, on its unix socket only, with its own options (not the package's my.cnf)
if ! alive mariadb; then
    if mariadb-admin --socket="$db_socket" ping >/dev/null 2>&1; then
        die "a MariaDB server that slurm-up did not start is running on $db_socket; stop it first"
    fi
    rm -f "$state/mariadb.pid"
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    install -d -o mysql -g mysql -m 0750 /var/lib/mysql
    if [ ! -d /var/lib/mysql/mysql ]; then
        say "initialising the MariaDB data directory"
        mariadb-install-db --no-defaults --user=mysql --datadir=/var/lib/mysql \
            --skip-test-db --auth-root-authentication-method=socket \
            >>"$logs/mariadb-install.log" 2>&1 ||
            { show_logs "$logs/mariadb-install.log"; die "mariadb-install-db failed"; }
    fi
    touch "$logs/mariadb.log"
    chown mysql:mysql "$logs/mariadb.log"
    rm -f /run/mysqld/mysqld.pid
    detach "$logs/mariadb.out" setsid /usr/sbin/mariadbd --no-defaults --user=mysql \
        --datadir=/var/lib/mysql \
        --socket="$db_socket" --pid-file=/run/mysqld/mysqld.pid --skip-networking \
        --log-error="$logs/mariadb.log" --innodb-lock-wait-timeout=900
    record mariadb /run/mysqld/mysqld.pid
fi
poll "MariaDB" "$logs/mariadb.log" "$logs/mariadb.out" -- \
    mariadb-admin --socket="$db_socket" ping
mariadb --socket="$db_socket" <<EOF
CREATE DATABASE IF NOT EXISTS $db_name;
CREATE USER IF NOT EXISTS '$db_user'@'localhost' IDENTIFIED BY '$db_pass';
ALTER USER '$db_user'@'localhost' IDENTIFIED BY '$db_pass';
GRANT ALL PRIVILEGES ON $db_name.* TO '$db_user'@'localhost';
EOF

# restart_if_changed NAME FLAG: stop a running daemon whose configuration changed
restart_if_changed() {
    if [ "$2" = 1 ] && alive "$1"; then
        say "configuration changed: restarting $1"
        "$here/slurm-down.sh" "$1"
    fi
}

# slurmdbd (creates its tables on the first start)
restart_if_changed slurmdbd "$slurmdbd_conf_changed"
if ! alive slurmdbd; then
    rm -f "$state/slurmdbd.pid"
    daemon slurmdbd /usr/sbin/slurmdbd
    record slurmdbd "$state/slurmdbd.pid"
fi
poll "slurmdbd" "$logs/slurmdbd.log" "$logs/slurmdbd.out" -- \
    sacctmgr -n -P list cluster format=Cluster

# the cluster in the accounting database (root's association comes with it)
cluster_added=0
if ! sacctmgr -n -P list cluster format=Cluster | grep -qx "$cluster"; then
    sacctmgr -i add cluster "$cluster" >/dev/null || die "sacctmgr add cluster $cluster failed"
    say "registered cluster $cluster in slurmdbd"
    cluster_added=1
fi

# slurmctld, then slurmd
[ "$cluster_added" = 0 ] || slurm_conf_changed=1 # slurmctld must register anew
restart_if_changed slurmd "$slurm_conf_changed"
restart_if_changed slurmctld "$slurm_conf_changed"
if ! alive slurmctld; then
    rm -f "$state/slurmctld.pid"
    daemon slurmctld /usr/sbin/slurmctld
    record slurmctld "$state/slurmctld.pid"
fi
poll "slurmctld" "$logs/slurmctld.log" "$logs/slurmctld.out" -- \
    bash -c 'scontrol ping | grep -q "is UP"'
if ! alive slurmd; then
    rm -f "$state/slurmd.pid"
    daemon slurmd /usr/sbin/slurmd -N "$node"
    record slurmd "$state/slurmd.pid"
fi

# --- ready? -------------------------------------------------------------------

# the node answers (idle, or busy with jobs); a drained or down node is resumed once
node_ready() {
    local s
    s=$(sinfo -h -N -n "$node" -o %T 2>/dev/null) || return 1
    s="${s%%$'\n'*}" # one line per partition
    case "$s" in
        idle | mixed | allocated | completing) return 0 ;;
        drain* | down) # not "down*": that is a node whose slurmd has not answered yet
            if [ ! -e "$state/resumed" ]; then
                touch "$state/resumed"
                echo "slurm-up: node $node is $s ($(sinfo -h -N -n "$node" -o %E)); resuming it" >&3
                scontrol update NodeName="$node" State=RESUME >&3 2>&3 || true
            fi
            return 1
            ;;
    esac
    return 1
}
rm -f "$state/resumed"
poll "node $node" "$logs/slurmd.log" "$logs/slurmd.out" "$logs/slurmctld.log" -- node_ready 3>&2
rm -f "$state/resumed"
poll "sacct" "$logs/slurmdbd.log" "$logs/slurmctld.log" -- \
    sacct -n -X -S now-1hours -o JobID

ms=$((($(date +%s%N) - t0) / 1000000))
info=$(sinfo -h -N -n "$node" -o '%T, %c CPUs, %m MB')
say "cluster $cluster up in $((ms / 1000)).$(printf %03d $((ms % 1000))) s: $(sinfo --version)," \
    "node $node ${info%%$'\n'*}, partitions $(sinfo -h -o %P | paste -sd ' ' -)"
