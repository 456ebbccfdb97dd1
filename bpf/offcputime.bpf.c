// SPDX-License-Identifier: GPL-2.0
/* offcputime: time tasks spend blocked off-CPU (sleep, IO, locks, ...) by the kernel and user
 * stack they blocked in, with command and process id. When sched_switch takes a task off the
 * CPU in a sleeping state, its stacks (the current task's: the tracepoint runs in its context)
 * and the time are kept per thread; when the task is switched back in, the time it was off the
 * CPU, in microseconds, is added to the count of that key. Preempted (still runnable) tasks are
 * not counted: that is run-queue latency (runqlat). The key holds stack ids into a stack-trace
 * map (stacks.bpf.h), as in profile; ebpfx reads the frames and the `kstack`/`ustack` decoders
 * symbolize them, so folded/flamegraph output works.
 * Targets (-p, --tid, --comm, --cgroup, -- COMMAND) through target.bpf.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"
#include "target.bpf.h"
#include "stacks.bpf.h"

#define COMM_LEN 16
#define TASK_RUNNING 0
#define KSTACK_SKIP 2 /* frames: this program, bpf_trace_run4 */

struct stack_key {
	char comm[COMM_LEN]; /* decoded by `string` */
	u32 pid;             /* process id (tgid); `uint`, read by `ustack` */
	s32 kstack;          /* kernel stack id in offcpu_stacks, or a negative error */
	s32 ustack;          /* user stack id in offcpu_stacks, or a negative error */
	u32 _pad;
};

struct blocked {
	u64 since; /* ns */
	struct stack_key key;
};

/* Sized at load by ebpfx: depth perf_event_max_stack, one entry per possible count key
 * (a quarter of that for the spill map). */
EBPFX_STACK_MAPS(offcpu_stacks);

/* LRU: tasks that block and then exit must not fill it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, u32); /* thread id */
	__type(value, struct blocked);
} offcpu_blocked SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stack_key);
	__type(value, u64);
} offcpu_time_microseconds_total SEC(".maps");

/* Linux 5.14 renamed task_struct::state (long) to __state (unsigned int). */
struct task_struct___offcpu_old {
	volatile long state;
} __attribute__((preserve_access_index));

static __always_inline bool went_to_sleep(bool preempt, struct task_struct *prev)
{
	struct task_struct___offcpu_old *old = (void *)prev;
	long state;

	/* Preempted: still on the run queue, whatever its state says. */
	if (preempt)
		return false;
	if (bpf_core_field_exists(old->state))
		state = BPF_CORE_READ(old, state);
	else
		state = BPF_CORE_READ(prev, __state);
	return state != TASK_RUNNING;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(offcputime_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u64 now = bpf_ktime_get_ns();
	struct blocked blk, *b;
	u32 tid;
	u64 delta;

	tid = BPF_CORE_READ(prev, pid);
	if (tid != 0 && went_to_sleep(preempt, prev) && ebpfx_target_current()) {
		__builtin_memset(&blk, 0, sizeof(blk));
		blk.since = now;
		bpf_get_current_comm(blk.key.comm, sizeof(blk.key.comm));
		blk.key.pid = BPF_CORE_READ(prev, tgid);
		/* The kernel stack skips this program and the tracepoint's trampoline
		 * (bpf_trace_run4): it starts at __schedule. A kernel thread has no user stack
		 * (-EFAULT). */
		blk.key.kstack = ebpfx_stack_id(ctx, &offcpu_stacks, &offcpu_stacks_spill, KSTACK_SKIP);
		blk.key.ustack = ebpfx_stack_id(ctx, &offcpu_stacks, &offcpu_stacks_spill, BPF_F_USER_STACK);
		bpf_map_update_elem(&offcpu_blocked, &tid, &blk, BPF_ANY);
	}

	tid = BPF_CORE_READ(next, pid);
	if (tid == 0)
		return 0;
	b = bpf_map_lookup_elem(&offcpu_blocked, &tid);
	if (!b)
		return 0;
	delta = (now - b->since) / 1000;
	if (delta > 0)
		ebpfx_count(&offcpu_time_microseconds_total, &b->key, delta);
	bpf_map_delete_elem(&offcpu_blocked, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
