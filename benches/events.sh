#!/usr/bin/env bash
# Event tools under load, ebpfx beside libbpf-tools (Debian package libbpf-tools), in one run:
# for each workload (N open() calls of a missing path; N fork+exec of /bin/true with a unique
# argument) and each tool, the tool runs where the scheduler puts it with its output in a file,
# the workload pinned to CPU 0 (one core's worth of load); then we count the lines carrying the workload's unique path/argument (received), and
# read the tool's CPU time (all its threads' run time from /proc/PID/task/*/schedstat, in ns:
# utime+stime come in 10 ms ticks, too coarse for ~30 ms of work) before stopping it.
#   events/s   = received / workload seconds (what the tool consumed and printed)
#   missing    = N - received (lost or dropped, for the workload's own events)
#   CPU/event  = tool CPU time from the workload's start to 2 s after its end / received
# ebpfx prints its default table (as libbpf-tools prints text); ebpfx-16M is ebpfx with
# --ring-size 16M (libbpf-tools' perf buffers have a fixed size); ebpfx-json prints JSON Lines.
# After the rounds, a summary: min and median over the rounds per tool and workload.
# Other processes' events are traced by every tool alike (the machine is shared: numbers are
# noisy). Needs root, cc, taskset, tracefs (libbpf-tools' tracepoints), a release build.
# Usage: benches/events.sh [ROUNDS] [OPEN_N] [EXEC_N]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
open_n=${2:-200000}
exec_n=${3:-3000}
ebpfx=${EBPFX:-target/release/ebpfx}
[ -x "$ebpfx" ] || { echo "no $ebpfx: cargo build --release first" >&2; exit 1; }
for t in opensnoop execsnoop; do
    [ -x /usr/sbin/$t ] || { echo "no /usr/sbin/$t: apt-get install libbpf-tools" >&2; exit 1; }
done
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
work=$(mktemp -d /tmp/ebpfx-events-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/eventload" benches/eventload.c
rows="$work/rows"

# cpu_seconds PID: CPU time of PID's threads so far (seconds, ns precision).
cpu_seconds() {
    cat /proc/"$1"/task/*/schedstat | awk '{ ns += $1 } END { printf "%.9f\n", ns / 1e9 }'
}

# run_one TOOL WORKLOAD: prints one result row.
run_one() {
    local tool=$1 load=$2 tag="bench$$x$RANDOM$RANDOM" out err pid secs cpu cpu0 received n
    out="$work/$tool-$load.out"
    err="$work/$tool-$load.err"
    case "$tool" in
        ebpfx) "$ebpfx" -v run "${load}snoop" >"$out" 2>"$err" &
            pid=$!
            until grep -q "window started" "$err" 2>/dev/null; do sleep 0.05; done ;;
        ebpfx-16M) "$ebpfx" -v run "${load}snoop" --ring-size 16M >"$out" 2>"$err" &
            pid=$!
            until grep -q "window started" "$err" 2>/dev/null; do sleep 0.05; done ;;
        ebpfx-json) "$ebpfx" -v run "${load}snoop" -f json >"$out" 2>"$err" &
            pid=$!
            until grep -q "window started" "$err" 2>/dev/null; do sleep 0.05; done ;;
        libbpf-tools) /usr/sbin/${load}snoop >"$out" 2>"$err" &
            pid=$!
            until [ -s "$out" ]; do sleep 0.05; done ;;
    esac
    sleep 0.5
    # CPU time from here on: the workload's events (and the machine's own), not the start-up.
    cpu0=$(cpu_seconds "$pid")
    if [ "$load" = open ]; then
        n=$open_n
        secs=$(taskset -c 0 "$work/eventload" open "$n" "/nonexistent/$tag")
    else
        n=$exec_n
        secs=$(taskset -c 0 "$work/eventload" exec "$n" /bin/true "$tag")
    fi
    sleep 2
    cpu=$(awk -v a="$(cpu_seconds "$pid")" -v b="$cpu0" 'BEGIN { print a - b }')
    kill -INT "$pid"
    wait "$pid" || true
    # The tag is also in the argv of taskset and eventload (exec lines of their own): count the
    # workload's events only (eventload execs `/bin/true TAG-run`).
    if [ "$load" = open ]; then
        received=$(grep -c -- "/nonexistent/$tag" "$out" || true)
    else
        received=$(grep -c -- "/bin/true $tag-run" "$out" || true)
    fi
    awk -v tool="$tool" -v load="$load" -v n="$n" -v s="$secs" -v r="$received" -v c="$cpu" 'BEGIN {
        printf "| %s | %s | %d | %.2f | %.0f | %d | %d | %.3f | %.2f |\n",
            tool, load, n, s, r / s, r, n - r, c, (r > 0 ? c / r * 1e6 : 0) }' | tee -a "$rows"
    grep -h -E "events lost in total|Lost [0-9]+ events" "$err" | sed 's/^/    stderr: /' | head -3 >&2 || true
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| tool | workload | N | workload s | events/s consumed | received | missing | tool CPU s | CPU µs/event |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in $(seq "$rounds"); do
    for load in open exec; do
        for tool in ebpfx ebpfx-16M ebpfx-json libbpf-tools; do
            run_one "$tool" "$load"
        done
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| tool | workload | rounds | missing min / median / max | events/s min / median | CPU µs/event min / median |"
echo "|---|---|---|---|---|---|"
# Columns of a row (split on |): 2 tool, 3 workload, 6 events/s, 8 missing, 10 µs/event.
for load in open exec; do
    for tool in ebpfx ebpfx-16M ebpfx-json libbpf-tools; do
        awk -F'|' -v tool="$tool" -v load="$load" '
            function trim(x) { gsub(/ /, "", x); return x }
            trim($2) == tool && trim($3) == load { n++; m[n] = $8 + 0; e[n] = $6 + 0; c[n] = $10 + 0 }
            function sort(a,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
            function med(a) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
            END {
                if (!n) exit
                sort(m); sort(e); sort(c)
                printf "| %s | %s | %d | %d / %g / %d | %.0f / %.0f | %.2f / %.2f |\n", tool, load, n, m[1], med(m), m[n], e[1], med(e), c[1], med(c)
            }' "$rows"
    done
done
