#!/usr/bin/env bash
# Per-request cost of a hello, each language against its usual server, with a fresh instance
# per request and with instance reuse (BENCHMARKS.md):
#
#   rust-fresh  mixio serve hello.wasm                    against nginx (1 process)
#   rust-reuse  the same, with `reuse` in the manifest    against nginx
#   wasi-fresh  mixio serve wasi_hello.wasm               against wasmtime serve (fresh)
#   wasi-reuse  the same, with `reuse`                    against wasmtime serve with its reuse
#   py-fresh    mixio serve hello_py.wasm (hello-py)      against gunicorn (1 sync worker)
#   py-reuse    the same, with `reuse`                    against gunicorn
#   js-fresh    mixio serve hello_js.wasm (hello-js)      against Node.js `http`
#   js-reuse    the same, with `reuse`                    against Node.js
#   py-density  how many suspended Python guests fit: see "density" below
#   js-density  the same for JavaScript
#
# Every row runs in this one invocation: ROUNDS rounds, each a pass over all the rows, and in
# each row both sides, alternating from round to round which side goes first, so that the
# machine's drift falls on both sides alike. Each server is pinned to core 0, wrk to core 1;
# each start gets a 2 s warm-up run of wrk that is not measured. The script ends with a table of
# each side's median rps, the median of the rounds' ratios (mixio over baseline) with their
# range, the target, and each side's CPU per request.
#
#     bench/per-request.sh                            # DURATION=5s, ROUNDS=3
#     ROUNDS=1 DURATION=3s ONLY='fresh' bench/per-request.sh
#     ONLY='^(py|js)-' bench/per-request.sh           # ONLY: a regex (grep -E) of row ids
#     ONLY=density DENSITY_N="200 1000" bench/per-request.sh
#
# Needs wrk (Debian: apt-get install wrk), python3 (with venv) and, for the js rows, Node.js 20
# or later with npm (the js rows are skipped without node). Installs, when missing, into
# bench/.tools (ignored by git): nginx (the Debian package, unpacked with `dpkg -x`, not
# installed), gunicorn (a venv from PyPI), wasmtime-cli 48.0.8 (`cargo install`), and
# componentize-py/-js (by guest-sdk/*/build.sh; target/wasm-guests/guest-tools is used when
# present).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
ONLY=${ONLY:-.}
# The manifest value of `reuse` for the reuse rows (wasmtime's side reuses an instance for
# 1000 requests: keep `requests` at 1000 when comparing).
REUSE=${REUSE:-'{ requests = 1000, idle = "10s" }'}
CONNECTIONS=20
TOOLS=$PWD/bench/.tools
WASMTIME=$TOOLS/bin/wasmtime
PORT=18080
BASE=http://127.0.0.1:$PORT
ALL_ROWS=(rust-fresh rust-reuse wasi-fresh wasi-reuse py-fresh py-reuse js-fresh js-reuse py-density js-density)
ADMIN=127.0.0.1:18081
DENSITY_N=${DENSITY_N:-200 1000}

ROW_IDS=()
for id in "${ALL_ROWS[@]}"; do
    if selected "$id"; then ROW_IDS+=("$id"); fi
