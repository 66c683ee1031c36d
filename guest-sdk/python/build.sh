#!/bin/sh
# Builds a Python guest into a component of mixio's `handler` world:
#
#     sh guest-sdk/python/build.sh guests/food-delivery-py target/wasm32-wasip2/release/food_delivery_py.wasm
#
# The guest is the module `app` (app.py) in the given directory; the SDK (guest-sdk/python/mixio)
# is shipped into the component beside it. componentize-py, pinned in requirements.txt, is
# installed into a virtual environment under $MIXIO_GUEST_TOOLS (default: target/guest-tools)
# when missing. Nothing is rebuilt when the component is newer than its sources.
set -eu
[ $# -eq 2 ] || { echo "usage: $0 <guest directory> <output .wasm>" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
app=$(cd "$1" && pwd)
out=$2
sdk=$root/guest-sdk/python
tools=${MIXIO_GUEST_TOOLS:-$root/target/guest-tools}
venv=$tools/python

if ! cmp -s "$sdk/requirements.txt" "$venv/requirements.txt" 2>/dev/null; then
    command -v python3 >/dev/null || { echo "python3 is needed to build Python guests" >&2; exit 1; }
    echo "installing componentize-py into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$sdk/requirements.txt"
    cp "$sdk/requirements.txt" "$venv/requirements.txt"
fi

if [ -f "$out" ] && [ -z "$(find "$app" "$sdk" "$root/wit" "$venv/requirements.txt" -newer "$out" -print -quit)" ]; then
    exit 0
fi
# componentize-py writes __pycache__ beside the sources: it works on a copy of them.
stage=$tools/stage/$(basename "$app")
rm -rf "$stage" && mkdir -p "$stage/app" "$stage/sdk"
cp -R "$app/." "$stage/app/"
cp -R "$sdk/mixio" "$stage/sdk/"
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
cd "$stage/app"
"$venv/bin/componentize-py" -d "$root/wit" -w handler componentize -p "$stage/app" -p "$stage/sdk" app -o "$out.tmp" >&2
mv "$out.tmp" "$out"
