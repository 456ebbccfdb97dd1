// SPDX-License-Identifier: GPL-2.0
/* Test object: a tp_btf program (attaches) beside a kprobe program, which loads everywhere but
 * attaches only on kernels with kprobes (not the test machine's). The tp_btf program comes
 * first, so it is attached before the kprobe fails: --strict must leave nothing attached. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} kmixed_syscalls_total SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(kmixed_sys_enter, struct pt_regs *regs, long id)
{
	u64 key = (u64)id;

	ebpfx_count(&kmixed_syscalls_total, &key, 1);
	return 0;
}

SEC("kprobe/do_nanosleep")
int BPF_KPROBE(kmixed_nanosleep)
{
	u64 key = ~0ULL;

	ebpfx_count(&kmixed_syscalls_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
