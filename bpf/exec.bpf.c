// SPDX-License-Identifier: GPL-2.0
/* exec: successful execve()s, by the new command name. sched_process_exec fires after the new
 * program image is in place, so the task's comm is already the new program's name. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"
#include "target.bpf.h"

#define COMM_LEN 16

struct comm_key {
	char comm[COMM_LEN]; /* decoded by `string` */
	struct ebpfx_by by;  /* its comm is never asked for: the key has one */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	/* The command name alone: without --by the kernel hashes 16 bytes, not the 48 of struct
	 * comm_key. ebpfx sets the key size to the labels asked for (a prefix of comm_key). */
	__uint(key_size, COMM_LEN);
	__uint(value_size, sizeof(u64)); /* no BTF types: the key size may change */
} exec_total SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(exec_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct comm_key key;

	if (!ebpfx_target_task(p))
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
	BPF_CORE_READ_STR_INTO(&key.comm, p, comm);
	ebpfx_by_task(&key.by, p);
	ebpfx_count(&exec_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
