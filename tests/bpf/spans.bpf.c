// SPDX-License-Identifier: GPL-2.0
/* Test object for ebpf_exporter-style tracing spans (tests/live_events.rs): one span record per
 * getpriority(0x5a4e, seq) call, in ebpf_exporter's layout (trace id, parent span id, span id,
 * start, duration) followed by the sequence number. Like ebpf_exporter's objects it has no loss
 * counter. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#if defined(__TARGET_ARCH_x86)
#define NR_getpriority 140
#else
#define NR_getpriority 141
#endif

struct span_record {
	__u64 trace_id_hi;
	__u64 trace_id_lo;
	__u64 parent_span_id;
	__u64 span_id;
	__u64 span_monotonic_timestamp_ns;
	__u64 span_duration_ns;
	__u32 seq;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} spans SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(spans_enter, struct pt_regs *regs, long id)
{
	struct span_record *r;
	__u32 seq;

	if (id != NR_getpriority || (__u32)PT_REGS_PARM1_CORE_SYSCALL(regs) != 0x5a4e)
		return 0;
	seq = (__u32)PT_REGS_PARM2_CORE_SYSCALL(regs);
	r = bpf_ringbuf_reserve(&spans, sizeof(*r), 0);
	if (!r)
		return 0;
	r->trace_id_hi = 0x0123456789abcdefULL;
	r->trace_id_lo = seq;
	r->parent_span_id = seq % 2 ? 0x1111 : 0;
	r->span_id = 0x2000 + seq;
	r->span_monotonic_timestamp_ns = bpf_ktime_get_ns();
	r->span_duration_ns = 1000000;
	r->seq = seq;
	r->pad = 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
