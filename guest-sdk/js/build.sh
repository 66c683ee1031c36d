#!/bin/sh
# Builds a JavaScript guest into a component of mixio's `handler` world:
#
#     sh guest-sdk/js/build.sh guests/food-delivery-js target/wasm32-wasip2/release/food_delivery_js.wasm
#
# The guest is the ES module app.js in the given directory (it imports the SDK,
# guest-sdk/js/mixio.js, by its relative path). componentize-js, pinned in package.json and
# package-lock.json, is installed with `npm ci` under $MIXIO_GUEST_TOOLS (default:
# target/guest-tools) when missing. Nothing is rebuilt when the component is newer than its
# sources. `fetch` is left out of the engine: outbound HTTP goes through the SDK's synchronous
# `http`, checked against the component's allowed hosts, so the component imports no wasi:http
# and runs in blocking mode too.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 <guest directory> <output .wasm>" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
app=$(cd "$1" && pwd)
out=$2
sdk=$root/guest-sdk/js
tools=${MIXIO_GUEST_TOOLS:-$root/target/guest-tools}/js

if ! cmp -s "$sdk/package-lock.json" "$tools/package-lock.json" 2>/dev/null \
    || [ ! -d "$tools/node_modules/@bytecodealliance/componentize-js" ]; then
    command -v npm >/dev/null || { echo "Node.js 20 or later and npm are needed to build JavaScript guests" >&2; exit 1; }
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
        || { echo "componentize-js needs Node.js 20 or later, this is $(node --version)" >&2; exit 1; }
    echo "installing componentize-js into $tools" >&2
    rm -rf "$tools" && mkdir -p "$tools"
    cp "$sdk/package.json" "$sdk/package-lock.json" "$tools/"
    # A failed install leaves no lock behind, so that the next build installs again.
    (cd "$tools" && npm ci --silent --no-audit --no-fund >&2) || { rm -f "$tools/package-lock.json"; exit 1; }
fi

if [ -f "$out" ] && [ -z "$(find "$app" "$sdk/mixio.js" "$root/wit" "$tools/package-lock.json" -newer "$out" -print -quit)" ]; then
    exit 0
fi
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
node "$tools/node_modules/@bytecodealliance/componentize-js/src/cli.js" "$app/app.js" \
    --wit "$root/wit" --world-name handler --disable http fetch-event --out "$out.tmp" >&2
mv "$out.tmp" "$out"
