// SPDX-License-Identifier: GPL-2.0
/* Test object: cgroup_id_map (docs/config-format.md#loading-and-attaching). ebpfx fills
 * `cgroup_filter` with the ids of the cgroups whose path matches the config's regexps; getpid
 * calls are counted per cgroup only for tasks in those cgroups. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} cgroup_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u64);
} filtered_getpid_total SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(cgroup_filter_sys_enter, struct pt_regs *regs, long id)
{
	u64 cgroup = bpf_get_current_cgroup_id();

	if (id != 39) /* getpid on x86_64 */
		return 0;
	if (!bpf_map_lookup_elem(&cgroup_filter, &cgroup))
		return 0;
	ebpfx_count(&filtered_getpid_total, &cgroup, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
