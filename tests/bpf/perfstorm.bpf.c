// SPDX-License-Identifier: GPL-2.0
/* Test object for event runs through a perf event array declared by the object itself
 * (tests/live_events_perf.rs), without bpf/events.bpf.h: one record per getpriority() call
 * whose `which` argument is PERFSTORM_MAGIC (the kernel answers EINVAL), carrying the call's
 * `who` as a sequence number. Every failed bpf_perf_event_output() adds one to this CPU's slot of
 * `perfstorm_lost`, so received + lost = produced. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define PERFSTORM_MAGIC 0x7e58

#if defined(__TARGET_ARCH_x86)
#define NR_getpriority 140
#else
#define NR_getpriority 141
#endif

struct perfstorm_record {
	__u64 ts_ns;
	__u32 pid;
	__u32 seq;
	char comm[16];
};

/* Names the record type in BTF for `ebpfx check` (never read). */
struct perfstorm_record *const volatile events_record = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perfstorm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} perfstorm_lost SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(perfstorm_enter, struct pt_regs *regs, long id)
{
	struct perfstorm_record r;
	__u32 zero = 0;
	__u64 *lost;

	if (id != NR_getpriority || (__u32)PT_REGS_PARM1_CORE_SYSCALL(regs) != PERFSTORM_MAGIC)
		return 0;
	r.ts_ns = bpf_ktime_get_ns();
	r.pid = bpf_get_current_pid_tgid() >> 32;
	r.seq = (__u32)PT_REGS_PARM2_CORE_SYSCALL(regs);
	bpf_get_current_comm(&r.comm, sizeof(r.comm));
	if (bpf_perf_event_output(ctx, &perfstorm, BPF_F_CURRENT_CPU, &r, sizeof(r)) != 0) {
		lost = bpf_map_lookup_elem(&perfstorm_lost, &zero);
		if (lost)
			*lost += 1;
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
