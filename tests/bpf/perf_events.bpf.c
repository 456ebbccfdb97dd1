// SPDX-License-Identifier: GPL-2.0
/* Test object: a perf_event_array counter (docs/config-format.md#perf_event_array-counters).
 * One 8-byte record (the syscall number) per getpid call, and per call of PRIVATE_NR (a number
 * no kernel defines, made only by tests/live_compat.rs, so its count is exact on a busy
 * machine), goes to the perf buffer; ebpfx counts records by their bytes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} syscall_events_total SEC(".maps");

#define PRIVATE_NR 7340999

SEC("tp_btf/sys_enter")
int BPF_PROG(perf_events_sys_enter, struct pt_regs *regs, long id)
{
	u64 rec = (u64)id;

	if (id != 39 && id != PRIVATE_NR) /* getpid on x86_64 */
		return 0;
	bpf_perf_event_output(ctx, &syscall_events_total, BPF_F_CURRENT_CPU, &rec, sizeof(rec));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
