#!/usr/bin/env bash
# HTTP benchmarks (BENCHMARKS.md): B4 (hello, fresh instance per request), B5 (a guest
# sleeping 10 ms, 1000 connections) against `wasmtime serve`, and B7 (async against blocking
# mode, the same .wasm). Both sides of each comparison run in this one invocation, the server
# pinned to core 0 and wrk to core 1; the script ends with a table of ratios.
#
#     bench/http.sh                 # DURATION=10s by default
#
# Needs wrk (Debian: apt-get install wrk). Installs wasmtime-cli 48.0.8 into bench/.tools
# (ignored by git) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
TOOLS=bench/.tools
WASMTIME=$TOOLS/bin/wasmtime
PORT=18080
BASE=http://127.0.0.1:$PORT

command -v wrk >/dev/null || { echo "bench/http.sh needs wrk: apt-get install wrk" >&2; exit 1; }
if [ ! -x "$WASMTIME" ]; then
    cargo install wasmtime-cli --version 48.0.8 --locked --root "$TOOLS"
fi
cargo build -q --release -p mixio-host
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q --release --target wasm32-wasip2 -p wasi-hello -p hello -p sleepy
G=target/wasm32-wasip2/release
MIXIO=target/release/mixio
export MIXIO_CACHE_DIR=$TOOLS/cache
ulimit -n 65536 2>/dev/null || true  # wrk -c1000 needs file descriptors

SERVER=
start() {
    taskset -c 0 "$@" >/dev/null 2>"$TOOLS/server.log" &
    SERVER=$!
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null "$BASE/"; then return; fi
        sleep 0.1
    done
    echo "the server did not start: $*" >&2
    cat "$TOOLS/server.log" >&2
    exit 1
}
stop() {
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
}
trap stop EXIT

# measure PATH CONNECTIONS -> "rps p99 non2xx errors"
measure() {
    local out
    out=$(taskset -c 1 wrk -t2 -c"$2" -d"$DURATION" --latency "$BASE$1")
    local rps p99 non2xx errors
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx or 3xx/ {print $NF}' <<<"$out")
    errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
    echo "$rps $p99 ${non2xx:-0} ${errors:-0}"
}

ROWS=()
# compare ID WHAT TARGET PATH_A CONNS -- MIXIO_CMD... -- PATH_B -- BASELINE_CMD...
compare() {
    local id=$1 what=$2 target=$3 conns=$4 path_a=$5 path_b=$6
    shift 6
    local -a a b
    while [ "$1" != "--" ]; do a+=("$1"); shift; done
    shift
    b=("$@")
    start "${a[@]}"; read -r rps_a p99_a bad_a err_a < <(measure "$path_a" "$conns"); stop
    start "${b[@]}"; read -r rps_b p99_b bad_b err_b < <(measure "$path_b" "$conns"); stop
    local ratio
    ratio=$(awk -v a="$rps_a" -v b="$rps_b" 'BEGIN { printf "%.2f", a / b }')
    ROWS+=("| $id | $what | $rps_a | $rps_b | **$ratio** | $p99_a | $p99_b | $bad_a+$err_a / $bad_b+$err_b | $target |")
    echo "${ROWS[-1]}"
}

compare B4a "the same wasi:http hello component" "rps >= 2.0x, p99 lower" 50 / / \
    "$MIXIO" serve "$G/wasi_hello.wasm" --listen 127.0.0.1:$PORT -- \
    "$WASMTIME" serve --addr 127.0.0.1:$PORT -Scli "$G/wasi_hello.wasm"
compare B4b "mixio's hello against wasmtime's (wasi:http hello)" "rps >= 2.0x, p99 lower" 50 "/?name=ada" / \
    "$MIXIO" serve "$G/hello.wasm" --listen 127.0.0.1:$PORT -- \
    "$WASMTIME" serve --addr 127.0.0.1:$PORT -Scli "$G/wasi_hello.wasm"
compare B5a "sleep 10 ms, the same wasi:http component, -c1000" "no non-2xx, rps >= 2.0x" 1000 "/?sleep=10" "/?sleep=10" \
    "$MIXIO" serve "$G/wasi_hello.wasm" --listen 127.0.0.1:$PORT -- \
    "$WASMTIME" serve --addr 127.0.0.1:$PORT -Scli "$G/wasi_hello.wasm"
compare B5b "sleep 10 ms, mixio's sleepy against wasmtime's, -c1000" "no non-2xx, rps >= 2.0x" 1000 "/?ms=10" "/?sleep=10" \
    "$MIXIO" serve "$G/sleepy.wasm" --listen 127.0.0.1:$PORT -- \
    "$WASMTIME" serve --addr 127.0.0.1:$PORT -Scli "$G/wasi_hello.wasm"
compare B7 "50 ms of I/O, async against blocking (64 threads), -c1000" "rps >= 10x" 1000 "/?ms=50" "/?ms=50" \
    "$MIXIO" serve "$G/sleepy.wasm" --listen 127.0.0.1:$PORT -- \
    "$MIXIO" serve "$G/sleepy.wasm" --listen 127.0.0.1:$PORT --io blocking:64

echo
echo "DURATION=$DURATION, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "| id | what | mixio rps | baseline rps | ratio | mixio p99 | baseline p99 | non-2xx+errors (mixio / baseline) | target |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
