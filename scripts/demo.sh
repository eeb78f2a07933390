#!/usr/bin/env bash
# The naq demo: installs what naq needs, builds it, and then, on a private
# server (its own free port and temporary store, removed at the end):
# starts a worker, enqueues a few jobs (one that succeeds, one that fails,
# one that runs a real command, one that times out), shows their events
# live, and ends with a job's whole history. Takes well under a minute.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

scripts/install-deps.sh
say "building naq"
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)" --target naq_cli >/dev/null
naq="$PWD/build/naq"

# A port nothing listens on, in the ephemeral range.
port=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        port=$candidate
        break
    fi
done
[[ -n "$port" ]] || { echo "demo: no free port found" >&2; exit 1; }

work=$(mktemp -d /tmp/naq-demo-XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

export NAQ_URL="nats://127.0.0.1:$port"
export NAQ_SPOOL_DIR="$work/spool"

say "starting a private naq server on $NAQ_URL (store in $work)"
"$naq" server --port "$port" --data "$work/server" &
pids+=($!)
for _ in $(seq 1 100); do
    "$naq" health >/dev/null 2>&1 && break
    sleep 0.1
done

say "starting a worker on queue 'demo' running 2 jobs at once"
"$naq" worker -q demo -c 2 2>"$work/worker.log" &
pids+=($!)

say "live events (naq events stream --queue demo)"
"$naq" events stream --queue demo &
pids+=($!)
sleep 0.5

ok=$("$naq" enqueue -q demo -- sh -c 'echo "hello from a naq job"')
real=$("$naq" enqueue -q demo --tag kind=real -- uname -srm)
bad=$("$naq" enqueue -q demo -- sh -c 'echo "disk full" >&2; exit 3')
slow=$("$naq" enqueue -q demo --timeout 1s -- sleep 30)

# Wait until every job has reached a final state.
for id in "$ok" "$real" "$bad" "$slow"; do
    for _ in $(seq 1 100); do
        state=$("$naq" job status "$id" --format json 2>/dev/null | sed -n 's/.*"event_type":"\([a-z_]*\)".*/\1/p')
        case "$state" in completed|failed|cancelled|timeout) break ;; esac
        sleep 0.1
    done
done
sleep 0.5

say "the state of each job (naq job status ID)"
for id in "$ok" "$real" "$bad" "$slow"; do "$naq" job status "$id"; done

say "the whole history of the job that failed (naq events history $bad)"
"$naq" events history "$bad"

say "failed jobs wait whole in the dead-letter queue (naq dlq list; naq dlq retry ID re-runs one)"
"$naq" dlq list

say "the same history as JSON lines, one event per line"
"$naq" events history "$real" --format json

say "done: the server, the worker and the store are removed"
