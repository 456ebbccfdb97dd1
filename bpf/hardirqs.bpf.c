// SPDX-License-Identifier: GPL-2.0
/* hardirqs: time spent in hardware interrupt handlers, by handler name (struct irqaction's
 * name, as in /proc/interrupts). Handlers run with interrupts off and do not nest on one CPU,
 * so one per-CPU slot holds the entry time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"

#define MAX_SLOT 36 /* 2^36 ns = 68.7 s; the sum of handler time goes to slot 37 */
#define NAME_LEN 32

struct irq_key {
	char name[NAME_LEN]; /* decoded by `string` */
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64); /* entry time, ns */
} hardirq_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct irq_key);
	__type(value, u64);
} hardirq_seconds SEC(".maps");

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(hardirqs_entry, int irq, struct irqaction *action)
{
	u32 zero = 0;
	u64 *ts = bpf_map_lookup_elem(&hardirq_start, &zero);

	if (ts)
		*ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/irq_handler_exit")
int BPF_PROG(hardirqs_exit, int irq, struct irqaction *action, int ret)
{
	u32 zero = 0;
	u64 *ts = bpf_map_lookup_elem(&hardirq_start, &zero), delta;
	struct irq_key key;

	if (!ts || *ts == 0)
		return 0;
	delta = bpf_ktime_get_ns() - *ts;
	*ts = 0;
	__builtin_memset(&key, 0, sizeof(key));
	bpf_probe_read_kernel_str(&key.name, sizeof(key.name), BPF_CORE_READ(action, name));
	EBPFX_HIST_OBSERVE(hardirq_seconds, &key, delta, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