done
[ ${#ROW_IDS[@]} -gt 0 ] || { echo "ONLY=$ONLY selects no row of: ${ALL_ROWS[*]}" >&2; exit 2; }
wants() { printf '%s\n' "${ROW_IDS[@]}" | grep -Eq -- "$1"; }
mkdir -p "$TOOLS"

# ---- tools -----------------------------------------------------------------------------

command -v wrk >/dev/null || { echo "bench/per-request.sh needs wrk: apt-get install wrk" >&2; exit 1; }

# nginx from Debian's package, unpacked into $TOOLS/nginx without installing it (no root
# needed, nothing in /etc). The package's libraries (libpcre2, libssl, zlib, libcrypt) are on
# any Debian with apt; `ldd` says when one is missing.
NGINX=$TOOLS/nginx/usr/sbin/nginx
if wants '^rust-' && [ ! -x "$NGINX" ]; then
    echo "unpacking Debian's nginx into $TOOLS/nginx" >&2
    rm -rf "$TOOLS/nginx-deb" && mkdir -p "$TOOLS/nginx-deb"
    (cd "$TOOLS/nginx-deb" && apt-get download nginx >&2)
    dpkg -x "$TOOLS"/nginx-deb/nginx_*.deb "$TOOLS/nginx"
    rm -rf "$TOOLS/nginx-deb"
    if ldd "$NGINX" | grep -q "not found"; then
        echo "nginx needs libraries this machine lacks (apt-get download them and dpkg -x them too):" >&2
        ldd "$NGINX" | grep "not found" >&2
        exit 1
    fi
fi
# gunicorn from PyPI into a venv of its own.
GUNICORN=$TOOLS/py/bin/gunicorn
if wants '^py-(fresh|reuse)' && [ ! -x "$GUNICORN" ]; then
    rm -rf "$TOOLS/py"
    python3 -m venv "$TOOLS/py"
    "$TOOLS/py/bin/pip" install --quiet gunicorn
fi
if wants '^wasi-' && [ ! -x "$WASMTIME" ]; then
    nice -n 10 cargo install wasmtime-cli --version 48.0.8 --locked --root "$TOOLS"
fi
NODE=$(command -v node || true)
if [ -z "$NODE" ] && wants '^js-'; then
    echo "no node on PATH: the js rows are skipped" >&2
    mapfile -t ROW_IDS < <(printf '%s\n' "${ROW_IDS[@]}" | grep -v '^js-')
fi

# ---- builds ----------------------------------------------------------------------------

nice -n 10 cargo build -q --release -p mixio-serve --bin mixio
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
nice -n 10 cargo build -q --release --target wasm32-wasip2 -p hello -p wasi-hello
G=$PWD/target/wasm32-wasip2/release
MIXIO=$PWD/target/release/mixio
# The Python and JavaScript hellos, built into $TOOLS/guests with the tools of `cargo test`
# (target/wasm-guests/guest-tools, tests/build.rs) when it has installed them, else with tools
# of our own.
GUEST_TOOLS=$PWD/target/wasm-guests/guest-tools
[ -d "$GUEST_TOOLS/python" ] && [ -d "$GUEST_TOOLS/js" ] || GUEST_TOOLS=$TOOLS/guest-tools
if wants '^py-'; then
    MIXIO_GUEST_TOOLS=$GUEST_TOOLS nice -n 10 sh guest-sdk/python/build.sh guests/hello-py "$TOOLS/guests/hello_py.wasm"
fi
if wants '^js-'; then
    MIXIO_GUEST_TOOLS=$GUEST_TOOLS nice -n 10 sh guest-sdk/js/build.sh guests/hello-js "$TOOLS/guests/hello_js.wasm"
fi
export MIXIO_CACHE_DIR=$TOOLS/cache

# ---- configurations --------------------------------------------------------------------

# mixio with reuse: the manifest form of `mixio serve FILE.wasm` (App::single in
# host/serve/src/manifest.rs: every path, the in-memory kv store `default`, every websocket
# channel), plus `reuse`. The fresh rows serve the .wasm file itself.
reuse_manifest() {  # reuse_manifest NAME WASM -> the manifest's path
    local file=$TOOLS/manifests/$1.toml
    mkdir -p "$TOOLS/manifests"
    cat >"$file" <<TOML
name = "$1"
data_dir = "$TOOLS/manifests/data"
[components.$1]
source = "$2"
routes = ["/*"]
kv = ["default"]
websocket = ["*"]
reuse = $REUSE
TOML
    echo "$file"
}

# nginx: one process (no master, so that its CPU time is all in /proc/PID/stat), the hello in
# the config, no access log; every path it writes is under $TOOLS/nginx-run, so it runs as
# root or not alike. `-e` sets the error log before the config is read.
NGINX_RUN=$TOOLS/nginx-run
mkdir -p "$NGINX_RUN/tmp"
cat >"$NGINX_RUN/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
error_log $NGINX_RUN/error.log warn;
pid $NGINX_RUN/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $NGINX_RUN/tmp/body;
    proxy_temp_path $NGINX_RUN/tmp/proxy;
    fastcgi_temp_path $NGINX_RUN/tmp/fastcgi;
    uwsgi_temp_path $NGINX_RUN/tmp/uwsgi;
    scgi_temp_path $NGINX_RUN/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT;
        location / {
            default_type "text/plain; charset=utf-8";
            return 200 "hello, \$arg_name!\n";
        }
    }
}
CONF
NGINX_CMD=("$NGINX" -p "$NGINX_RUN" -e "$NGINX_RUN/error.log" -c "$NGINX_RUN/nginx.conf")

