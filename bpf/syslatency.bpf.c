// SPDX-License-Identifier: GPL-2.0
/* syslatency: time from syscall entry to syscall exit, per syscall number (names decoded in
 * user space). Entry time and number are kept per thread until the same thread exits the call. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"
#include "target.bpf.h"

#define MAX_SLOT 36 /* 2^36 ns = 68.7 s; the sum of latencies goes to slot 37 */

struct start {
	u64 ts; /* entry time, ns */
	u64 id; /* syscall number */
};

struct sys_key {
	u64 id; /* syscall number: decoded by `syscall` */
	struct ebpfx_by by;
	u64 bucket;
};

/* LRU: calls that never return (exit, exit_group, execve of another thread) must not fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64); /* pid_tgid */
	__type(value, struct start);
} syscall_start SEC(".maps");

/* Per-CPU: hot syscalls do not bounce one cache line between CPUs; ebpfx sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct sys_key);
	__type(value, u64);
} syscall_latency_seconds SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(syslatency_enter, struct pt_regs *regs, long id)
{
	u64 tid = bpf_get_current_pid_tgid();
	struct start st = { .ts = bpf_ktime_get_ns(), .id = (u64)id };

	if (!ebpfx_target_current())
		return 0;
	bpf_map_update_elem(&syscall_start, &tid, &st, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(syslatency_exit, struct pt_regs *regs, long ret)
{
	u64 tid = bpf_get_current_pid_tgid();
	struct start *st;
	struct sys_key key;
	u64 delta;

	st = bpf_map_lookup_elem(&syscall_start, &tid);
	if (!st)
		return 0;
	delta = bpf_ktime_get_ns() - st->ts;
	__builtin_memset(&key, 0, sizeof(key));
	key.id = st->id;
	ebpfx_by_current(&key.by);
	bpf_map_delete_elem(&syscall_start, &tid);
	EBPFX_HIST_OBSERVE(syscall_latency_seconds, &key, delta, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
