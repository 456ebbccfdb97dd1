// SPDX-License-Identifier: GPL-2.0
/* Test object: a per-CPU array declaring 2^31 entries, as a corrupted or careless object might
 * (tests/configs/hugemap.yaml, tests/live_map_memory.rs). Loading it would have the kernel
 * allocate 2^31 x 8 bytes per CPU: ebpfx must refuse it before load. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1U << 31);
	__type(key, u32);
	__type(value, u64);
} huge_total SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(hugemap_enter, struct pt_regs *regs, long id)
{
	u32 zero = 0;
	u64 *v = bpf_map_lookup_elem(&huge_total, &zero);

	if (v)
		*v += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
