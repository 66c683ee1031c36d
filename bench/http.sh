#!/usr/bin/env bash
# HTTP benchmarks (BENCHMARKS.md): B4 (hello, fresh instance per request), B5 (a guest
# sleeping 10 ms, 1000 connections) against `wasmtime serve`, B7 (async against blocking
# mode, the same .wasm), B8 (the food-delivery demo against the same service written with
# axum + sqlx), B7r and B8r (B7 and B8 with instance reuse), then B6 (density, `cargo bench
# --bench density`). Both sides of each comparison run in this one invocation, ROUNDS times,
# alternating which goes first, the server pinned to core 0 and wrk to core 1; the script ends
# with tables of medians and ratios, and of density.
#
#     bench/http.sh                 # DURATION=10s and ROUNDS=3 by default
#     DURATION=5s bench/http.sh     # the figures in BENCHMARKS.md
#     ONLY='^B[78]$' bench/http.sh  # ONLY: a regex (grep -E) of the ids B4a ... B8r, B6
#
# Needs wrk (Debian: apt-get install wrk). Installs wasmtime-cli 48.0.8 into bench/.tools
# (ignored by git) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
ONLY=${ONLY:-.}
ALL_IDS=(B4a B4b B5a B5b B7 B7r B8 B8r B6)
printf '%s\n' "${ALL_IDS[@]}" | grep -Eq -- "$ONLY" \
    || { echo "ONLY=$ONLY selects none of: ${ALL_IDS[*]}" >&2; exit 2; }
TOOLS=bench/.tools
WASMTIME=$TOOLS/bin/wasmtime
PORT=18080
BASE=http://127.0.0.1:$PORT

command -v wrk >/dev/null || { echo "bench/http.sh needs wrk: apt-get install wrk" >&2; exit 1; }
if [ ! -x "$WASMTIME" ]; then
    cargo install wasmtime-cli --version 48.0.8 --locked --root "$TOOLS"
fi
# Two builds, not one: built together, cargo would give `mixio` the features the baseline's
# dependencies turn on (sqlx turns on `tracing`'s `log`, which makes every span cost more).
cargo build -q --release -p mixio-serve --bin mixio
cargo build -q --release -p food-delivery-native
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q --release --target wasm32-wasip2 -p wasi-hello -p hello -p sleepy -p food-delivery -p kitchen
G=target/wasm32-wasip2/release
MIXIO=target/release/mixio
export MIXIO_CACHE_DIR=$TOOLS/cache
ulimit -n 65536 2>/dev/null || true  # wrk -c1000 needs file descriptors

SERVER=
# A server's stdout and stderr both go to its log file: `wasmtime serve` prints a guest's
# stdout to its own stdout, mixio to its log (stderr), so each writes the same guest lines
# (wasi-hello prints one per request) to the same kind of file.
start() {
    taskset -c 0 "$@" >"$TOOLS/server.log" 2>&1 &
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

# CPU time the server has used so far (all its threads, user and system), in clock ticks.
cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$SERVER/stat"
}
# measure PATH CONNECTIONS -> "rps p99 non2xx errors cpu_us_per_request"
measure() {
    local out before after
    before=$(cpu_ticks)
    out=$(taskset -c 1 wrk -t2 -c"$2" -d"$DURATION" --latency ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} "$BASE$1")
    after=$(cpu_ticks)
    wrk_figures "$out" $((after - before))
}

