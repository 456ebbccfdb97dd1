// SPDX-License-Identifier: GPL-2.0
/* Test object for event runs (tests/live_events.rs): one record per getpriority() call whose
 * `which` argument is the magic EVSTORM_MAGIC (the kernel answers EINVAL), carrying the call's
 * `who` as a sequence number. Nobody else makes such calls, so the test knows exactly how many
 * records were produced. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"

#define EVSTORM_MAGIC 0x7e57

#if defined(__TARGET_ARCH_x86)
#define NR_getpriority 140
#else
#define NR_getpriority 141
#endif

struct storm_record {
	struct event_header h;
	__u32 seq;
	__u32 _pad;
};
EVENT_RECORD(struct storm_record);

SEC("tp_btf/sys_enter")
int BPF_PROG(evstorm_enter, struct pt_regs *regs, long id)
{
	struct storm_record *r;

	if (id != NR_getpriority || (__u32)PT_REGS_PARM1_CORE_SYSCALL(regs) != EVSTORM_MAGIC)
		return 0;
	r = event_reserve(sizeof(*r));
	if (!r)
		return 0;
	event_header_fill(&r->h, 99, sizeof(*r));
	r->seq = (__u32)PT_REGS_PARM2_CORE_SYSCALL(regs);
	r->_pad = 0;
	event_submit(ctx, r, sizeof(*r));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
