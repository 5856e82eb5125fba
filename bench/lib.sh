# Shared by the bench scripts: build once, start servers pinned to core 0,
# run load pinned to core 1, stop exactly the processes started here.
#
# Environment:
#   NO_BUILD=1         skip the cargo builds (binaries must exist)
#   PUSHWIRE_BIN=PATH  the pushwire binary (default: ../target/release/pushwire)
#   SERVER_CPU=0 LOAD_CPU=1   the cores servers and load generators run on

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
BIN="$BENCH_DIR/target/release"
PUSHWIRE_BIN="${PUSHWIRE_BIN:-$REPO_DIR/target/release/pushwire}"
# The binary under test is copied here, so that a rebuild in the working
# tree during a run cannot change what is measured.
PUSHWIRE_SNAPSHOT="$BENCH_DIR/target/pushwire-under-test"
SERVER_CPU="${SERVER_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"

PORT_PUSHWIRE=18080
PORT_HYPER=18081
PORT_TUNGSTENITE=18082
PORT_FASTWS=18083
PORT_NCHAN=18090

STARTED_PIDS=()
NCHAN_PREFIX=""

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "$NCHAN_PREFIX" ]]; then rm -rf "$NCHAN_PREFIX"; fi
}
trap cleanup EXIT

build() {
    # The binary under test is copied either way, so a run measures the
    # binary it was given, never a snapshot left by an earlier run.
    if [[ "${NO_BUILD:-}" == 1 ]]; then snapshot_pushwire; return; fi
    echo "# building bench (release)" >&2
    (cd "$BENCH_DIR" && cargo build --release -q -p peers -p loadgen)
    if [[ "$PUSHWIRE_BIN" == "$REPO_DIR/target/release/pushwire" ]]; then
        echo "# building pushwire (release)" >&2
        (cd "$REPO_DIR" && env -u CARGO_TARGET_DIR cargo build --release -q --bin pushwire)
    fi
    snapshot_pushwire
}

snapshot_pushwire() {
    mkdir -p "$(dirname "$PUSHWIRE_SNAPSHOT")"
    cp "$PUSHWIRE_BIN" "$PUSHWIRE_SNAPSHOT.tmp" && mv "$PUSHWIRE_SNAPSHOT.tmp" "$PUSHWIRE_SNAPSHOT"
    (cd "$REPO_DIR" && git rev-parse --short HEAD 2>/dev/null || echo '?') >"$PUSHWIRE_SNAPSHOT.rev"
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
    local i
    if [[ -n "${SERVER_MAIN_PID:-}" ]] && ! kill -0 "$SERVER_MAIN_PID" 2>/dev/null; then
        echo "the server exited at start" >&2
        return 1
    fi
    for i in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# start_server NAME: starts it pinned to SERVER_CPU; sets SERVER_PID (the
# process whose memory counts) and SERVER_PORT.
start_server() {
    local name="$1" pid port peer=""
    [[ -x "$PUSHWIRE_SNAPSHOT" ]] || snapshot_pushwire
    case "$name" in
        pushwire) port=$PORT_PUSHWIRE ;;
        hyper) port=$PORT_HYPER; peer=hyper-plain ;;
        tungstenite) port=$PORT_TUNGSTENITE; peer=ws-echo-tungstenite ;;
        fastwebsockets) port=$PORT_FASTWS; peer=ws-echo-fastws ;;
        nchan) port=$PORT_NCHAN ;;
        *) echo "unknown server $name" >&2; return 1 ;;
    esac
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is taken before $name started: refusing to measure another process" >&2
        return 1
    fi
    SERVER_PORT=$port
    case "$name" in
        pushwire)
            taskset -c "$SERVER_CPU" "$PUSHWIRE_SNAPSHOT" --listen "127.0.0.1:$SERVER_PORT" >/dev/null 2>/tmp/bench-pushwire.$$.log &
            pid=$! ;;
        nchan)
            NCHAN_PREFIX="$(mktemp -d /tmp/bench-nchan.XXXXXX)"
            mkdir -p "$NCHAN_PREFIX/tmp" "$NCHAN_PREFIX/logs"
            sed "s/127.0.0.1:8090/127.0.0.1:$SERVER_PORT/" "$BENCH_DIR/nchan/nginx.conf" >"$NCHAN_PREFIX/nginx.conf"
            # The master runs in the foreground of this background job; its
            # one worker inherits the CPU pinning.
            taskset -c "$SERVER_CPU" nginx -p "$NCHAN_PREFIX" -e stderr -c "$NCHAN_PREFIX/nginx.conf" 2>"$NCHAN_PREFIX/logs/stderr.log" &
            pid=$! ;;
        *)
            taskset -c "$SERVER_CPU" "$BIN/$peer" --listen "127.0.0.1:$SERVER_PORT" 2>/dev/null &
            pid=$! ;;
    esac

    STARTED_PIDS+=("$pid")
    SERVER_MAIN_PID=$pid
    wait_port "$SERVER_PORT"
    SERVER_PID=$pid
    cap_server_cpu
    if [[ "$name" == nchan ]]; then
        local i
        for i in $(seq 50); do
            SERVER_PID="$(pgrep -P "$pid" | head -1 || true)"
            [[ -n "$SERVER_PID" ]] && break
            sleep 0.1
        done
    fi
}

