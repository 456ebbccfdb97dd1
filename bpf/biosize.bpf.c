// SPDX-License-Identifier: GPL-2.0
/* biosize: sizes of block IO requests as they are issued to the device, by disk and operation.
 * One tp_btf program, no per-request state: the size is known at issue time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bits.bpf.h"

#define MAX_SLOT 32 /* 2^32 bytes = 4 GiB; the sum of sizes goes to slot 33 */
#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1U << REQ_OP_BITS) - 1)

struct disk_key {
	u32 dev; /* kernel "new" dev_t encoding: decoded by `majorminor` */
	u8 op;   /* REQ_OP_* (3 bytes of padding follow) */
	u64 bucket;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct disk_key);
	__type(value, u64);
} bio_size_bytes SEC(".maps");

static __always_inline u32 encode_dev(u32 major, u32 minor)
{
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(biosize_issue, struct request *rq)
{
	struct disk_key dk;
	struct gendisk *disk;
	u64 bytes = BPF_CORE_READ(rq, __data_len);

	__builtin_memset(&dk, 0, sizeof(dk));
	disk = BPF_CORE_READ(rq, q, disk);
	if (disk)
		dk.dev = encode_dev(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor));
	dk.op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
	EBPFX_HIST_OBSERVE(bio_size_bytes, &dk, bytes, MAX_SLOT);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
