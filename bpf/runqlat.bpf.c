// SPDX-License-Identifier: GPL-2.0
/* runqlat: scheduler run-queue latency, the time a runnable task waits before it gets a CPU.
 * The clock starts when a task is woken (or created, or preempted while still runnable) and
 * stops when sched_switch puts it on a CPU. Uses only the three sched_switch arguments every
 * kernel has (the previous task's state comes from the task: sched.bpf.h).
 * runqlat_cgroup.bpf.c builds the same program with RUNQLAT_BY_CGROUP: one histogram per cgroup
 * (v2) of the task that waited. At sched_switch `current` is still the previous task, so the
 * cgroup id is read from the incoming one (next->cgroups->dfl_cgrp->kn->id, the value
 * bpf_get_current_cgroup_id() returns once it runs). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"
#include "sched.bpf.h"

#define MAX_SLOT 36 /* 2^36 ns = 68.7 s; the sum of latencies goes to slot 37 */

#ifdef RUNQLAT_BY_CGROUP
#define HIST_MAP run_queue_latency_cgroup_seconds
#define HIST_ENTRIES 16384
#else
#define HIST_MAP run_queue_latency_seconds
#define HIST_ENTRIES 64 /* ebpfx raises it under --by */
#endif

/* Targets (-p, --comm, ...) select the task that waited; runqlat adds --by pid,cpu,comm,cgroup. */
#include "target.bpf.h"

struct hist_key {
#ifdef RUNQLAT_BY_CGROUP
	u64 cgroup; /* cgroup v2 id: decoded by `cgroup` */
#else
	struct ebpfx_by by; /* of the task that waited */
#endif
	u64 bucket;
};

/* LRU: tasks that are woken and exit before running again must not fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);   /* thread id */
	__type(value, u64); /* time it became runnable, ns */
} runnable_since SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, HIST_ENTRIES);
	__type(key, struct hist_key);
	__type(value, u64);
} HIST_MAP SEC(".maps");

static __always_inline void mark_runnable(u32 tid)
{
	u64 ts;

	if (tid == 0) /* idle task */
		return;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&runnable_since, &tid, &ts, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(runqlat_wakeup, struct task_struct *p)
{
	mark_runnable(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(runqlat_wakeup_new, struct task_struct *p)
{
	mark_runnable(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(runqlat_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct hist_key key;
	u32 tid;
	u64 *tsp, delta;

	/* Preempted while runnable: it is back on the run queue from now on. */
	if (switched_out_runnable(preempt, prev))
		mark_runnable(BPF_CORE_READ(prev, pid));

	tid = BPF_CORE_READ(next, pid);
	if (tid == 0)
		return 0;
	tsp = bpf_map_lookup_elem(&runnable_since, &tid);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	bpf_map_delete_elem(&runnable_since, &tid);
	if (!ebpfx_target_task(next))
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
#ifdef RUNQLAT_BY_CGROUP
	key.cgroup = BPF_CORE_READ(next, cgroups, dfl_cgrp, kn, id);
#else
	ebpfx_by_task(&key.by, next);
#endif
	EBPFX_HIST_OBSERVE(HIST_MAP, &key, delta, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
