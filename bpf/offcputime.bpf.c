// SPDX-License-Identifier: GPL-2.0
/* offcputime: time tasks spend blocked off-CPU (sleep, IO, locks, ...) by the kernel and user
 * stack they blocked in, with command and process id. When sched_switch takes a task off the
 * CPU in a sleeping state, its stacks (the current task's: the tracepoint runs in its context)
 * and the time are kept per thread; when the task is switched back in, the time it was off the
 * CPU, in microseconds, is added to the count of that key. Preempted (still runnable) tasks are
 * not counted: that is run-queue latency (runqlat). Stacks are stored inline in the key, as in
 * profile, so the `kstack`/`ustack` decoders symbolize them and folded/flamegraph output works.
 * Targets (-p, --tid, --comm, --cgroup, -- COMMAND) through target.bpf.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"
#include "target.bpf.h"

#define COMM_LEN 16
#define MAX_FRAMES 32
#define TASK_RUNNING 0
#define KSTACK_SKIP 2 /* frames: this program, bpf_trace_run4 */

struct stack_key {
	char comm[COMM_LEN]; /* decoded by `string` */
	u32 pid;             /* process id (tgid); `uint`, read by `ustack` */
	u32 _pad;
	u64 kstack[MAX_FRAMES]; /* kernel return addresses, leaf first, zero-filled */
	u64 ustack[MAX_FRAMES]; /* user return addresses, leaf first, zero-filled */
};

struct blocked {
	u64 since; /* ns */
	struct stack_key key;
};

/* Larger than the 512-byte BPF stack: built in a per-CPU slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct blocked);
} offcpu_scratch SEC(".maps");

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
	struct blocked *b;
	u32 tid, zero = 0;
	u64 delta;

	tid = BPF_CORE_READ(prev, pid);
	if (tid != 0 && went_to_sleep(preempt, prev) && ebpfx_target_current()) {
		b = bpf_map_lookup_elem(&offcpu_scratch, &zero);
		if (b) {
			__builtin_memset(&b->key, 0, offsetof(struct stack_key, kstack));
			b->since = now;
			bpf_get_current_comm(b->key.comm, sizeof(b->key.comm));
			b->key.pid = BPF_CORE_READ(prev, tgid);
			/* bpf_get_stack zero-fills what it does not write (all of it on error: a
			 * kernel thread has no user stack). The kernel stack skips this program and
			 * the tracepoint's trampoline (bpf_trace_run4): it starts at __schedule. */
			bpf_get_stack(ctx, b->key.kstack, sizeof(b->key.kstack), KSTACK_SKIP);
			bpf_get_stack(ctx, b->key.ustack, sizeof(b->key.ustack), BPF_F_USER_STACK);
			bpf_map_update_elem(&offcpu_blocked, &tid, b, BPF_ANY);
		}
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
