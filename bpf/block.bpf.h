/* Shared by the block IO tools (biolatency, biosize): the histogram key by disk and operation,
 * filled from a struct request. Include after vmlinux.h and bpf_core_read.h. */
#pragma once

#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1U << REQ_OP_BITS) - 1)

struct disk_key {
	u32 dev; /* kernel "new" dev_t encoding: decoded by `majorminor` */
	u8 op;   /* REQ_OP_* (3 bytes of padding follow) */
	u64 bucket;
};

/* The 32-bit device number userspace sees (new_encode_dev), from major and minor. */
static __always_inline u32 encode_dev(u32 major, u32 minor)
{
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

/* A zeroed key for the request's disk and operation (bucket left for the caller). */
static __always_inline void disk_key_of(struct disk_key *dk, struct request *rq)
{
	struct gendisk *disk;

	__builtin_memset(dk, 0, sizeof(*dk));
	disk = BPF_CORE_READ(rq, q, disk);
	if (disk)
		dk->dev = encode_dev(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor));
	dk->op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
}
