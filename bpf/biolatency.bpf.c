// SPDX-License-Identifier: GPL-2.0
/* biolatency: block IO latency from issue to completion, by disk and operation.
 * tp_btf attach: no tracefs needed, ~0.1 ms attach and detach. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"
#include "block.bpf.h"

#define MAX_SLOT 27 /* 2^27 us = 134 s; the sum of latencies goes to slot 28 */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u64);  /* struct request * */
	__type(value, u64); /* issue time, ns */
} issued SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct disk_key);
	__type(value, u64);
} bio_latency_seconds SEC(".maps");

SEC("tp_btf/block_rq_issue")
int biolatency_issue(u64 *ctx)
{
	u64 key = (u64)issued_request(ctx), ts = bpf_ktime_get_ns();

	bpf_map_update_elem(&issued, &key, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(biolatency_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	u64 key = (u64)rq, *tsp, delta_us;
	struct disk_key dk;

	tsp = bpf_map_lookup_elem(&issued, &key);
	if (!tsp)
		return 0;
	delta_us = (bpf_ktime_get_ns() - *tsp) / 1000;
	bpf_map_delete_elem(&issued, &key);

	disk_key_of(&dk, rq);
	EBPFX_HIST_OBSERVE(bio_latency_seconds, &dk, delta_us, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
