# Shell helpers the HTTP benchmark scripts share (bench/http.sh, bench/per-request.sh): which
# rows ONLY selects, what a wrk run measured, medians, latencies. Sourced, not run.

# selected ID -> whether ONLY (a regex, grep -E) selects row ID
selected() { grep -Eq -- "$ONLY" <<<"$1"; }

TICK_US=$((1000000 / $(getconf CLK_TCK)))

# wrk_figures OUTPUT TICKS -> "rps p99 non2xx errors cpu_us_per_request" of wrk's OUTPUT, the
# server having used TICKS clock ticks of CPU during the run. The CPU per request is that time
# over the requests answered: unlike rps, it does not depend on whether the server was bound by
# the CPU or by latency.
wrk_figures() {
    local out=$1 ticks=$2 rps p99 non2xx errors requests cpu
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx or 3xx/ {print $NF}' <<<"$out")
    errors=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu=$(awk -v t="$ticks" -v us="$TICK_US" -v n="$requests" 'BEGIN { printf "%.0f", n ? t * us / n : 0 }')
    echo "$rps $p99 ${non2xx:-0} ${errors:-0} $cpu"
}

# median FORMAT NUMBER... -> the median (of an even count, the mean of the two middle ones)
median() {
    local format=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v f="$format" '{ v[NR] = $1 }
        END { printf f, NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ms LATENCY -> the latency in milliseconds (wrk prints us, ms or s)
ms() {
    awk -v t="$1" 'BEGIN { v = t + 0; if (t ~ /us$/) v /= 1000; else if (t ~ /[0-9]s$/) v *= 1000; printf "%.2f", v }'
}
