// SPDX-License-Identifier: GPL-2.0
/* Bench object (benches/serve.rs): a 100,000-entry hash map keyed by (u32 pid, char comm[16])
 * that the bench fills from user space, so that `ebpfx serve` and a one-shot read can be timed
 * on the same map. The program only bumps an existing key on a task rename: it never adds one. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct key_t {
	u32 pid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 100000);
	__type(key, struct key_t);
	__type(value, u64);
} synthetic_total SEC(".maps");

SEC("tp_btf/task_rename")
int BPF_PROG(bigmap_rename, struct task_struct *task, const char *comm)
{
	struct key_t key;
	u64 one = 1, *v;

	__builtin_memset(&key, 0, sizeof(key));
	key.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	v = bpf_map_lookup_elem(&synthetic_total, &key);
	/* Never a new key: the bench fills the map to max_entries itself. */
	if (v)
		__sync_fetch_and_add(v, one);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