# The baselines' hellos: the same answer as guests/hello for `?name=`.
cat >"$TOOLS/wsgi_hello.py" <<'PY'
from urllib.parse import parse_qs


def app(environ, start_response):
    name = parse_qs(environ.get("QUERY_STRING", "")).get("name", ["world"])[0]
    body = f"hello, {name}!\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
PY
GUNICORN_CMD=("$GUNICORN" --chdir "$TOOLS" --workers 1 --worker-class sync --bind "127.0.0.1:$PORT" wsgi_hello:app)
cat >"$TOOLS/node_hello.js" <<'JS'
const http = require("node:http");
http.createServer((req, res) => {
  const name = new URL(req.url, "http://localhost").searchParams.get("name") ?? "world";
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
  res.end(`hello, ${name}!\n`);
}).listen(Number(process.argv[2]), "127.0.0.1");
JS
NODE_CMD=("$NODE" "$TOOLS/node_hello.js" "$PORT")

# wasmtime serve: a fresh instance per request is its default for a wasip2 component
# (max-instance-reuse-count 1); with reuse, as many requests per instance as mixio's `reuse`.
WASMTIME_FRESH=("$WASMTIME" serve --addr "127.0.0.1:$PORT" -Scli "$G/wasi_hello.wasm")
WASMTIME_REUSE=("$WASMTIME" serve --addr "127.0.0.1:$PORT" -Scli --max-instance-reuse-count 1000 "$G/wasi_hello.wasm")

# row ID -> what, target ratio, mixio's path, baseline's path; the commands in `side`.
declare -A WHAT TARGET PATH_A PATH_B
WHAT[rust-fresh]="Rust hello, fresh instance / nginx";        TARGET[rust-fresh]=0.25
WHAT[rust-reuse]="Rust hello, reuse / nginx";                 TARGET[rust-reuse]=0.4
WHAT[wasi-fresh]="wasi:http hello, fresh / wasmtime fresh";   TARGET[wasi-fresh]=2.0
WHAT[wasi-reuse]="wasi:http hello, reuse / wasmtime reuse";   TARGET[wasi-reuse]=1.25
WHAT[py-fresh]="Python hello, fresh / gunicorn";              TARGET[py-fresh]=1.0
WHAT[py-reuse]="Python hello, reuse / gunicorn";              TARGET[py-reuse]=2.0
WHAT[js-fresh]="JavaScript hello, fresh / Node.js";           TARGET[js-fresh]=0.1
WHAT[js-reuse]="JavaScript hello, reuse / Node.js";           TARGET[js-reuse]=0.3
for id in "${ALL_ROWS[@]}"; do PATH_A[$id]="/?name=ada"; PATH_B[$id]="/?name=ada"; done
PATH_A[wasi-fresh]=/; PATH_A[wasi-reuse]=/; PATH_B[wasi-fresh]=/; PATH_B[wasi-reuse]=/

# side ID 0|1 -> sets CMD to the command of row ID's mixio side (0) or baseline (1)
side() {
    local id=$1 which=$2 wasm
    case $id in
        rust-*) wasm=$G/hello.wasm ;;
        wasi-*) wasm=$G/wasi_hello.wasm ;;
        py-*) wasm=$TOOLS/guests/hello_py.wasm ;;
        js-*) wasm=$TOOLS/guests/hello_js.wasm ;;
    esac
    if [ "$which" = 0 ]; then
        case $id in
            *-fresh) CMD=("$MIXIO" serve "$wasm" --listen "127.0.0.1:$PORT") ;;
            *-reuse) CMD=("$MIXIO" serve "$(reuse_manifest "${id%-reuse}" "$wasm")" --listen "127.0.0.1:$PORT") ;;
        esac
    else
        case $id in
            rust-*) CMD=("${NGINX_CMD[@]}") ;;
            wasi-fresh) CMD=("${WASMTIME_FRESH[@]}") ;;
            wasi-reuse) CMD=("${WASMTIME_REUSE[@]}") ;;
            py-*) CMD=("${GUNICORN_CMD[@]}") ;;
            js-*) CMD=("${NODE_CMD[@]}") ;;
        esac
    fi
}

