// SPDX-License-Identifier: GPL-2.0
/* Test object (tests/errors.rs): calls a kernel function (kfunc) no kernel has; libbpf
 * cannot resolve the extern. ebpfx must name the extern, not a missing file. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern u64 ebpfx_no_such_kfunc(u64 x) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} extern_total SEC(".maps");

SEC("raw_tp/sys_enter")
int extern_enter(void *ctx)
{
	u32 zero = 0;
	u64 *v = bpf_map_lookup_elem(&extern_total, &zero);

	if (v)
		*v += ebpfx_no_such_kfunc(1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
