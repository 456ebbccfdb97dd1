// SPDX-License-Identifier: GPL-2.0
/* funccount: calls of user-space functions, by function. Like funclatency, the program has no
 * attach target of its own: ebpfx attaches it to every function matched by `--probe`, with the
 * function's index as BPF cookie, and maps the index back to the name when decoding. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, u32); /* BPF cookie: index into ebpfx's list of resolved functions */
	__type(value, u64);
} function_calls_total SEC(".maps");

SEC("uprobe")
int BPF_UPROBE(funccount_entry)
{
	u32 function = (u32)bpf_get_attach_cookie(ctx);

	ebpfx_count_percpu(&function_calls_total, &function, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
