/* Shared by the scheduler tools (runqlat, runqlat_cgroup, offcpu): whether sched_switch took
 * its previous task off the CPU still runnable, on every kernel. Linux 5.18 added the previous
 * task's state as a fourth tracepoint argument; older kernels pass (preempt, prev, next) only,
 * so the state is read from the task itself, as the tracepoint did before 5.18.
 * Include after vmlinux.h and bpf_core_read.h. */
#pragma once

#define TASK_RUNNING 0

/* Linux 5.14 renamed task_struct::state (long) to __state (unsigned int). */
struct task_struct___state {
	volatile long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	struct task_struct___state *old = (void *)t;

	if (bpf_core_field_exists(old->state))
		return BPF_CORE_READ(old, state);
	return BPF_CORE_READ(t, __state);
}

/* A task switched out by preemption stays on the run queue whatever its state says (it may
 * have been preempted between setting a sleeping state and calling schedule()). */
static __always_inline bool switched_out_runnable(bool preempt, struct task_struct *prev)
{
	return preempt || task_state(prev) == TASK_RUNNING;
}
