// SPDX-License-Identifier: GPL-2.0
/* runqlat_cgroup: scheduler run-queue latency per cgroup (v2) of the task that waited.
 * Same clock as runqlat: starts when a task is woken, created, or preempted while runnable,
 * stops when sched_switch puts it on a CPU. At that point `current` is still the previous
 * task, so the cgroup id is read from the incoming task (next->cgroups->dfl_cgrp->kn->id,
 * the value bpf_get_current_cgroup_id() returns once it runs). Kernel >= 5.18. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"

#define MAX_SLOT 36 /* 2^36 ns = 68.7 s; the sum of latencies goes to slot 37 */
#define TASK_RUNNING 0

struct cgroup_key {
	u64 cgroup; /* cgroup v2 id: decoded by `cgroup` */
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);   /* thread id */
	__type(value, u64); /* time it became runnable, ns */
} runnable_since SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct cgroup_key);
	__type(value, u64);
} run_queue_latency_cgroup_seconds SEC(".maps");

static __always_inline void mark_runnable(u32 tid)
{
	u64 ts;

	if (tid == 0) /* idle task */
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&runnable_since, &tid, &ts, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(runqlat_cgroup_wakeup, struct task_struct *p)
{
	mark_runnable(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(runqlat_cgroup_wakeup_new, struct task_struct *p)
{
	mark_runnable(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(runqlat_cgroup_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct cgroup_key key;
	u32 tid;
	u64 *tsp, delta;

	if (prev_state == TASK_RUNNING)
		mark_runnable(BPF_CORE_READ(prev, pid));

	tid = BPF_CORE_READ(next, pid);
	if (tid == 0)
		return 0;
	tsp = bpf_map_lookup_elem(&runnable_since, &tid);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&runnable_since, &tid);
	__builtin_memset(&key, 0, sizeof(key));
	key.cgroup = BPF_CORE_READ(next, cgroups, dfl_cgrp, kn, id);
	EBPFX_HIST_OBSERVE(run_queue_latency_cgroup_seconds, &key, delta, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
