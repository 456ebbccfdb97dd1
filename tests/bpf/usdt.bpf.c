// SPDX-License-Identifier: GPL-2.0
/* Test object: Python module imports by module name, from the USDT probe
 * python:import__find__load__start(modulename) of Debian's /usr/bin/python3
 * (tests/configs/usdt.yaml, tests/live_compat.rs). `python3` is resolved through $PATH.
 *
 * <bpf/usdt.bpf.h> cannot be included with ebpfx's BPF compile flags (it includes
 * <linux/errno.h>, whose <asm/errno.h> is in the multiarch include directory clang -target bpf
 * does not search), so this file reads USDT arguments itself, through the two maps libbpf's USDT
 * attach fills (same names, same value layout as the struct usdt_spec of the libbpf 1.7 that
 * loads it). Only the argument kinds Python's probes use are handled: constant, register,
 * register + offset. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bits.bpf.h"

#define USDT_MAX_ARGS 12

/* libbpf 1.7's struct usdt_arg_spec as its compiler lays it out (24 bytes: the bitfields after
 * val_off take bytes 8..12, so reg_off lands at 14). */
struct t_usdt_arg {
	u64 val_off;
	u32 kind_bits; /* low byte: 0 constant, 1 register, 2 register deref, 3 SIB */
	u8 reserved;
	u8 pad;
	s16 reg_off; /* offsetof(struct pt_regs, reg) */
	u8 is_signed;
	u8 bitshift; /* 64 - 8 * argument size */
	u8 pad2[6];
};

struct t_usdt_spec {
	struct t_usdt_arg args[USDT_MAX_ARGS];
	u64 usdt_cookie;
	s16 arg_cnt;
};

/* libbpf finds these by name and fills them when it attaches a usdt/ program. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, int);
	__type(value, struct t_usdt_spec);
} __bpf_usdt_specs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, long);
	__type(value, u32);
} __bpf_usdt_ip_to_spec_id SEC(".maps");

/* Argument n of the probe (spec id from the BPF cookie, which this kernel supports). */
static __always_inline int usdt_arg(struct pt_regs *ctx, u32 n, u64 *out)
{
	int spec_id = (int)bpf_get_attach_cookie(ctx);
	struct t_usdt_spec *spec = bpf_map_lookup_elem(&__bpf_usdt_specs, &spec_id);
	struct t_usdt_arg *arg;
	u64 val = 0;

	*out = 0;
	if (!spec || n >= USDT_MAX_ARGS || (s16)n >= spec->arg_cnt)
		return -1;
	arg = &spec->args[n];
	switch (arg->kind_bits & 0xff) {
	case 0:
		val = arg->val_off;
		break;
	case 1:
		if (bpf_probe_read_kernel(&val, sizeof(val), (void *)ctx + arg->reg_off))
			return -1;
		break;
	case 2:
		if (bpf_probe_read_kernel(&val, sizeof(val), (void *)ctx + arg->reg_off))
			return -1;
		if (bpf_probe_read_user(&val, sizeof(val), (void *)(val + arg->val_off)))
			return -1;
		break;
	default:
		return -1;
	}
	val <<= arg->bitshift;
	val = arg->is_signed ? (u64)((s64)val >> arg->bitshift) : val >> arg->bitshift;
	*out = val;
	return 0;
}

struct t_module_key {
	char name[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct t_module_key);
	__type(value, u64);
} python_imports_total SEC(".maps");

SEC("usdt/python3:python:import__find__load__start")
int python_import_start(struct pt_regs *ctx)
{
	struct t_module_key k;
	u64 module;

	if (usdt_arg(ctx, 0, &module))
		return 0;
	__builtin_memset(&k, 0, sizeof(k));
	bpf_probe_read_user_str(k.name, sizeof(k.name), (const void *)module);
	ebpfx_count(&python_imports_total, &k, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
