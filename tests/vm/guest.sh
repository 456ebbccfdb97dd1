#!/bin/sh
# guest.sh: runs every ebpfx built-in with a workload of its own, the compat configs with
# kprobe/fentry sections, `--probe kernel:GLOB`, targets (-p, --cgroup, -- COMMAND, --by pid,comm),
# offcputime, the event tools (ring buffers and perf event arrays) and `check --attach`, and prints one line per
# case:  `CASE <name> PASS|FAIL <detail>`, then `SUMMARY <passed> passed, <failed> failed`.
# Exit status 0 only when every case passed.
#
# Runs as root inside the matrix's VMs (tests/vm/init) and, for the host kernel, on the host
# itself (tests/vm/matrix.sh). Only busybox applets (through `busybox NAME` where the host may
# lack them), `ip`/`tc` from iproute2 and the files of $EBPFX_VM_DATA are used.
#
# Environment:
#   EBPFX_VM_DATA   directory with ebpfx, functarget and compat/ (config dir of test configs)
#   EBPFX_VM_IO     where block IO goes: a scratch block device (VM) or a file (host)
#   EBPFX_VM_DISK   the disk that IO reaches, as in /sys/block (vda)
#   EBPFX_VM_STRICT 1: the kprobe/fentry compat configs must attach every program (--strict)
#   EBPFX_VM_ONLY   space-separated case names to run (default: all)
#   EBPFX_VM_FLAGS  extra ebpfx options put before every command (e.g. -vv for libbpf's log)
#   EBPFX_VM_IP, EBPFX_VM_TC  iproute2's ip and tc, by path (busybox's shell prefers its own
#                   applets to $PATH, and its ip has no netns, its tc no BPF)
set -u
DATA=${EBPFX_VM_DATA:?EBPFX_VM_DATA not set}
IO=${EBPFX_VM_IO:?EBPFX_VM_IO not set}
DISK=${EBPFX_VM_DISK:-vda}
STRICT=${EBPFX_VM_STRICT:-0}
ONLY=${EBPFX_VM_ONLY:-}
EBPFX=$DATA/ebpfx
IP=${EBPFX_VM_IP:-ip}
TC=${EBPFX_VM_TC:-tc}
WINDOW=2s
BB=busybox
WORK=$(mktemp -d /tmp/ebpfx-vm.XXXXXX) || exit 1
STOP=$WORK/stop
NS=ebpfx-vm-$$
CG=/sys/fs/cgroup/ebpfx-vm-oom-$$
CGT="" # a cgroup v2 directory of the targets cases (set up below)
PORT=47311
PASSED=0
FAILED=0