# ---- measuring (as bench/http.sh) -------------------------------------------------------

ulimit -n 65536 2>/dev/null || true
SERVER=
# start CMD... -> 0 once the server answers, 1 (with its log) if it exits or stays silent for
# START_TIMEOUT seconds (the first start of a Python or JavaScript guest compiles ~20 MB).
# Its stdout and stderr both go to its log file.
start() {
    taskset -c 0 "$@" >"$TOOLS/server.log" 2>&1 &
    SERVER=$!
    local tries=$((${START_TIMEOUT:-300} * 10))
    for _ in $(seq 1 "$tries"); do
        if curl -s -o /dev/null "$BASE/"; then return 0; fi
        alive || break
        sleep 0.1
    done
    echo "the server did not start: $*" >&2
    tail -20 "$TOOLS/server.log" >&2
    stop
    return 1
}
# alive [PID] -> whether the server (or PID) still runs (one that exited stays a zombie until
# `wait`)
alive() {
    local state
    state=$(ps -o stat= -p "${1:-$SERVER}" 2>/dev/null) && [[ $state != Z* ]]
}
stop() {
    [ -n "$SERVER" ] || return 0
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=
    # gunicorn's worker and nginx's port must be gone before the next server binds the port.
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$BASE/" || return 0
        sleep 0.1
    done
}
trap stop EXIT

