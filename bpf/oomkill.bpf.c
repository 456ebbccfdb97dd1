// SPDX-License-Identifier: GPL-2.0
/* oomkill: tasks chosen and killed by the OOM killer (system-wide or memory cgroup OOM), by the
 * victim's command name. oom:mark_victim fires once per victim (kernel >= 6.8 passes the task). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"

#define COMM_LEN 16

struct comm_key {
	char comm[COMM_LEN]; /* decoded by `string` */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct comm_key);
	__type(value, u64);
} oom_kills_total SEC(".maps");

SEC("tp_btf/mark_victim")
int BPF_PROG(oomkill_mark_victim, struct task_struct *task, uid_t uid)
{
	struct comm_key key;

	__builtin_memset(&key, 0, sizeof(key));
	BPF_CORE_READ_STR_INTO(&key.comm, task, comm);
	ebpfx_count(&oom_kills_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