cleanup() {
	touch "$STOP"
	$IP netns del "$NS" 2>/dev/null
	rmdir "$CG" 2>/dev/null
	[ -n "$CGT" ] && { rmdir "$CGT/sub" "$CGT"; } 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- workloads: each runs once; `loop NAME` repeats it until the case ends -------------------
w_io() {
	$BB dd if=/dev/zero of="$IO" bs=4k count=64 oflag=direct conv=notrunc 2>/dev/null
	$BB dd if="$IO" of=/dev/null bs=64k count=4 iflag=direct 2>/dev/null
}
w_exec() {
	for _ in 1 2 3 4 5 6 7 8; do $BB true; done
}
w_spin() {
	i=0
	while [ $i -lt 3000 ]; do i=$((i + 1)); done
}
w_runq() { # more runnable threads than CPUs
	w_spin & w_spin & w_spin & w_spin &
	wait
}
w_sleep() {
	$BB sleep 0.02
}
w_oom() { # a dd whose 64 MiB buffer cannot fit in its cgroup's 16 MiB
	$BB sh -c "echo \$\$ > $CG/cgroup.procs && exec $BB dd if=/dev/zero of=/dev/null bs=64M count=1" 2>/dev/null
}
w_tcp() { # 4 MiB over loopback, in the namespace $1 (or here)
	ns=${1:-}
	run=""
	[ -n "$ns" ] && run="$IP netns exec $ns"
	$run $BB timeout 10 $BB nc -l -p $PORT >/dev/null 2>&1 &
	srv=$!
	$BB sleep 0.2
	$BB dd if=/dev/zero bs=64k count=64 2>/dev/null | $run $BB timeout 10 $BB nc 127.0.0.1 $PORT >/dev/null 2>&1
	wait $srv 2>/dev/null
}
w_lossy_tcp() { w_tcp "$NS"; }
w_funcs() { "$DATA/functarget" 1 5 13 29 >/dev/null; }
w_none() { $BB sleep 0.2; }
w_open() { # opens of a missing path and of a file that exists
	$BB cat "$WORK/missing" /proc/version >/dev/null 2>&1
}
w_kill() { # signal 0 to ourselves (kill(2) checks and sends nothing)
	for _ in 1 2 3 4; do kill -0 $$; done
}
w_mount() { # a tmpfs mounted and unmounted
	$BB mkdir -p "$WORK/mnt" && $BB mount -t tmpfs ebpfx-vm "$WORK/mnt" && $BB umount "$WORK/mnt"
	$BB sleep 0.05
}

w_stat() { # stat of a missing path
	$BB stat "$WORK/missing" >/dev/null 2>&1
	$BB sleep 0.02
}
w_lookup() { # a host name lookup through libc.so.6 (ebpfx resolves its listen address first)
	"$EBPFX" serve exec --web.listen-address ebpfx-vm-lookup:0 >/dev/null 2>&1
	$BB sleep 0.05
}

WPID=""
loop() {
	rm -f "$STOP"
	( while [ ! -e "$STOP" ]; do "w_$1"; done ) >/dev/null 2>&1 &
	WPID=$!
}
unloop() {
	touch "$STOP"
	[ -n "$WPID" ] && wait "$WPID" 2>/dev/null
	WPID=""
}

# ---- cases ----------------------------------------------------------------------------------
pass() { PASSED=$((PASSED + 1)); echo "CASE $1 PASS $2"; }
fail() {
	FAILED=$((FAILED + 1))
	echo "CASE $1 FAIL $2"
	[ -s "$WORK/$1.err" ] && $BB tail -c 6000 "$WORK/$1.err" | sed "s/^/    $1 ! /"
	[ -s "$WORK/$1.out" ] && grep -v '^#' "$WORK/$1.out" | $BB head -c 1500 | sed "s/^/    $1 | /"
}
wanted() { [ -z "$ONLY" ] || echo " $ONLY " | grep -q " $1 "; }

# Sample lines of the config's own metrics (not ebpfx's about itself) with a value above zero.
samples() {
	grep -v -E '^(#|ebpfx_(ebpf_program_|enabled_configs|window_|decoder_errors))' "$1" |
		awk '$NF + 0 > 0 { n++ } END { print n + 0 }'
}
skip() { echo "CASE $1 SKIP $2"; }

# EVERY: when set to "METRIC NEEDLE", every sample line of METRIC must hold NEEDLE (a fixed
# string), e.g. a target's pid: a filter in the kernel leaves no series of other tasks.
EVERY=""
others() { # FILE -> how many sample lines of EVERY's metric lack its needle
	grep "^${EVERY%% *}{" "$1" | grep -vcF "${EVERY#* }"
}

# run_case NAME WORKLOAD PATTERN -- EBPFX-ARGS...: ebpfx must exit 0, print at least one non-zero
# sample, and (when PATTERN is not empty) a line matching PATTERN (grep -E). WORKLOAD `-`: the
# caller started one (`loop`) already.
run_case() {
	name=$1 workload=$2 pattern=$3
	shift 4
	wanted "$name" || return 0
	[ "$workload" = - ] || loop "$workload"
	start=$(cut -d' ' -f1 /proc/uptime)
	"$EBPFX" ${EBPFX_VM_FLAGS:-} "$@" --for "$WINDOW" --format prom >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null
	rc=$?
	end=$(cut -d' ' -f1 /proc/uptime)
	unloop
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	n=$(samples "$WORK/$name.out")
	if [ $rc -ne 0 ]; then
		fail "$name" "exit $rc (${secs}s)"
	elif [ "$n" -eq 0 ]; then
		fail "$name" "no sample above zero (${secs}s)"
	elif [ -n "$pattern" ] && ! grep -Eq "$pattern" "$WORK/$name.out"; then
		fail "$name" "$n samples, none matches $pattern (${secs}s)"
	elif [ -n "$EVERY" ] && [ "$(others "$WORK/$name.out")" -gt 0 ]; then
		fail "$name" "$(others "$WORK/$name.out") series of ${EVERY%% *} without ${EVERY#* } (${secs}s)"
	else
		pass "$name" "$n samples (${secs}s)"
	fi
}

# ---- set-up ---------------------------------------------------------------------------------
[ -d /sys/kernel/tracing/events ] || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
DEV=$(cat "/sys/block/$DISK/dev" 2>/dev/null || echo "?")
if [ -d /sys/fs/cgroup/memory ]; then # cgroup v1 memory controller (hybrid hosts)
	CG=/sys/fs/cgroup/memory/ebpfx-vm-oom-$$
	mkdir -p "$CG" && echo 16777216 >"$CG/memory.limit_in_bytes"
else
	echo +memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
	mkdir -p "$CG" && echo 16777216 >"$CG/memory.max" && { echo 0 >"$CG/memory.swap.max"; } 2>/dev/null
fi
# A network namespace of our own whose loopback drops packets, for TCP retransmits: netem where
# the kernel has it, else the tests' tc BPF filter that drops 30% of what loopback receives.
$IP netns add "$NS" && $IP -n "$NS" link set lo up &&
	{ $IP netns exec "$NS" $TC qdisc add dev lo root netem loss 20% 2>/dev/null ||
		{ $IP netns exec "$NS" $TC qdisc add dev lo clsact &&
			$IP netns exec "$NS" $TC filter add dev lo ingress bpf direct-action obj "$DATA/compat/drop30.bpf.o" sec tc; }; } ||
	echo "guest: lossy namespace set-up failed (tcpretrans will fail)"
echo "guest: kernel $(uname -r), disk $DISK ($DEV), $(nproc) CPUs"

# ---- the built-ins --------------------------------------------------------------------------
run_case biolatency io "device=\"$DISK\"" -- run biolatency
run_case biosize io "device=\"$DISK\"" -- run biosize
# (busybox's shell runs its applets through /proc/self/exe: comm "exe")
run_case exec exec 'comm="(busybox|true|exe)"' -- run exec
run_case funccount funcs 'function="ebpfx_count_b"' -- run funccount --probe "$DATA/functarget:ebpfx_count_*"
run_case funclatency funcs 'function="ebpfx_sleepy"' -- run funclatency --probe "$DATA/functarget:ebpfx_sleepy"
run_case hardirqs io "" -- run hardirqs
run_case offcpu sleep 'comm="(busybox|sleep)"' -- run offcpu
run_case oomkill oom 'comm="(dd|busybox)"' -- run oomkill
run_case pagefaults exec "" -- run pagefaults
run_case profile runq "" -- run profile
run_case runqlat runq "" -- run runqlat
run_case runqlat_cgroup runq 'cgroup="' -- run runqlat_cgroup
run_case softirqs io "" -- run softirqs
run_case syscalls exec "" -- run syscalls
run_case syslatency exec "" -- run syslatency
run_case tcpflows tcp "dport=\"$PORT\"" -- run tcpflows --port "$PORT"
run_case tcpretrans lossy_tcp "dport=\"$PORT\"" -- run tcpretrans
run_case timers sleep "" -- run timers

# ---- targets filtered in the kernel (bpf/target.bpf.h) and kernel-side --by labels ----------
# -p: only the traced loop's own system calls, beside a second loop making the same ones.
if wanted syscalls_pid; then
	loop exec
	mine=$WPID
	( while [ ! -e "$STOP" ]; do w_exec; done ) >/dev/null 2>&1 &
	noise=$!
	EVERY="ebpfx_syscalls_total pid=\"$mine\""
	run_case syscalls_pid - 'syscall="' -- run syscalls -p "$mine" --by syscall,pid
	EVERY=""
	wait "$noise" 2>/dev/null
fi
# --cgroup: tasks in a cgroup below the target one (the ancestor walk, ancestor_ids[] before
# Linux 6.1, ancestors[] since), nothing of the rest of the machine.
for r in /sys/fs/cgroup /sys/fs/cgroup/unified; do
	[ -e "$r/cgroup.controllers" ] && { CGT=$r/ebpfx-vm-tgt-$$; break; }
done
if wanted syscalls_cgroup; then
	if [ -n "$CGT" ] && mkdir -p "$CGT/sub"; then
		rm -f "$STOP"
		$BB sh -c "echo \$\$ > $CGT/sub/cgroup.procs && while [ ! -e $STOP ]; do $BB true; done" >/dev/null 2>&1 &
		WPID=$!
		i=0
		while [ ! -s "$CGT/sub/cgroup.procs" ] && [ $i -lt 50 ]; do $BB sleep 0.1; i=$((i + 1)); done
		EVERY="ebpfx_syscalls_total cgroup=\"$CGT/sub\""
		run_case syscalls_cgroup - 'syscall="' -- run syscalls --cgroup "$CGT" --by syscall,cgroup
		EVERY=""
	else
		skip syscalls_cgroup "no cgroup v2 hierarchy"
	fi
fi
# -- COMMAND: the command and the children it forks (followed in the kernel), not a loop beside
# it; the window ends when the command exits (long before --for), whose status goes to stderr.
if wanted syscalls_command; then
	rm -f "$STOP"
	( while [ ! -e "$STOP" ]; do w_exec; done ) >/dev/null 2>&1 &
	noise=$!
	name=syscalls_command
	start=$(cut -d' ' -f1 /proc/uptime)
	"$EBPFX" ${EBPFX_VM_FLAGS:-} run syscalls --by syscall,pid --for 120s --format prom \
		-- $BB sh -c "$BB sleep 0.3 & wait; ( $BB sleep 0.2 ); exit 3" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null
	rc=$?
	end=$(cut -d' ' -f1 /proc/uptime)
	touch "$STOP"
	wait "$noise" 2>/dev/null
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	pids=$(grep '^ebpfx_syscalls_total{' "$WORK/$name.out" | grep -o 'pid="[0-9]*"' | sort -u | wc -l)
	if [ $rc -ne 0 ]; then
		fail $name "exit $rc (${secs}s)"
	elif ! grep -q 'exited with status 3' "$WORK/$name.err"; then
		fail $name "no report of the command's status 3 (${secs}s)"
	elif grep -q "pid=\"$noise\"" "$WORK/$name.out"; then
		fail $name "the loop beside the command was counted (${secs}s)"
	elif [ "$pids" -lt 3 ]; then
		fail $name "$pids process(es) counted, want the command and its 2 children (${secs}s)"
	elif awk -v s="$secs" 'BEGIN { exit !(s >= 60) }'; then
		fail $name "the window did not end with the command (${secs}s)"
	else
		pass $name "$pids processes, window ${secs}s"
	fi
fi
run_case runqlat_by_pid runq 'comm="[^"]*",pid="[0-9]+"' -- run runqlat --by pid,comm
run_case offcputime sleep 'kstack="[^"]*schedule' -- run offcputime

# ---- event tools (bpf/events, ring buffers): their events counted over the window (prom) ------
run_case execsnoop exec 'execsnoop_events_total\{comm="(busybox|true|exe|sh)"' -- run execsnoop
run_case exitsnoop exec 'exitsnoop_events_total\{' -- run exitsnoop
run_case opensnoop open 'opensnoop_events_total\{comm="(busybox|cat|exe)"' -- run opensnoop
run_case biosnoop io "biosnoop_events_total\\{[^}]*disk=\"$DISK\"" -- run biosnoop
# biosnoop names the submitter of each request on every kernel (block_getrq and the bio merge
# tracepoints; block_io_start is 6.5+ only): with -p, only that process's IO is kept, so each of
# the 16 direct writes of a dd (exec'd by the waiting shell, same pid) must be there, under its
# pid and comm. Before, 5.10 and 6.1 knew no submitter: pid 0, and nothing at all under -p.
if wanted biosnoop_pid; then
	name=biosnoop_pid
	rm -f "$WORK/go"
	$BB sh -c "while [ ! -e $WORK/go ]; do $BB sleep 0.05; done; exec $BB dd if=/dev/zero of=$IO bs=4k count=16 oflag=direct conv=notrunc" 2>/dev/null &
	ddpid=$!
	start=$(cut -d' ' -f1 /proc/uptime)
	"$EBPFX" ${EBPFX_VM_FLAGS:-} -v run biosnoop -f json -p "$ddpid" --for 120s >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
	epid=$!
	i=0
	while ! grep -q "window started" "$WORK/$name.err" 2>/dev/null && [ $i -lt 1200 ] && kill -0 $epid 2>/dev/null; do
		$BB sleep 0.05
		i=$((i + 1))
	done
	touch "$WORK/go"
	wait "$ddpid"
	ddrc=$?
	$BB sleep 0.3
	kill -INT $epid 2>/dev/null
	wait $epid
	rc=$?
	end=$(cut -d' ' -f1 /proc/uptime)
	secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
	writes=$(grep -c '"op":"write"' "$WORK/$name.out")
	mine=$(grep '"op":"write"' "$WORK/$name.out" | grep -c "\"pid\":$ddpid,")
	comms=$(grep '"op":"write"' "$WORK/$name.out" | grep -o '"comm":"[^"]*"' | sort -u)
	if [ $rc -ne 0 ] || [ $ddrc -ne 0 ]; then
		fail $name "ebpfx exit $rc, dd exit $ddrc (${secs}s)"
	elif [ "$writes" -ne 16 ] || [ "$mine" -ne 16 ]; then
		fail $name "$writes write records, $mine of them with pid $ddpid; want dd's 16 (${secs}s)"
	elif ! echo "$comms" | grep -Eqx '"comm":"(busybox|dd)"'; then
		fail $name "comms $(echo $comms), want busybox or dd (${secs}s)"
	else
		pass $name "16 writes of pid $ddpid, $(echo $comms) (${secs}s)"
	fi
fi
run_case tcpconnect tcp 'tcpconnect_events_total\{' -- run tcpconnect
run_case tcplife tcp 'tcplife_events_total\{' -- run tcplife
run_case killsnoop kill 'killsnoop_events_total\{' -- run killsnoop
run_case mountsnoop mount 'mountsnoop_events_total\{' -- run mountsnoop
run_case tcpstates tcp 'tcpstates_events_total\{newstate="ESTABLISHED",oldstate="SYN_SENT"\}' -- run tcpstates
run_case bindsnoop tcp "bindsnoop_events_total\\{[^}]*port=\"$PORT\"" -- run bindsnoop
run_case statsnoop stat 'statsnoop_events_total\{[^}]*ret="ENOENT"' -- run statsnoop
run_case tcpaccept tcp "tcpaccept_events_total\\{[^}]*lport=\"$PORT\"" -- run tcpaccept
run_case gethostlatency lookup 'gethostlatency_events_total\{comm="ebpfx",host="ebpfx-vm-lookup"' -- run gethostlatency

# ---- event tools through perf event arrays (--event-buffer perf: the kernels before 5.8) -------
run_case execsnoop_perf exec 'execsnoop_events_total\{comm="(busybox|true|exe|sh)"' -- run execsnoop --event-buffer perf
run_case exitsnoop_perf exec 'exitsnoop_events_total\{' -- run exitsnoop --event-buffer perf
run_case opensnoop_perf open 'opensnoop_events_total\{comm="(busybox|cat|exe)"' -- run opensnoop --event-buffer perf
run_case biosnoop_perf io "biosnoop_events_total\\{[^}]*disk=\"$DISK\"" -- run biosnoop --event-buffer perf
run_case tcpconnect_perf tcp 'tcpconnect_events_total\{' -- run tcpconnect --event-buffer perf
run_case tcplife_perf tcp 'tcplife_events_total\{' -- run tcplife --event-buffer perf
run_case killsnoop_perf kill 'killsnoop_events_total\{' -- run killsnoop --event-buffer perf
run_case mountsnoop_perf mount 'mountsnoop_events_total\{' -- run mountsnoop --event-buffer perf
run_case tcpstates_perf tcp 'tcpstates_events_total\{newstate="ESTABLISHED",oldstate="SYN_SENT"\}' -- run tcpstates --event-buffer perf
run_case bindsnoop_perf tcp "bindsnoop_events_total\\{[^}]*port=\"$PORT\"" -- run bindsnoop --event-buffer perf
run_case statsnoop_perf stat 'statsnoop_events_total\{[^}]*ret="ENOENT"' -- run statsnoop --event-buffer perf
run_case tcpaccept_perf tcp "tcpaccept_events_total\\{[^}]*lport=\"$PORT\"" -- run tcpaccept --event-buffer perf
run_case gethostlatency_perf lookup 'gethostlatency_events_total\{comm="ebpfx",host="ebpfx-vm-lookup"' -- run gethostlatency --event-buffer perf

# ---- kernel functions (kprobes), compat configs with kprobe/fentry sections, check ------------
if [ -e /sys/kernel/tracing/kprobe_events ] || [ -e /sys/kernel/debug/tracing/kprobe_events ]; then
run_case kprobe_vfs_read exec 'function="vfs_read"' -- run funccount --probe kernel:vfs_read
# A glob that takes in an __init function (vfs_caches_init), which cannot take a kprobe.
run_case kprobe_glob exec 'function="vfs_read"' -- run funccount --probe 'kernel:vfs_*'
else
	skip kprobe_vfs_read "no kprobes in this kernel"
	skip kprobe_glob "no kprobes in this kernel"
fi
strict=""
[ "$STRICT" = 1 ] && strict=--strict
run_case compat_kprobe_mixed exec "" -- --config-dir "$DATA/compat" run kprobe_mixed $strict
run_case compat_fentry_mixed exec "" -- --config-dir "$DATA/compat" run fentry_mixed $strict
if wanted check_attach; then
	if "$EBPFX" check --attach biolatency biosize runqlat offcpu >"$WORK/check_attach.out" 2>"$WORK/check_attach.err"; then
		pass check_attach "check --attach exit 0"
	else
		fail check_attach "check --attach exit $?"
	fi
fi

echo "SUMMARY $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
