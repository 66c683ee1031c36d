#!/usr/bin/env bash
# Soak test (RELIABILITY.md): serves the food-delivery demo plus `guests/hostile` with
# `mixio serve` (release), drives good orders, hostile requests and clients that hang up at it
# for DURATION seconds (default 600), then checks that no good request failed, that every
# order answered 201 is in the database exactly once, and that the server's resident memory at
# the end is within 10% of its size after warm-up. Not run by CI.
#
#     bench/soak.sh            # 10 minutes
#     DURATION=60 bench/soak.sh
#     MIXIO=path/to/other/mixio bench/soak.sh   # soak another build of the server
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-600}
PORT=${PORT:-18090}
MIXIO=${MIXIO:-target/release/mixio}
DIR=bench/.tools/soak
cargo build -q --release -p mixio-serve -p mixio-bench --bin mixio --bin soak
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q --release --target wasm32-wasip2 -p food-delivery -p kitchen -p hostile
G=$PWD/target/wasm32-wasip2/release
rm -rf "$DIR" && mkdir -p "$DIR"
cat >"$DIR/mixio.toml" <<TOML
name = "soak"
data_dir = "$PWD/$DIR/data"
[backends]
sql = { default = "sqlite:app.db" }
# The kitchen keeps a ticket per order: on disk, so that the app's own data does not count as
# the server's memory.
kv = { default = "sqlite:kv.db" }
[components.food-delivery]
source = "$G/food_delivery.wasm"
routes = ["POST /order"]
sql = ["default"]
allowed_hosts = ["\${self}"]
websocket = ["*"]
config = { kitchen_url = "\${self}/kitchen" }
limits = { timeout = "10s" }
[components.kitchen]
source = "$G/kitchen.wasm"
routes = ["POST /kitchen"]
kv = ["default"]
limits = { timeout = "5s", max_concurrent = 50 }
[components.hostile]
source = "$G/hostile.wasm"
routes = ["/hostile"]
kv = ["default"]
limits = { timeout = "2s", max_memory = "48MiB" }
TOML

ulimit -n 65536 2>/dev/null || true
RUST_LOG=${RUST_LOG:-error} "$MIXIO" serve "$DIR/mixio.toml" --listen 127.0.0.1:$PORT >"$DIR/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    sleep 0.1
done
echo "soak: $DURATION s against mixio serve (pid $SERVER) on 127.0.0.1:$PORT, $(nproc) cores, $(date -u +%Y-%m-%d)"
target/release/soak "http://127.0.0.1:$PORT" "$SERVER" "$DIR/data/app.db" "$DURATION"
