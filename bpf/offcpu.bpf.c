// SPDX-License-Identifier: GPL-2.0
/* offcpu: time tasks spend blocked off-CPU (sleeping, waiting for IO, locks, ...), by command
 * name. The clock starts when sched_switch takes a task off the CPU in a non-runnable state and
 * stops when it is switched back in; preempted (still runnable) tasks are not counted here, that
 * is run-queue latency (see runqlat). Uses only the three sched_switch arguments every kernel
 * has (the previous task's state comes from the task: sched.bpf.h). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"
#include "sched.bpf.h"

#define MAX_SLOT 36 /* 2^36 ns = 68.7 s; the sum of blocked time goes to slot 37 */
#define COMM_LEN 16

/* Targets (-p, --comm, ...) select the task that blocked; offcpu adds --by pid,cpu,cgroup. */
#include "target.bpf.h"

struct comm_key {
	char comm[COMM_LEN]; /* decoded by `string` */
	struct ebpfx_by by;  /* of the task that blocked; its comm is never asked for */
	u64 bucket;
};

/* LRU: tasks that block and then exit must not fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u32);   /* thread id */
	__type(value, u64); /* time it went off CPU, ns */
} blocked_since SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct comm_key);
	__type(value, u64);
} offcpu_seconds SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct comm_key key;
	u32 tid;
	u64 *tsp, ts, delta;

	ts = bpf_ktime_get_ns();
	tid = BPF_CORE_READ(prev, pid);
	if (tid != 0 && !switched_out_runnable(preempt, prev))
		bpf_map_update_elem(&blocked_since, &tid, &ts, BPF_ANY);

	tid = BPF_CORE_READ(next, pid);
	if (tid == 0)
		return 0;
	tsp = bpf_map_lookup_elem(&blocked_since, &tid);
	if (!tsp)
		return 0;
	delta = ts - *tsp;
	bpf_map_delete_elem(&blocked_since, &tid);
	if (!ebpfx_target_task(next))
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
	BPF_CORE_READ_STR_INTO(&key.comm, next, comm);
	ebpfx_by_task(&key.by, next);
	EBPFX_HIST_OBSERVE(offcpu_seconds, &key, delta, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
