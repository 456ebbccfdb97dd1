// SPDX-License-Identifier: GPL-2.0
/* biosize: sizes of block IO requests as they are issued to the device, by disk and operation.
 * One tp_btf program, no per-request state: the size is known at issue time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"
#include "block.bpf.h"

#define MAX_SLOT 32 /* 2^32 bytes = 4 GiB; the sum of sizes goes to slot 33 */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct disk_key);
	__type(value, u64);
} bio_size_bytes SEC(".maps");

SEC("tp_btf/block_rq_issue")
int biosize_issue(u64 *ctx)
{
	struct request *rq = issued_request(ctx);
	struct disk_key dk;
	u64 bytes = BPF_CORE_READ(rq, __data_len);

	disk_key_of(&dk, rq);
	EBPFX_HIST_OBSERVE(bio_size_bytes, &dk, bytes, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
