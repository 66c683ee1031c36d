#!/usr/bin/env bash
# Start-up of `mixio serve` with the Python guest (guests/food-delivery-py, ~20 MB) and with
# the whole demo: the time from launch to the ready line, with an empty compiled-code cache
# (the first start compiles) and then twice with the cache filled (no compiling: the log says
# `loaded from the compiled-code cache`). Figures in BENCHMARKS.md. Not run by CI.
#
#     bench/startup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q --release -p mixio-serve --bin mixio
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build -q --release --target wasm32-wasip2 -p food-delivery -p kitchen
G=$PWD/target/wasm32-wasip2/release
sh guest-sdk/python/build.sh guests/food-delivery-py "$G/food_delivery_py.wasm"
sh guest-sdk/js/build.sh guests/food-delivery-js "$G/food_delivery_js.wasm"
DIR=$PWD/bench/.tools/startup
rm -rf "$DIR" && mkdir -p "$DIR"
cat >"$DIR/python.toml" <<TOML
name = "python"
data_dir = "$DIR/data"
[components.food-delivery-py]
source = "$G/food_delivery_py.wasm"
routes = ["POST /py/order"]
sql = ["default"]
TOML
sed -e "s#^data_dir = .*#data_dir = \"$DIR/data\"#" -e "s#target/wasm32-wasip2/release#$G#" \
    -e "s#^static_dir = .*#static_dir = \"$PWD/static\"#" -e '/^build = /d' mixio.toml >"$DIR/demo.toml"

# Launches `mixio serve $1` and prints the milliseconds until its ready line, then stops it.
ready_ms() {
    local out=$DIR/out log=$DIR/log start now
    : >"$out"
    start=$(date +%s%N)
    MIXIO_CACHE_DIR=$DIR/cache RUST_LOG=warn,mixio_host=info,mixio_serve=info target/release/mixio serve "$1" \
        --listen 127.0.0.1:0 >"$out" 2>"$log" &
    local pid=$!
    until grep -q "^mixio: serving" "$out"; do
        kill -0 $pid 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.005
    done
    now=$(date +%s%N)
    kill -TERM $pid && wait $pid || true
    echo $(((now - start) / 1000000))
    grep -Eo "(compiled|loaded from the compiled-code cache) in [0-9.]+ s" "$log" | sort | uniq -c | sed 's/^/    /' >&2
}

echo "mixio serve start-up, $(nproc) cores, $(date -u +%Y-%m-%d)"
for app in python demo; do
    rm -rf "$DIR/cache"
    echo "$app: first start (empty cache): $(ready_ms "$DIR/$app.toml") ms"
    echo "$app: second start: $(ready_ms "$DIR/$app.toml") ms"
    echo "$app: third start: $(ready_ms "$DIR/$app.toml") ms"
done
