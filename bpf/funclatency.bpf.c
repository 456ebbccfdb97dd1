// SPDX-License-Identifier: GPL-2.0
/* funclatency: time from entry to return of user-space functions, by function.
 * The programs have no attach target of their own (bare SEC("uprobe")/SEC("uretprobe")):
 * ebpfx attaches them to every function matched by `--probe BINARY:GLOB`, giving each link
 * the function's index in the resolved list as BPF cookie (or, on kernels without cookies, one
 * slot copy per function: slots.bpf.h). The `function` label carries that index; ebpfx fills
 * its static_map with index -> function name at run time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"
#include "slots.bpf.h"

#define MAX_SLOT 36 /* 2^36 ns = 68.7 s */

struct start_key {
	u32 tid;
	u32 function;
};

struct hist_key {
	u32 function; /* BPF cookie: index into ebpfx's list of resolved functions */
	u32 pad;
	u64 bucket;
};

/* LRU: starts of calls that never return (longjmp, exceptions, exit) age out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct start_key);
	__type(value, u64);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct hist_key);
	__type(value, u64);
} function_latency_seconds SEC(".maps");

static __noinline int call_entered(u32 function)
{
	/* Keyed by thread and function: nested calls of different traced functions each get
	 * their own start (recursion of one function keeps the innermost start, as in bcc). */
	struct start_key key = { .tid = (u32)bpf_get_current_pid_tgid(), .function = function };
	u64 now = bpf_ktime_get_ns();

	bpf_map_update_elem(&starts, &key, &now, BPF_ANY);
	return 0;
}

static __noinline int call_returned(u32 function)
{
	struct start_key key = { .tid = (u32)bpf_get_current_pid_tgid(), .function = function };
	struct hist_key hkey;
	u64 *start, delta;

	start = bpf_map_lookup_elem(&starts, &key);
	if (!start)
		return 0; /* entered before the probes were attached */
	delta = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&starts, &key);

	__builtin_memset(&hkey, 0, sizeof(hkey));
	hkey.function = function;
	EBPFX_HIST_OBSERVE(function_latency_seconds, &hkey, delta, MAX_SLOT);
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(funclatency_entry)
{
	return call_entered((u32)bpf_get_attach_cookie(ctx));
}

SEC("uretprobe")
int BPF_URETPROBE(funclatency_return)
{
	return call_returned((u32)bpf_get_attach_cookie(ctx));
}

#define ENTRY_SLOT(h, t, u) EBPFX_SLOT_PROGRAM("uprobe", funclatency_entry, call_entered, h, t, u)
#define RETURN_SLOT(h, t, u) EBPFX_SLOT_PROGRAM("uretprobe", funclatency_return, call_returned, h, t, u)
EBPFX_FOR_EACH_SLOT(ENTRY_SLOT)
EBPFX_FOR_EACH_SLOT(RETURN_SLOT)

char LICENSE[] SEC("license") = "GPL";
