// SPDX-License-Identifier: GPL-2.0
/* softirqs: time spent running softirq handlers, by softirq vector. Softirqs do not nest on one
 * CPU, so the entry time lives in a per-CPU slot indexed by vector. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

#define MAX_SLOT 36 /* 2^36 ns = 68.7 s; the sum of handler time goes to slot 37 */
#define NR_VECTORS 10 /* HI .. RCU */

struct vec_key {
	u32 vec; /* softirq vector number (4 bytes of padding follow) */
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_VECTORS);
	__type(key, u32);
	__type(value, u64); /* entry time, ns */
} softirq_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct vec_key);
	__type(value, u64);
} softirq_seconds SEC(".maps");

SEC("tp_btf/softirq_entry")
int BPF_PROG(softirqs_entry, unsigned int vec_nr)
{
	u32 idx = vec_nr;
	u64 *ts = bpf_map_lookup_elem(&softirq_start, &idx);

	if (ts)
		*ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(softirqs_exit, unsigned int vec_nr)
{
	u32 idx = vec_nr;
	u64 *ts = bpf_map_lookup_elem(&softirq_start, &idx), delta;
	struct vec_key key;

	if (!ts || *ts == 0)
		return 0;
	delta = bpf_ktime_get_ns() - *ts;
	*ts = 0;
	__builtin_memset(&key, 0, sizeof(key));
	key.vec = vec_nr;
	EBPFX_HIST_OBSERVE(softirq_seconds, &key, delta, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
