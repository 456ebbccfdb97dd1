// SPDX-License-Identifier: GPL-2.0
/* syscalls: system calls made, by syscall number (decoded to names in user space); targets and
 * kernel-side --by pid,comm,cgroup through target.bpf.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"
#include "target.bpf.h"

struct sys_key {
	u64 id; /* syscall number: decoded by `syscall` */
	struct ebpfx_by by;
};

/* Per-CPU: no cross-CPU cache-line bouncing on the hot path; ebpfx sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024); /* ebpfx raises it under --by */
	/* The syscall number alone: without --by the kernel hashes 8 bytes, not the 40 of struct
	 * sys_key. ebpfx sets the key size to the labels asked for (a prefix of sys_key). */
	__uint(key_size, sizeof(u64));
	__uint(value_size, sizeof(u64)); /* no BTF types: the key size may change */
} syscalls_total SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(syscalls_enter, struct pt_regs *regs, long id)
{
	struct sys_key key;

	if (!ebpfx_target_current())
		return 0;
	key.id = (u64)id;
	/* Without --by the map's key is key.id alone: the rest is neither read nor filled. */
	if (ebpfx_by) {
		__builtin_memset(&key.by, 0, sizeof(key.by));
		ebpfx_by_current(&key.by);
	}
	/* Creating a key races with other CPUs creating it: ebpfx_count_percpu keeps both counts. */
	ebpfx_count_percpu(&syscalls_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
