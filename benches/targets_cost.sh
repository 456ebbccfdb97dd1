#!/usr/bin/env bash
# Per-event cost of kernel-side targets (not a timed test; README "Targets: cost").
#
# In the same windows, side by side on the same events: `ebpfx run syscalls` without and with
# `-p PID`, and libbpf-tools' `syscount` without and with `-p PID` (Debian package
# libbpf-tools). A getppid loop (the PID) keeps the system-call rate up. Cost is the kernel's BPF
# run-time statistics (kernel.bpf_stats_enabled=1): run_time_ns / run_cnt of each program over
# the window, read from ebpfx's own prom output and from syscount's /proc/PID/fdinfo. syscount
# may run a program at entry and one at exit; its per-call cost is the sum of its programs'.
# BASELINE=path/to/another/ebpfx adds that binary's unfiltered syscalls to the same windows (e.g.
# a build from before the targets, to see that the unfiltered path did not get slower).
# Usage: benches/targets_cost.sh [SECONDS per window, default 5] [ROUNDS, default 3]. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
ebpfx=${EBPFX:-target/release/ebpfx}
[ "$(id -u)" = 0 ] || { echo "needs root (BPF)" >&2; exit 1; }
command -v syscount >/dev/null || { echo "syscount not found: apt-get install libbpf-tools" >&2; exit 1; }
[ -x "$ebpfx" ] || cargo build --release
old_stats=$(sysctl -n kernel.bpf_stats_enabled)
sysctl -qw kernel.bpf_stats_enabled=1
scratch=$(mktemp -d)
load=""
cleanup() {
    [ -n "$load" ] && kill "$load" 2>/dev/null
    sysctl -qw kernel.bpf_stats_enabled="$old_stats"
    rm -rf "$scratch"
}
trap cleanup EXIT

# The traced workload: getppid as fast as python calls it, for the whole benchmark.
python3 -c 'import os
while True: os.getppid()' &
load=$!

# Over the BPF programs process $1 holds (fdinfo): the sum of run_time_ns, and the largest
# run_cnt (each program runs at most once per system call: that is the number of calls).
prog_stats() {
    local t=0 c=0 f n
    for f in /proc/"$1"/fdinfo/*; do
        grep -q '^prog_type:' "$f" 2>/dev/null || continue
        t=$((t + $(awk '/^run_time_ns:/ {print $2}' "$f")))
        n=$(awk '/^run_cnt:/ {print $2}' "$f")
        [ "$n" -gt "$c" ] && c=$n
    done
    echo "$t $c"
}

# ns per run from ebpfx's prom output (its syscalls_enter program over its window).
ebpfx_ns() {
    awk '/^ebpfx_ebpf_program_run_time_seconds_total\{.*program="syscalls_enter"/ {t=$2}
         /^ebpfx_ebpf_program_run_count_total\{.*program="syscalls_enter"/ {c=$2}
         END { if (c > 0) printf "%.1f %d\n", t * 1e9 / c, c; else print "- 0" }' "$1"
}

printf '%-5s %-28s %12s %12s\n' round tool ns/run runs
for r in $(seq "$rounds"); do
    "$ebpfx" -q run syscalls --for "${secs}s" --format prom >"$scratch/all.prom" &
    a=$!
    "$ebpfx" -q run syscalls --for "${secs}s" --format prom -p "$load" >"$scratch/pid.prom" &
    b=$!
    base=""
    if [ -n "${BASELINE:-}" ]; then
        "$BASELINE" -q run syscalls --for "${secs}s" --format prom >"$scratch/base.prom" &
        base=$!
    fi
    syscount >/dev/null 2>&1 &
    s1=$!
    syscount -p "$load" >/dev/null 2>&1 &
    s2=$!
    sleep 1 # every tool attached: the ebpfx windows and the syscount reads cover the same time
    read -r t1a c1a < <(prog_stats "$s1")
    read -r t2a c2a < <(prog_stats "$s2")
    sleep "$((secs - 1))"
    read -r t1b c1b < <(prog_stats "$s1")
    read -r t2b c2b < <(prog_stats "$s2")
    kill -INT "$s1" "$s2"
    wait "$a" "$b" "$s1" "$s2" $base 2>/dev/null || true
    read -r na ca < <(ebpfx_ns "$scratch/all.prom")
    read -r nb cb < <(ebpfx_ns "$scratch/pid.prom")
    # syscount: every program it runs per call, summed.
    ns1=$(awk -v t=$((t1b - t1a)) -v c=$((c1b - c1a)) 'BEGIN { if (c > 0) printf "%.1f", t / c; else print "-" }')
    ns2=$(awk -v t=$((t2b - t2a)) -v c=$((c2b - c2a)) 'BEGIN { if (c > 0) printf "%.1f", t / c; else print "-" }')
    if [ -n "$base" ]; then
        read -r nz cz < <(ebpfx_ns "$scratch/base.prom")
        printf '%-5s %-28s %12s %12s\n' "$r" "baseline syscalls" "$nz" "$cz"
    fi
    printf '%-5s %-28s %12s %12s\n' "$r" "ebpfx syscalls" "$na" "$ca"
    printf '%-5s %-28s %12s %12s\n' "$r" "ebpfx syscalls -p PID" "$nb" "$cb"
    printf '%-5s %-28s %12s %12s\n' "$r" "syscount (per call)" "$ns1" "$((c1b - c1a))"
    printf '%-5s %-28s %12s %12s\n' "$r" "syscount -p PID (per call)" "$ns2" "$((c2b - c2a))"
done
