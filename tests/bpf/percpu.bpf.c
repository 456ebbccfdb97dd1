// SPDX-License-Identifier: GPL-2.0
/* Test object: per-CPU arrays and a per-CPU hash read with and without the `cpu` label, and label-less counters
 * (tests/configs/percpu.yaml, tests/live_compat.rs). A uprobe on examples/probe_target.rs's
 * ebpfx_probe_hit(a, b, text) adds 1 at index a & 3 on the CPU it runs on. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

#define PERCPU_ARRAY(NAME, N)                           \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, N);                 \
		__type(key, u32);                       \
		__type(value, u64);                     \
	} NAME SEC(".maps")

PERCPU_ARRAY(percpu_slot_cpu_total, 4);
PERCPU_ARRAY(percpu_slot_total, 4);
PERCPU_ARRAY(percpu_only_cpu_total, 1);
PERCPU_ARRAY(percpu_nolabel_total, 1);

/* A per-CPU hash: rows only for the keys written, one per possible CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} percpu_hash_cpu_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} nolabel_total SEC(".maps");

static __always_inline void add(void *map, u32 idx, int atomic)
{
	u64 *v = bpf_map_lookup_elem(map, &idx);

	if (!v)
		return;
	if (atomic)
		__sync_fetch_and_add(v, 1);
	else
		*v += 1;
}

SEC("uprobe/probe_target:ebpfx_probe_hit")
int BPF_UPROBE(percpu_probe_hit, u64 a, u64 b, const char *text)
{
	u32 slot = a & 3;

	add(&percpu_slot_cpu_total, slot, 0);
	add(&percpu_slot_total, slot, 0);
	add(&percpu_only_cpu_total, 0, 0);
	add(&percpu_nolabel_total, 0, 0);
	add(&nolabel_total, 0, 1);
	ebpfx_count_percpu(&percpu_hash_cpu_total, &slot, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
