// SPDX-License-Identifier: GPL-2.0
/* Test object: Python module imports by module name, from the USDT probe
 * python:import__find__load__start(modulename) of Debian's /usr/bin/python3
 * (tests/configs/usdt.yaml, tests/live_compat.rs). `python3` is resolved through $PATH at
 * attach time. Built with libbpf's own usdt.bpf.h, from the libbpf that loads it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "bits.bpf.h"

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
int BPF_USDT(python_import_start, const char *module)
{
	struct t_module_key k;

	__builtin_memset(&k, 0, sizeof(k));
	bpf_probe_read_user_str(k.name, sizeof(k.name), module);
	ebpfx_count(&python_imports_total, &k, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
