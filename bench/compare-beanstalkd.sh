#!/usr/bin/env bash
# Job throughput of naq next to beanstalkd and next to naq's own ceiling (plain
# nats.c), in one run on this machine (issue 8; docs/benchmarks.md is the
# method). Starts a private beanstalkd (binlog in a temp dir) and a private
# nats-server (temp store), each on a free loopback port, then alternates, RUNS
# times:
#   beanstalkd (bench/beanstalk_jobs: put waits for INSERTED, reserve / delete)
#   naq bench jobs --mode sync  --events off|on   (naq, then its ceiling)
#   naq bench jobs --mode async --events off|on
# and prints a table of each side's median and the ratios.
#
#   bench/compare-beanstalkd.sh [--count N] [--workers W] [--runs R]
#                               [--fsync-ms MS] [--prefetch auto|P]
#   defaults: 5000 jobs, 2 workers, 3 runs, beanstalkd -f 120000 (see below),
#   prefetch auto
#
# The whole script holds /tmp/naq-bench.lock: no other benchmark runs meanwhile.
# Exit codes: 0 ok, 1 failure, 2 bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${NAQ_BENCH_LOCKED:-}" ]]; then
    exec env NAQ_BENCH_LOCKED=1 flock /tmp/naq-bench.lock "$0" "$@"
fi

count=5000
workers=2
runs=3
# beanstalkd fsyncs its binlog at most once per this many ms. 120000 matches
# nats-server 2.9's file store, which syncs its blocks every 2 minutes; both
# write every job to the OS before they confirm it (docs/benchmarks.md).
fsync_ms=120000
# Jobs each naq worker fetches beyond its free slot (auto: naq worker's
# default; the ceiling then fetches 64 ahead); beanstalkd's reserve has no
# such thing.
prefetch=auto
usage() {
    echo "usage: bench/compare-beanstalkd.sh [--count N] [--workers W] [--runs R] [--fsync-ms MS] [--prefetch auto|P]" >&2
    exit 2
}
while (($#)); do
    case "$1" in
    --count) count=${2:?}; shift 2 ;;
    --workers) workers=${2:?}; shift 2 ;;
    --runs) runs=${2:?}; shift 2 ;;
    --fsync-ms) fsync_ms=${2:?}; shift 2 ;;
    --prefetch) prefetch=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) usage ;;
    esac
done
[[ "$count$workers$runs$fsync_ms" =~ ^[0-9]+$ && "$prefetch" =~ ^(auto|[0-9]+)$ ]] || usage

scripts/install-deps.sh >&2
if ! command -v beanstalkd >/dev/null 2>&1; then
    echo "compare: installing Debian's beanstalkd" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends beanstalkd >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends beanstalkd; } >&2
fi
echo "compare: building naq and beanstalk_jobs" >&2
cmake -S . -B build >/dev/null
cmake --build build -j2 --target naq_cli beanstalk_jobs >/dev/null
naq="$PWD/build/naq"
bsj="$PWD/build/beanstalk_jobs"

free_port() {
    for _ in $(seq 1 50); do
        local p=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    echo "compare: no free port found" >&2
    exit 1
}

work=$(mktemp -d /tmp/naq-compare-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "compare: nothing listens on port $1 ($2 did not start; see $work/$2.log)" >&2
    cat "$work/$2.log" >&2 || true
    exit 1
}

bport=$(free_port)
mkdir -p "$work/binlog"
beanstalkd -l 127.0.0.1 -p "$bport" -b "$work/binlog" -f "$fsync_ms" >"$work/beanstalkd.log" 2>&1 &
bpid=$!
pids+=($bpid)
wait_port "$bport" beanstalkd

nport=$(free_port)
nats-server -js -a 127.0.0.1 -p "$nport" -sd "$work/nats" >"$work/nats-server.log" 2>&1 &
npid=$!
pids+=($npid)
wait_port "$nport" nats-server
export NAQ_URL="nats://127.0.0.1:$nport"
export NAQ_SPOOL_DIR="$work/spool"

echo "compare: $count jobs, $workers workers, $runs runs; beanstalkd 127.0.0.1:$bport" \
    "(binlog, fsync at most every $fsync_ms ms), nats-server $NAQ_URL" >&2

results="$work/results"
: >"$results"
# record LABEL FILE: keeps the figures of one side from name=value lines.
record() {
    local label=$1 file=$2 prefix=${3:-}
    for m in jobs_per_s cpu_ms_per_job server_cpu_ms_per_job latency_p50_ms latency_p99_ms; do
        local v
        v=$(sed -n "s/^${prefix}${m}=//p" "$file")
        [[ -n "$v" ]] || { echo "compare: no ${prefix}${m} from $label" >&2; cat "$file" >&2; exit 1; }
        echo "$label $m $v" >>"$results"
    done
}

for run in $(seq 1 "$runs"); do
    echo "compare: run $run/$runs: beanstalkd" >&2
    "$bsj" --addr "127.0.0.1:$bport" --count "$count" --workers "$workers" \
        --server-pid "$bpid" >"$work/out" ||
        { echo "compare: beanstalk_jobs failed" >&2; exit 1; }
    record beanstalkd "$work/out"
    for mode in sync async; do
        for events in off on; do
            echo "compare: run $run/$runs: naq bench jobs --mode $mode --events $events" >&2
            "$naq" bench jobs --count "$count" --workers "$workers" --mode "$mode" \
                --events "$events" --prefetch "$prefetch" --server-pid "$npid" >"$work/out" ||
                { echo "compare: naq bench jobs failed" >&2; exit 1; }
            record "naq-$mode-events-$events" "$work/out"
            record "ceiling-$mode-events-$events" "$work/out" ceiling_
            k=$(sed -n 's/^events_per_job=//p' "$work/out")
            echo "ceiling-$mode-events-$events k $k" >>"$results"
        done
    done
done

median() { # LABEL METRIC
    awk -v l="$1" -v m="$2" '$1 == l && $2 == m { print $3 }' "$results" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bs=$(median beanstalkd jobs_per_s)
echo
echo "job throughput: $count no-op jobs of ~100 B, $workers worker processes x 1 (naq and ceiling prefetch $prefetch), one producer;"
echo "median of $runs runs; cpu = producer + workers, srv_cpu = the server, both ms per job;"
echo "latency = enqueue call -> handler entry (mostly queue wait when the producer outruns the workers)"
echo
printf '%-26s %8s %8s %8s %9s %9s %9s %10s\n' side jobs/s cpu srv_cpu p50_ms p99_ms vs_beanst vs_ceiling
row() { # LABEL [CEILING_LABEL]
    local j c sc p50 p99
    j=$(median "$1" jobs_per_s)
    c=$(median "$1" cpu_ms_per_job)
    sc=$(median "$1" server_cpu_ms_per_job)
    p50=$(median "$1" latency_p50_ms)
    p99=$(median "$1" latency_p99_ms)
    local vs_c="-"
    [[ -n "${2:-}" ]] && vs_c=$(awk -v a="$j" -v b="$(median "$2" jobs_per_s)" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    printf '%-26s %8.0f %8.3f %8.3f %9.2f %9.2f %9s %10s\n' "$1" "$j" "$c" "$sc" "$p50" "$p99" \
        "$(awk -v a="$j" -v b="$bs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" "$vs_c"
}
row beanstalkd
for mode in sync async; do
    for events in off on; do
        row "naq-$mode-events-$events" "ceiling-$mode-events-$events"
        row "ceiling-$mode-events-$events"
    done
done
echo
echo "K (events per job the ceiling publishes, measured from naq's worker): events on =" \
    "$(median ceiling-sync-events-on k)"
