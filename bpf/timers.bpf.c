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

static __always_inline void count_fn(void *map, u64 fn)
{
	u64 one = 1, *c = bpf_map_lookup_elem(map, &fn);

	if (c)
		*c += 1; /* per-CPU value: no other writer */
	else
		bpf_map_update_elem(map, &fn, &one, BPF_NOEXIST);
}

SEC("tp_btf/timer_expire_entry")
int BPF_PROG(timers_expire, struct timer_list *timer, unsigned long baseclk)
{
	count_fn(&timer_expirations_total, (u64)BPF_CORE_READ(timer, function));
	return 0;
}

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(timers_hrtimer_expire, struct hrtimer *hrtimer, ktime_t *now)
{
	count_fn(&hrtimer_expirations_total, (u64)BPF_CORE_READ(hrtimer, function));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