# CPU time the server has used so far, in clock ticks: user and system time of all threads of
# the server and its children (gunicorn's worker is a child of its master).
cpu_ticks() {
    local pids
    pids=$(ps -e -o pid=,ppid= | awk -v root="$SERVER" '
        { parent[$1] = $2 } END { for (p in parent) { q = p; while (q in parent && q != root) q = parent[q]; if (q == root) print p } }')
    local total=0 pid
    for pid in $pids; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
# measure PATH -> "rps p99 non2xx errors cpu_us_per_request", after an unmeasured 2 s warm-up
measure() {
    local out before after
    taskset -c 1 wrk -t1 -c$CONNECTIONS -d2s "$BASE$1" >/dev/null
    before=$(cpu_ticks)
    out=$(taskset -c 1 wrk -t1 -c$CONNECTIONS -d"$DURATION" --latency "$BASE$1")
    after=$(cpu_ticks)
    wrk_figures "$out" $((after - before))
}

# Each row's rounds so far, as space-separated lists (index 0: mixio, 1: baseline); a row one
# of whose sides fails to start is dropped from later rounds and reported as failed.
declare -A RPS P99 CPU BAD RATIOS FAILED
RATE_IDS=()
for id in "${ROW_IDS[@]}"; do
    [[ $id == *-density ]] || RATE_IDS+=("$id")
done
for round in $(seq 1 "$ROUNDS"); do
    for id in "${RATE_IDS[@]}"; do
        [ -z "${FAILED[$id]:-}" ] || continue
        rps=()
        for which in $((round % 2 ? 0 : 1)) $((round % 2 ? 1 : 0)); do
            side "$id" "$which"
            if ! start "${CMD[@]}"; then
                FAILED[$id]="side $which did not start: ${CMD[*]}"
                break
            fi
            if [ "$which" = 0 ]; then path=${PATH_A[$id]}; else path=${PATH_B[$id]}; fi
            read -r r p99 non2xx err cpu < <(measure "$path")
            : "${r:=0}" "${p99:=0}" "${non2xx:=0}" "${err:=0}" "${cpu:=0}"
            stop
            RPS[$id,$which]+="$r "; P99[$id,$which]+="$(ms "$p99") "; CPU[$id,$which]+="$cpu "
            BAD[$id,$which]=$((${BAD[$id,$which]:-0} + non2xx + err))
            rps[which]=$r
        done
        [ -z "${FAILED[$id]:-}" ] || { echo "$id: ${FAILED[$id]}" >&2; continue; }
        ratio=$(awk -v a="${rps[0]}" -v b="${rps[1]}" 'BEGIN { printf "%.3f", b ? a / b : 0 }')
        RATIOS[$id]+="$ratio "
        echo "$id round $round: mixio ${rps[0]} rps; baseline ${rps[1]} rps; ratio $ratio" >&2
    done
done

if [ ${#RATE_IDS[@]} -gt 0 ]; then
    echo
    echo "DURATION=$DURATION, ROUNDS=$ROUNDS (medians), wrk -t1 -c$CONNECTIONS, $(nproc) cores, $(date -u +%Y-%m-%d)"
    echo "| row | what | mixio rps | baseline rps | ratio (range) | target | mixio p99 (ms) | baseline p99 (ms) | non-2xx+errors (mixio / baseline) | CPU µs per request (mixio / baseline) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for id in "${RATE_IDS[@]}"; do
        if [ -n "${FAILED[$id]:-}" ] && [ -z "${RATIOS[$id]:-}" ]; then
            echo "| $id | ${WHAT[$id]} | – | – | failed: ${FAILED[$id]} | >= ${TARGET[$id]} | | | | |"
            continue
        fi
        # shellcheck disable=SC2086 # the lists are space-separated numbers
        {
            ratio=$(median %.2f ${RATIOS[$id]})
            range=$(printf '%s\n' ${RATIOS[$id]} | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f–%.2f", lo, hi }')
            # A row that failed after some rounds shows those rounds, and why it stopped.
            what=${WHAT[$id]}${FAILED[$id]:+ (then failed: ${FAILED[$id]})}
            met=$(awk -v r="$ratio" -v t="${TARGET[$id]}" 'BEGIN { print r >= t ? "met" : "missed" }')
            echo "| $id | $what | $(median %.0f ${RPS[$id,0]}) | $(median %.0f ${RPS[$id,1]}) | **$ratio** ($range) | >= ${TARGET[$id]} ($met) | $(median %.1f ${P99[$id,0]}) | $(median %.1f ${P99[$id,1]}) | ${BAD[$id,0]} / ${BAD[$id,1]} | $(median %.0f ${CPU[$id,0]}) / $(median %.0f ${CPU[$id,1]}) |"
        }
    done
fi

# ---- density: suspended Python and JavaScript guests ------------------------------------
# The rows py-density and js-density: `mixio serve` of hello-py (hello-js) with a deadline of an
# hour, then N requests at once (wrk -cN) that each sleep an hour in the guest (`?ms=`, the
# SDK's time.sleep). Once the server's metrics (`mixio_suspended_guests` on the admin listener)
# count N suspended guests, the server's memory is read and compared with its memory after a
# warm-up request: per suspended guest, the resident set (VmRSS), from /proc/PID/smaps_rollup the
# proportional set (Pss: pages shared, e.g. with the copy-on-write image of the component or
# with other processes, count by their share) and Private_Dirty (pages only this process wrote),
# and the page tables (VmPTE, kernel memory none of those count). "In 24 GiB" is 24 GiB over the
# Pss per guest. Each guest's connection and request are in the figures too, as in a server.
# The server runs with MIMALLOC_PURGE_DELAY=0: mimalloc otherwise keeps the pages it freed after
# loading the component (150 MB for the Python hello, 430 MB for the JavaScript one when it is
# compiled, not cached) and gives them back while the guests start, which subtracted up to 0.5 MiB
# from each of 200 guests' figures.
DENSITY_ROWS=()
# memory -> "rss pss private_dirty page_tables" of the server, in KiB
memory() {
    local status=/proc/$SERVER/status rollup=/proc/$SERVER/smaps_rollup
    echo "$(awk '/^VmRSS:/ {print $2}' "$status") $(awk '/^Pss:/ {print $2}' "$rollup")" \
        "$(awk '/^Private_Dirty:/ {print $2}' "$rollup") $(awk '/^VmPTE:/ {print $2}' "$status")"
}
suspended() {
    curl -s "http://$ADMIN/metrics" | awk '$1 == "mixio_suspended_guests" {print $2}'
}
# density ID WASM N TARGET -> a row of DENSITY_ROWS
density() {
    local id=$1 wasm=$2 n=$3 target=$4 manifest=$TOOLS/manifests/$1.toml
    mkdir -p "$TOOLS/manifests"
    cat >"$manifest" <<TOML
name = "$id"
max_instances = $n
data_dir = "$TOOLS/manifests/data"
[components.$id]
source = "$wasm"
routes = ["/*"]
limits = { timeout = "1h", max_concurrent = $n, queue = $n }
TOML
    start env MIMALLOC_PURGE_DELAY=0 "$MIXIO" serve "$manifest" --listen "127.0.0.1:$PORT" \
        --admin-listen "$ADMIN" || {
        DENSITY_ROWS+=("| $id | $n | failed to start | | | | | | |"); return; }
    curl -sf -o /dev/null "$BASE/?ms=1" || echo "$id: the warm-up request failed" >&2
    local before peak start_ns took now=0 clients_pid
    read -ra before < <(memory)
    start_ns=$(date +%s%N)
    # N connections, each sending one request and waiting (wrk cannot: its latency histogram
    # grows with --timeout, to 28 GB for an hour).
    taskset -c 1 python3 -c '
import socket, sys, time
request = b"GET /?name=density&ms=3600000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
clients = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(int(sys.argv[2]))]
for c in clients:
    c.sendall(request)
time.sleep(3600)' "$PORT" "$n" &
    clients_pid=$!
    for _ in $(seq 1 3000); do
        now=$(suspended)
        if [ "${now:-0}" -ge "$n" ] || ! alive "$clients_pid" || ! alive; then break; fi
        sleep 0.1
    done
    took=$(( ($(date +%s%N) - start_ns) / 1000000 ))
    read -ra peak < <(memory)
    kill "$clients_pid" 2>/dev/null || true
    wait "$clients_pid" 2>/dev/null || true
    stop
    if [ "${now:-0}" -lt "$n" ]; then
        DENSITY_ROWS+=("| $id | only ${now:-0} of $n suspended (see $TOOLS/server.log) | | | | | | | |")
        return
    fi
    DENSITY_ROWS+=("$(awk -v id="$id" -v n="$n" -v t="$target" -v ms="$took" \
        -v b="${before[*]}" -v p="${peak[*]}" 'BEGIN {
            split(b, B); split(p, P)
            for (i = 1; i <= 4; i++) d[i] = (P[i] - B[i]) / n
            fit = 24 * 1024 * 1024 / (d[2] > 0 ? d[2] : 0.001)
            printf "| %s | %d | %.0f KiB | %.0f KiB | %.0f KiB | %.1f KiB | **%.0f** | >= %s (%s) | %.1f s |",
                id, n, d[1], d[2], d[3], d[4], fit, t, fit >= t ? "met" : "missed", ms / 1000 }')")
    echo "${DENSITY_ROWS[-1]}" >&2
}
for id in py-density js-density; do
    selected_row=$(printf '%s\n' "${ROW_IDS[@]}" | grep -x -- "$id" || true)
    [ -n "$selected_row" ] || continue
    for n in $DENSITY_N; do
        case $id in
            py-density) density "$id" "$TOOLS/guests/hello_py.wasm" "$n" 20000 ;;
            js-density) density "$id" "$TOOLS/guests/hello_js.wasm" "$n" 50000 ;;
        esac
    done
done
if [ ${#DENSITY_ROWS[@]} -gt 0 ]; then
    echo
    echo "Suspended guests, $(date -u +%Y-%m-%d): memory of the mixio serve process per suspended guest"
    echo "| row | suspended at once | RSS per guest | Pss per guest | Private_Dirty per guest | page tables per guest | in 24 GiB (by Pss) | target | time to suspend all |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${DENSITY_ROWS[@]}"
fi
