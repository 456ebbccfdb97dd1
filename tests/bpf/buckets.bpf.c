// SPDX-License-Identifier: GPL-2.0
/* Test object: ebpfx_probe_hit(a, b, text) in examples/probe_target.rs observes the value b in
 * one histogram per bucket type (tests/configs/buckets.yaml, tests/live_compat.rs). Each map
 * holds counts per bucket index and the sum of the values at index bucket_max + 1 (for fixed:
 * last key + 1), as ebpf_exporter's helpers do. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

#define MAX_SLOT 10
#define FIXED_SUM_SLOT 101 /* bucket_keys [1, 5, 100]: last key + 1 */

#define HIST_MAP(NAME)                               \
	struct {                                     \
		__uint(type, BPF_MAP_TYPE_HASH);     \
		__uint(max_entries, 128);            \
		__type(key, u64);                    \
		__type(value, u64);                  \
	} NAME SEC(".maps")

HIST_MAP(exp2_values);
HIST_MAP(exp2zero_values);
HIST_MAP(linear_values);
HIST_MAP(fixed_values);

/* Label `size` (1: b < 10, else 2) before the bucket: two label sets in one histogram. */
struct t_sized_key {
	u32 size;
	u32 pad;
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, struct t_sized_key);
	__type(value, u64);
} exp2_sized_seconds SEC(".maps");

static __always_inline void observe(void *map, u64 slot, u64 sum_slot, u64 value)
{
	ebpfx_count(map, &slot, 1);
	ebpfx_count(map, &sum_slot, value);
}

SEC("uprobe/probe_target:ebpfx_probe_hit")
int BPF_UPROBE(buckets_probe_hit, u64 a, u64 b, const char *text)
{
	u64 exp2 = ebpfx_exp2_slot(b, MAX_SLOT);
	/* exp2zero: 0 for 0, else ceil(log2 b) + 1, clamped. */
	u64 exp2zero = b == 0 ? 0 : ebpfx_exp2_slot(b, MAX_SLOT - 1) + 1;
	u64 linear = b > MAX_SLOT ? MAX_SLOT : b;

	observe(&exp2_values, exp2, MAX_SLOT + 1, b);
	observe(&exp2zero_values, exp2zero, MAX_SLOT + 1, b);
	observe(&linear_values, linear, MAX_SLOT + 1, b);
	/* fixed: the value itself is the bucket index (only 1, 5 and 100 are configured keys). */
	if (b < FIXED_SUM_SLOT)
		observe(&fixed_values, b, FIXED_SUM_SLOT, b);

	struct t_sized_key k;
	__builtin_memset(&k, 0, sizeof(k));
	k.size = b < 10 ? 1 : 2;
	EBPFX_HIST_OBSERVE(exp2_sized_seconds, &k, b, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
