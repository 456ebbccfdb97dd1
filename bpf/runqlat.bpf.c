// SPDX-License-Identifier: GPL-2.0
/* runqlat: scheduler run-queue latency, the time a runnable task waits before it gets a CPU.
 * The clock starts when a task is woken (or created, or preempted while still runnable) and
 * stops when sched_switch puts it on a CPU. Needs the 4-argument sched_switch (kernel >= 5.18). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"

#define MAX_SLOT 36 /* 2^36 ns = 68.7 s; the sum of latencies goes to slot 37 */
#define TASK_RUNNING 0

struct hist_key {
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
	__uint(max_entries, 64);
	__type(key, struct hist_key);
	__type(value, u64);
} run_queue_latency_seconds SEC(".maps");

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
int BPF_PROG(runqlat_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	struct hist_key key;
	u32 tid;
	u64 *tsp, delta;

	/* Preempted while runnable: it is back on the run queue from now on. */
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
	EBPFX_HIST_OBSERVE(run_queue_latency_seconds, &key, delta, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
