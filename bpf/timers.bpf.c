// SPDX-License-Identifier: GPL-2.0
/* timers: kernel timer expirations by callback function, for timer_list timers (timer wheel)
 * and hrtimers. The key is the callback's address, which user space resolves with `ksym`. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"

/* Per-CPU: timers fire on every CPU all the time; ebpfx sums the CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, u64); /* callback function address */
	__type(value, u64);
} timer_expirations_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 10240);
	__type(key, u64); /* callback function address */
	__type(value, u64);
} hrtimer_expirations_total SEC(".maps");

SEC("tp_btf/timer_expire_entry")
int BPF_PROG(timers_expire, struct timer_list *timer, unsigned long baseclk)
{
	u64 fn = (u64)BPF_CORE_READ(timer, function);

	ebpfx_count_percpu(&timer_expirations_total, &fn, 1);
	return 0;
}

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(timers_hrtimer_expire, struct hrtimer *hrtimer, ktime_t *now)
{
	u64 fn = (u64)BPF_CORE_READ(hrtimer, function);

	ebpfx_count_percpu(&hrtimer_expirations_total, &fn, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
