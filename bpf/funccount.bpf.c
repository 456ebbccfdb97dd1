// SPDX-License-Identifier: GPL-2.0
/* funccount: calls of functions, by function. Like funclatency, the program has no attach
 * target of its own: ebpfx attaches it to every function matched by `--probe`, with the
 * function's index as BPF cookie (or, on kernels without cookies, one slot copy per function:
 * slots.bpf.h), and maps the index back to the name when decoding. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"
#include "slots.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, u32); /* index into ebpfx's list of resolved functions */
	__type(value, u64);
} function_calls_total SEC(".maps");

static __noinline int count_call(u32 function)
{
	ebpfx_count_percpu(&function_calls_total, &function, 1);
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(funccount_entry)
{
	return count_call((u32)bpf_get_attach_cookie(ctx));
}

#define ENTRY_SLOT(h, t, u) EBPFX_SLOT_PROGRAM("uprobe", funccount_entry, count_call, h, t, u)
EBPFX_FOR_EACH_SLOT(ENTRY_SLOT)

char LICENSE[] SEC("license") = "GPL";