# SERVER_CPU_QUOTA=P (percent of one core): the server runs under a CPU
# quota (cgroup v1 cpu controller). Where the load generator needs the same
# work per message as the server (a closed-loop echo of tiny frames: one
# recv and one send each), both saturate their core together and every
# efficient server ties with the generator; capping the server makes it,
# not the generator, the bottleneck, for every server alike.
cap_server_cpu() {
    [[ -n "${SERVER_CPU_QUOTA:-}" ]] || return 0
    local cg=/sys/fs/cgroup/cpu/pushwire-bench p
    if [[ ! -d /sys/fs/cgroup/cpu ]]; then
        echo "SERVER_CPU_QUOTA needs the cgroup v1 cpu controller at /sys/fs/cgroup/cpu" >&2
        return 1
    fi
    mkdir -p "$cg"
    echo 100000 >"$cg/cpu.cfs_period_us"
    echo $((SERVER_CPU_QUOTA * 1000)) >"$cg/cpu.cfs_quota_us"
    for p in "$SERVER_MAIN_PID" $(pgrep -P "$SERVER_MAIN_PID" || true); do
        echo "$p" >"$cg/cgroup.procs"
    done
}

stop_server() {
    local i
    kill "$SERVER_MAIN_PID" 2>/dev/null || true
    for i in $(seq 100); do
        kill -0 "$SERVER_MAIN_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_MAIN_PID" 2>/dev/null; then
        echo "# server $SERVER_MAIN_PID still running 10 s after SIGTERM: SIGKILL" >&2
        kill -KILL "$SERVER_MAIN_PID" 2>/dev/null || true
    fi
    wait "$SERVER_MAIN_PID" 2>/dev/null || true
    if [[ -n "$NCHAN_PREFIX" ]]; then rm -rf "$NCHAN_PREFIX"; NCHAN_PREFIX=""; fi
    sleep 0.5
}

# cpu_ticks PID: user + system time of a process, in clock ticks. A
# server's CPU time, unlike wall-clock rates, does not count time the
# machine gave to someone else (steal on a shared VM).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICKS="$(getconf CLK_TCK)"

# per_cpu COUNT T0 T1: COUNT per second of CPU between two tick readings.
per_cpu() {
    awk -v n="$1" -v a="$2" -v b="$3" -v hz="$TICKS" 'BEGIN { if (b - a <= 0) print "-"; else printf "%.0f", n / ((b - a) / hz) }'
}

# load CMD...: a load generator pinned to LOAD_CPU.
load() {
    taskset -c "$LOAD_CPU" "$@"
}

# topic_urls SERVER PUSHWIRE_PATH NCHAN_PATH: sets SUB_URL, the subscribe
# URL (the path for SERVER, pushwire or nchan), and PUB_URL, its publish URL;
# both templates with {t} for the topic.
topic_urls() {
    if [[ $1 == pushwire ]]; then
        SUB_URL="http://127.0.0.1:$PORT_PUSHWIRE$2"; PUB_URL="http://127.0.0.1:$PORT_PUSHWIRE/topics/{t}"
    else
        SUB_URL="http://127.0.0.1:$PORT_NCHAN$3"; PUB_URL="http://127.0.0.1:$PORT_NCHAN/pub/{t}"
    fi
}