ROWS=()
# compare ID WHAT TARGET CONNS PATH_A PATH_B MIXIO_CMD... -- BASELINE_CMD...
# Runs ROUNDS rounds of both sides, alternating which goes first, so that the machine's speed
# drifting during the run falls on both; reports each side's median and the median of the
# rounds' ratios with their range.
compare() {
    local id=$1 what=$2 target=$3 conns=$4 path_a=$5 path_b=$6
    selected "$id" || return 0
    shift 6
    local -a a b
    while [ "$1" != "--" ]; do a+=("$1"); shift; done
    shift
    b=("$@")
    local -a rps_a rps_b p99_a p99_b cpu_a cpu_b ratios cpu_ratios
    local bad_a=0 bad_b=0 round side rps p99 bad err cpu
    for round in $(seq 1 "$ROUNDS"); do
        for side in $((round % 2 ? 0 : 1)) $((round % 2 ? 1 : 0)); do
            if [ "$side" = 0 ]; then
                start "${a[@]}"; read -r rps p99 bad err cpu < <(measure "$path_a" "$conns"); stop
                rps_a+=("$rps"); p99_a+=("$(ms "$p99")"); cpu_a+=("$cpu"); bad_a=$((bad_a + bad + err))
            else
                start "${b[@]}"; read -r rps p99 bad err cpu < <(measure "$path_b" "$conns"); stop
                rps_b+=("$rps"); p99_b+=("$(ms "$p99")"); cpu_b+=("$cpu"); bad_b=$((bad_b + bad + err))
            fi
        done
        ratios+=("$(awk -v a="${rps_a[-1]}" -v b="${rps_b[-1]}" 'BEGIN { printf "%.3f", a / b }')")
        cpu_ratios+=("$(awk -v a="${cpu_a[-1]}" -v b="${cpu_b[-1]}" 'BEGIN { printf "%.3f", a ? b / a : 0 }')")
        echo "$id round $round: mixio ${rps_a[-1]} rps, ${cpu_a[-1]} µs/request; baseline ${rps_b[-1]} rps, ${cpu_b[-1]} µs/request; ratio ${ratios[-1]}" >&2
    done
    local range
    range=$(printf '%s\n' "${ratios[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f–%.2f", lo, hi }')
    ROWS+=("| $id | $what | $(median %.0f "${rps_a[@]}") | $(median %.0f "${rps_b[@]}") | **$(median %.2f "${ratios[@]}")** ($range) | $(median %.1f "${p99_a[@]}") | $(median %.1f "${p99_b[@]}") | $bad_a / $bad_b | $(median %.0f "${cpu_a[@]}") / $(median %.0f "${cpu_b[@]}") | $(median %.2f "${cpu_ratios[@]}") | $target |")
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

# The rows ending in `r` run the same with instance reuse (`reuse` below) on both sides.
REUSE='{ requests = 1000, idle = "10s" }'
mkdir -p "$TOOLS/b7r"
cat >"$TOOLS/b7r/mixio.toml" <<TOML
name = "sleepy"
data_dir = "$PWD/$TOOLS/b7r"
[components.sleepy]
source = "$PWD/$G/sleepy.wasm"
routes = ["/*"]
reuse = $REUSE
TOML
compare B7r "B7 with instance reuse on both sides" "rps >= 10x" 1000 "/?ms=50" "/?ms=50" \
    "$MIXIO" serve "$TOOLS/b7r/mixio.toml" --listen 127.0.0.1:$PORT -- \
    "$MIXIO" serve "$TOOLS/b7r/mixio.toml" --listen 127.0.0.1:$PORT --io blocking:64

# B8: the demo on embedded defaults (SQLite, in-memory KV and pub/sub) against axum + sqlx.
# Each side starts on a new database, kept over the rounds; the kitchen thinks 20 to 200 ms
# per order on both.
B8=$TOOLS/b8
rm -rf "$B8" && mkdir -p "$B8/mixio" "$B8/native"
cat >"$B8/mixio.toml" <<TOML
name = "food-delivery"
data_dir = "$PWD/$B8/mixio"
[backends]
sql = { default = "sqlite:orders.db" }
[components.food-delivery]
source = "$PWD/$G/food_delivery.wasm"
routes = ["POST /order"]
sql = ["default"]
allowed_hosts = ["\${self}"]
websocket = ["*"]
config = { kitchen_url = "\${self}/kitchen" }
[components.kitchen]
source = "$PWD/$G/kitchen.wasm"
routes = ["POST /kitchen"]
kv = ["default"]
TOML
cat >"$B8/order.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"user": "bench", "dish": "ramen"}'
LUA
WRK_SCRIPT=$B8/order.lua compare B8 "food-delivery (SQLite, HTTP, websocket) against axum + sqlx, -c1000" \
    "ratio >= 0.6" 1000 /order /order \
    "$MIXIO" serve "$B8/mixio.toml" --listen 127.0.0.1:$PORT -- \
    target/release/food-delivery-native 127.0.0.1:$PORT "$B8/native/orders.db"
# B8r: the same manifest with both components reusing instances, each side on a new database.
sed "/^routes = /a reuse = $REUSE" "$B8/mixio.toml" >"$B8/mixio-reuse.toml"
rm -rf "$B8/mixio" "$B8/native" && mkdir -p "$B8/mixio" "$B8/native"
WRK_SCRIPT=$B8/order.lua compare B8r "B8 with instance reuse in both components" \
    "ratio >= 0.6" 1000 /order /order \
    "$MIXIO" serve "$B8/mixio-reuse.toml" --listen 127.0.0.1:$PORT -- \
    target/release/food-delivery-native 127.0.0.1:$PORT "$B8/native/orders.db"

echo
echo "DURATION=$DURATION, ROUNDS=$ROUNDS (medians), $(nproc) cores, $(date -u +%Y-%m-%d)"
echo "| id | what | mixio rps | baseline rps | ratio (range) | mixio p99 (ms) | baseline p99 (ms) | non-2xx+errors (mixio / baseline) | CPU µs per request (mixio / baseline) | baseline CPU / mixio CPU | target |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"

# B6: density. Every suspended guest costs memory maps (a fiber stack and its guard page, and
# for wasm a linear memory); Linux allows 65,530 per process unless raised.
selected B6 || exit 0
NEEDED=4194304
if [ "$(cat /proc/sys/vm/max_map_count)" -lt "$NEEDED" ]; then
    if [ "$(id -u)" = 0 ]; then
        sysctl -q -w vm.max_map_count=$NEEDED
    else
        echo "B6 needs vm.max_map_count >= $NEEDED: sudo sysctl -w vm.max_map_count=$NEEDED" >&2
        exit 1
    fi
fi
echo
cargo bench -q -p mixio-bench --bench density 2>/dev/null | sed -n '/^| what/,$p'
