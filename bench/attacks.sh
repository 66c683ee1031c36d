#!/usr/bin/env bash
# Hostile clients (RELIABILITY.md): serves `guests/hello`, `guests/hostile` and a 50 MiB static
# file with `mixio serve` (release), runs the attacks of bench/src/bin/attacks.rs one after
# another (slow request bodies, stalled uploads, clients that never read a response, 10,000
# websocket channels joined and left twice, a ping flood, idle connections, bodies sent a byte
# per TCP segment) with well-behaved requests beside them, and prints a Markdown table of the
# server's resident memory before,
# at the peak and after each attack, and what the server did. Exits 1 if a well-behaved
# request failed or an attack was not cut; the memory is reported, never checked. About 2
# minutes once built; every client is bounded and targets 127.0.0.1 only. Not run by CI.
#
#     bench/attacks.sh
#     CHANNELS=2000 IDLE_CONNECTIONS=500 bench/attacks.sh   # smaller attacks 5 and 7
#     PORT=18191 bench/attacks.sh                           # admin listener on PORT+1
#     MIXIO=path/to/other/mixio bench/attacks.sh            # attack another build of the server
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-18091}
ADMIN_PORT=$((PORT + 1))
MIXIO=${MIXIO:-target/release/mixio}
DIR=bench/.tools/attacks
cargo build -q --release -p mixio-serve --bin mixio
cargo build -q --release -p mixio-bench --bin attacks
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q --release --target wasm32-wasip2 -p hello -p hostile
G=$PWD/target/wasm32-wasip2/release
rm -rf "$DIR" && mkdir -p "$DIR/static"
head -c $((50 << 20)) /dev/zero >"$DIR/static/big.bin"
# The [server] bounds are the defaults: header, body-idle and write-idle timeouts of 10 s,
# max_body_memory 256 MiB, max_connections from the descriptor limit.
cat >"$DIR/mixio.toml" <<TOML
name = "attacks"
data_dir = "$PWD/$DIR/data"
static_dir = "$PWD/$DIR/static"
[components.hello]
source = "$G/hello.wasm"
routes = ["/hello"]
limits = { timeout = "3s" }
[components.hostile]
source = "$G/hostile.wasm"
routes = ["/hostile"]
limits = { timeout = "30s", max_request_body = "10MiB", max_response_body = "64MiB" }
TOML

ulimit -n 65536 2>/dev/null || true
RUST_LOG=${RUST_LOG:-error} "$MIXIO" serve "$DIR/mixio.toml" --listen 127.0.0.1:$PORT \
    --admin-listen 127.0.0.1:$ADMIN_PORT >"$DIR/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$ADMIN_PORT/readyz" && break
    kill -0 $SERVER 2>/dev/null || { cat "$DIR/server.log"; exit 1; }
    sleep 0.1
done
echo "attacks: mixio serve (pid $SERVER) on 127.0.0.1:$PORT, admin on 127.0.0.1:$ADMIN_PORT" >&2
# Every attack is bounded (at most 3 minutes each, most take 10-20 s); this bounds the whole.
NPROC=$(nproc) timeout 1200 target/release/attacks "http://127.0.0.1:$PORT" \
    "http://127.0.0.1:$ADMIN_PORT" "$SERVER"