# run_load LABEL GENERATOR ARG...: runs a load generator from $BIN pinned to
# LOAD_CPU, prints "LABEL: <its result line>" (after what it said, if it
# failed) and keeps the result line in RESULT.
run_load() {
    local label="$1" gen="$2" out
    shift 2
    out="$(load "$BIN/$gen" "$@" 2>&1)" || echo "FAILED ($label): $(grep -v "^$gen" <<<"$out" | head -5)"
    RESULT="$(grep "^$gen" <<<"$out" | tail -1)"
    echo "$label: $RESULT"
}

# keep PREFIX KEY...: R[PREFIX.KEY] = the value of KEY in RESULT, for each
# KEY (R is the calling script's associative array).
keep() {
    local prefix="$1" k
    shift
    for k in "$@"; do
        R[$prefix.$k]="$(kv "$k" "$RESULT")"
    done
}

# kv KEY LINE: the value of KEY=value in a generator's result line.
kv() {
    sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2" | head -1
}

# ratio A B: A/B with two decimals.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

versions() {
    echo "# $(date -u +%Y-%m-%dT%H:%MZ)  $(uname -r)  $(nproc) cores  load average: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "# pushwire $(cat "$PUSHWIRE_SNAPSHOT.rev" 2>/dev/null || echo '?') (working tree at build time)"
    echo "# peers: $(cd "$BENCH_DIR" && cargo tree -p peers --depth 1 -e normal --prefix none 2>/dev/null | grep -E '^(hyper|tokio|tokio-tungstenite|fastwebsockets) ' | tr '\n' ' ')"
}

# busy_pct: share of the whole machine (all cores) busy over one second.
busy_pct() {
    local a b
    a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
    awk -v u1="${a[1]}" -v n1="${a[2]}" -v s1="${a[3]}" -v i1="${a[4]}" -v w1="${a[5]}" -v q1="${a[6]}" -v sq1="${a[7]}" \
        -v u2="${b[1]}" -v n2="${b[2]}" -v s2="${b[3]}" -v i2="${b[4]}" -v w2="${b[5]}" -v q2="${b[6]}" -v sq2="${b[7]}" \
        'BEGIN { busy = (u2+n2+s2+q2+sq2) - (u1+n1+s1+q1+sq1); idle = (i2+w2) - (i1+w1);
                 printf "%.0f", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }'
}

# wait_quiet: the machine is shared; wait (20 s at most) until less than
# 15% of it is busy before a measured run, and say how busy it was.
wait_quiet() {
    local i b
    for i in $(seq 20); do
        b="$(busy_pct)"
        if (( b < 15 )); then return 0; fi
    done
    echo "# WARNING: machine ${b}% busy with other work during the next run" >&2
}

# median V...: the median of numbers (the lower middle one for an even count).
median() {
    printf "%s\n" "$@" | grep -E '^[0-9.]+$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}

# --- Receive Packet Steering on loopback (socketio.sh RX_ON_CLIENT_CORE=1) ---
# On loopback the sender's write runs the receiving socket's TCP input
# (and the wake-up of the client's epoll) in its own softirq, so a server
# is charged for its clients' receive path. Steering lo's receive
# processing to LOAD_CPU moves that work to the load generator's core, as
# clients on other machines would take it off the server's host. The
# setting is machine-wide: it is changed only under the bench lock and
# put back on every way out (rx_restore from the caller's EXIT trap).
BENCH_LOCK=/tmp/pushwire-bench.lock
RPS_FILE=/sys/class/net/lo/queues/rx-0/rps_cpus
RPS_SAVED=""
# A fan-out writes thousands of packets in one burst; steered, they wait
# in core 1's backlog, and past netdev_max_backlog (1,000) they are
# dropped and retransmitted, which clients on other machines, behind a
# NIC ring, would not see. The backlog is raised for the steered run.
BACKLOG_FILE=/proc/sys/net/core/netdev_max_backlog
BACKLOG_STEERED=65536
BACKLOG_SAVED=""

# bench_lock: holds BENCH_LOCK: the descriptor inherited from
# `flock /tmp/pushwire-bench.lock CMD` if there is one (flock -n on it
# succeeds because it is the same lock), else a fresh one, waiting for it.
bench_lock() {
    local fd
    for fd in /proc/$$/fd/*; do
        if [[ "$(readlink "$fd" 2>/dev/null)" == "$BENCH_LOCK" ]] && flock -n "${fd##*/}"; then
            return 0
        fi
    done
    exec {BENCH_LOCK_FD}>>"$BENCH_LOCK"
    if ! flock -n "$BENCH_LOCK_FD"; then
        echo "# waiting for $BENCH_LOCK" >&2
        flock "$BENCH_LOCK_FD"
    fi
}

