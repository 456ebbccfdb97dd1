// SPDX-License-Identifier: GPL-2.0
/* syscalls: system calls made, by syscall number (decoded to names in user space). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

/* Per-CPU: no cross-CPU cache-line bouncing on the hot path; ebpfx sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} syscalls_total SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(syscalls_enter, struct pt_regs *regs, long id)
{
	u64 key = (u64)id;

	/* Creating a key races with other CPUs creating it: ebpfx_count_percpu keeps both counts. */
	ebpfx_count_percpu(&syscalls_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
