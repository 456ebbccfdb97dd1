// SPDX-License-Identifier: GPL-2.0
/* Test object: an fentry program (which this kernel cannot load: BPF trampolines are missing)
 * beside a tp_btf program that works (tests/configs/fentry_mixed.yaml, tests/live_compat.rs).
 * ebpfx must run the tp_btf program and warn about the fentry one; --strict must fail. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} mixed_syscalls_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} mixed_nanosleeps_total SEC(".maps");

SEC("fentry/do_nanosleep")
int BPF_PROG(mixed_nanosleep_fentry)
{
	u32 zero = 0;
	u64 *v = bpf_map_lookup_elem(&mixed_nanosleeps_total, &zero);

	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(mixed_sys_enter, struct pt_regs *regs, long id)
{
	u64 key = (u64)id;

	ebpfx_count(&mixed_syscalls_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
