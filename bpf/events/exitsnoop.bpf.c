// SPDX-License-Identifier: GPL-2.0
/* exitsnoop: one record per process exit (the last thread of a thread group), or per thread
 * exit when `trace_threads` is set, with the exit status and the process's age. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"

/* false: only the exit that ends a thread group; true: every thread's exit. */
const volatile bool trace_threads = false;

struct exit_record {
	struct event_header h;
	__u32 ppid;
	__s32 exit_code; /* as wait(2) reports it: status << 8, or the signal (| 0x80 on core) */
	__u64 age_ns;    /* since the thread group leader started */
};
EVENT_RECORD(struct exit_record);

SEC("tp_btf/sched_process_exit")
int BPF_PROG(exitsnoop_exit, struct task_struct *p)
{
	struct exit_record *rec;

	/* The tracepoint's second argument (group_dead) is recent (6.18 has it, 6.12 does not):
	 * do_exit() has already taken this thread off signal->live when the tracepoint fires, so
	 * a count of zero means the whole thread group is gone, on every kernel. */
	if (!trace_threads && BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	if (!event_wanted())
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (!rec)
		return 0;
	event_header_fill(&rec->h, EVENT_EXIT, sizeof(*rec));
	rec->ppid = BPF_CORE_READ(p, real_parent, tgid);
	rec->exit_code = BPF_CORE_READ(p, exit_code);
	rec->age_ns = rec->h.ts_ns - BPF_CORE_READ(p, group_leader, start_time);
	event_submit(ctx, rec, sizeof(*rec));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
