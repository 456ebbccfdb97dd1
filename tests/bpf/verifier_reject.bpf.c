// SPDX-License-Identifier: GPL-2.0
/* Test object (tests/errors.rs): a program the verifier must reject. It dereferences a map
 * lookup's result without checking it for NULL; ebpfx must show the verifier's words. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} rejected_total SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u64);
} rejected_seen SEC(".maps");

SEC("raw_tp/sys_enter")
int rejected_enter(void *ctx)
{
	u32 zero = 0;
	u64 *v = bpf_map_lookup_elem(&rejected_seen, &zero);

	*v += 1; /* no NULL check: "invalid mem access 'map_value_or_null'" */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
