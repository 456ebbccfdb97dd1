// SPDX-License-Identifier: GPL-2.0
/* Test object (tests/live_probe.rs): one hook (sys_enter) carried in three kinds. ebpfx loads
 * only the best one the kernel offers: tp_btf with kernel BTF, raw_tp without it. Each kind
 * counts into its own array slot, so the test sees which one ran. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, u32);
	__type(value, u64);
} kinds_runs_total SEC(".maps");

static __always_inline void count_kind(u32 kind)
{
	u64 *v = bpf_map_lookup_elem(&kinds_runs_total, &kind);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(kinds_tp_btf, struct pt_regs *regs, long id)
{
	count_kind(0);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(kinds_raw_tp, struct pt_regs *regs, long id)
{
	count_kind(1);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int kinds_tracepoint(void *ctx)
{
	count_kind(2);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
