// SPDX-License-Identifier: GPL-2.0
/* pagefaults: page faults taken in user mode, by command name. Uses the x86
 * exceptions:page_fault_user tracepoint (other architectures do not have it: load fails there).
 * Counts every user fault, minor and major, including ones that end in SIGSEGV. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"
#include "target.bpf.h"

#define COMM_LEN 16

struct comm_key {
	char comm[COMM_LEN]; /* decoded by `string` */
	struct ebpfx_by by;  /* its comm is never asked for: the key has one */
};

/* Per-CPU: faults are frequent and bursty; ebpfx sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	/* The command name alone: without --by the kernel hashes 16 bytes, not the 48 of struct
	 * comm_key. ebpfx sets the key size to the labels asked for (a prefix of comm_key). */
	__uint(key_size, COMM_LEN);
	__uint(value_size, sizeof(u64)); /* no BTF types: the key size may change */
} page_faults_total SEC(".maps");

SEC("tp_btf/page_fault_user")
int BPF_PROG(pagefaults_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	struct comm_key key;

	if (!ebpfx_target_current())
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	ebpfx_by_current(&key.by);
	ebpfx_count_percpu(&page_faults_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
