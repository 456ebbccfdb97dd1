// SPDX-License-Identifier: GPL-2.0
/* Test object for `ebpfx check` (tests/check.rs): maps whose layouts the configs
 * tests/configs/check_*.yaml match or mismatch. Never attached by the tests. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* 16 bytes: dev at 0, op at 4, 3 alignment bytes, bucket at 8. */
struct t_check_key {
	u32 dev;
	u8 op;
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct t_check_key);
	__type(value, u64);
} requests_total SEC(".maps");

/* A 4-byte value: no metric can read it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, u32);
} narrow_total SEC(".maps");

/* An 8-byte scalar key. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u64);
	__type(value, u64);
} by_id_total SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(checkme_sys_enter, struct pt_regs *regs, long id)
{
	struct t_check_key k;
	u64 one = 1;
	u32 n = 1, small = 1;
	u64 nr = id;

	__builtin_memset(&k, 0, sizeof(k));
	k.op = id & 3;
	bpf_map_update_elem(&requests_total, &k, &one, BPF_ANY);
	bpf_map_update_elem(&narrow_total, &n, &small, BPF_ANY);
	bpf_map_update_elem(&by_id_total, &nr, &one, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