# rx_steer: lo's receive processing to LOAD_CPU; the old mask is kept.
rx_steer() {
    local mask
    bench_lock
    mask="$(printf '%x' $((1 << LOAD_CPU)))"
    if [[ -z "$RPS_SAVED" ]]; then RPS_SAVED="$(cat "$RPS_FILE")"; fi
    if [[ -z "$BACKLOG_SAVED" ]]; then BACKLOG_SAVED="$(cat "$BACKLOG_FILE")"; fi
    echo "$BACKLOG_STEERED" >"$BACKLOG_FILE"
    echo "$mask" >"$RPS_FILE"
    if [[ "$(cat "$RPS_FILE")" != *"$mask" ]]; then
        echo "# could not set $RPS_FILE to $mask" >&2
        return 1
    fi
}

# rx_restore: puts back the mask and backlog rx_steer found (nothing if it changed none).
rx_restore() {
    if [[ -n "$RPS_SAVED" ]]; then
        echo "$RPS_SAVED" >"$RPS_FILE" || echo "# could not restore $RPS_FILE to $RPS_SAVED" >&2
        RPS_SAVED=""
    fi
    if [[ -n "$BACKLOG_SAVED" ]]; then
        echo "$BACKLOG_SAVED" >"$BACKLOG_FILE" || echo "# could not restore $BACKLOG_FILE to $BACKLOG_SAVED" >&2
        BACKLOG_SAVED=""
    fi
}

# net_rx_by_cpu: the NET_RX softirq counts of each CPU, space separated.
net_rx_by_cpu() {
    awk '$1 == "NET_RX:" { $1 = ""; print substr($0, 2) }' /proc/softirqs
}

# cpu_ticks_by_cpu: for each CPU, "busy:total" clock ticks since boot from
# /proc/stat (busy is everything but idle and iowait; softirq and steal
# count as busy). Two readings make busy_pct_by_cpu.
cpu_ticks_by_cpu() {
    awk '$1 ~ /^cpu[0-9]+$/ { t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%d:%d ", t - $5 - $6, t }' /proc/stat
}

# busy_pct_by_cpu "BEFORE" "AFTER": "cpu0=NN% cpu1=NN% …", how busy each CPU
# was between two cpu_ticks_by_cpu readings (whoever kept it busy: a core
# at ~100% is saturated, and latency measured on it is its queue's).
busy_pct_by_cpu() {
    local -a b=($1) a=($2)
    local i bb bt ab at
    for i in "${!a[@]}"; do
        IFS=: read -r bb bt <<<"${b[i]}"
        IFS=: read -r ab at <<<"${a[i]}"
        printf 'cpu%d=%d%% ' "$i" $(( (ab - bb) * 100 / ((at - bt) > 0 ? (at - bt) : 1) ))
    done
}

# backlog_drops_by_cpu: packets each CPU's backlog has dropped (softnet_stat).
backlog_drops_by_cpu() {
    while read -r _ d _; do printf '%d ' "0x$d"; done </proc/net/softnet_stat
}

# raise_priority: runs this script, and so every server and generator it
# starts, at NICE (default -10; NICE=0 leaves it as started), so that on
# the shared machine other work (builds) takes little of the two cores.
# With autogroup scheduling (Linux's default for sessions) a niceness
# counts only within the group, so the group's is set too; the group is
# the caller's session and outlives the script, so restore_priority
# (called from the script's EXIT trap) puts it back.
raise_priority() {
    NICE="${NICE:--10}"
    if [[ $NICE == 0 ]]; then return; fi
    if ! renice -n "$NICE" -p $$ >/dev/null 2>&1; then
        echo "# WARNING: could not renice to $NICE (needs root): other work competes for the cores" >&2
    fi
    if [[ -w /proc/$$/autogroup ]]; then
        AUTOGROUP_NICE="$(sed -n 's/.* nice //p' "/proc/$$/autogroup")"
        echo "$NICE" >"/proc/$$/autogroup" 2>/dev/null || true
    fi
}

restore_priority() {
    if [[ -n "${AUTOGROUP_NICE:-}" ]]; then
        echo "$AUTOGROUP_NICE" >"/proc/$$/autogroup" 2>/dev/null || true
    fi
}
