// SPDX-License-Identifier: GPL-2.0
/* Test object (tests/errors.rs): a map the kernel refuses to create (a hash map with a
 * 0-byte key is invalid); the program itself is fine. ebpfx must name the map. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} badmap_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 0);
	__type(key, u32);
	__type(value, u64);
} badmap_refused SEC(".maps");

SEC("raw_tp/sys_enter")
int badmap_enter(void *ctx)
{
	u32 zero = 0;
	u64 *v = bpf_map_lookup_elem(&badmap_total, &zero);

	if (v)
		*v += 1;
	bpf_map_update_elem(&badmap_refused, &zero, &zero, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
