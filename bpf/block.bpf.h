/* Shared by the block IO tools (biolatency, biosize): the histogram key by disk and operation,
 * filled from a struct request, and the request of the block_rq_issue tracepoint, whose
 * arguments changed in Linux 5.11. Include after vmlinux.h and bpf_core_read.h. */
#pragma once

#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1U << REQ_OP_BITS) - 1)

struct disk_key {
	u32 dev; /* kernel "new" dev_t encoding: decoded by `majorminor` */
	u8 op;   /* REQ_OP_* (3 bytes of padding follow) */
	u64 bucket;
};

/* Older kernels name a request's disk in the request (rq->rq_disk: 5.10 has only that), newer
 * ones through its queue (rq->q->disk: 6.1 has only that). CO-RE picks what the running kernel
 * has. */
struct request___rq_disk {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

/* block_rq_issue passed (queue, request) up to Linux 5.10 and (request) from 5.11 on; Debian's
 * 5.10 stable kernels already have the one-argument form, so the version number cannot tell.
 * A CO-RE type check of the tracepoint's own BTF type (btf_trace_<name>: void *, then its
 * arguments) can: libbpf finds a type of this name compatible only when the parameter counts
 * are equal. (clang 14 has no bpf_core_type_matches; bpf_core_type_exists compares the
 * function prototypes' parameter lists all the same.) */
typedef void (*btf_trace_block_rq_issue___q_rq)(void *, struct request_queue *, struct request *);

/* The request of a block_rq_issue tp_btf/raw_tp program's context. The verifier sees a
 * constant condition and never looks at the other kernel's branch (reading ctx[1] where the
 * tracepoint has one argument is refused). */
static __always_inline struct request *issued_request(u64 *ctx)
{
	u64 rq;

	/* Two loads at fixed offsets, kept apart (clang would otherwise load from ctx plus a
	 * computed offset, which the verifier refuses for a context pointer). */
	if (bpf_core_type_exists(btf_trace_block_rq_issue___q_rq)) {
		rq = ctx[1];
		barrier_var(rq);
	} else {
		rq = ctx[0];
		barrier_var(rq);
	}
	return (struct request *)rq;
}

/* The 32-bit device number userspace sees (new_encode_dev), from major and minor. */
static __always_inline u32 encode_dev(u32 major, u32 minor)
{
	return (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

/* A zeroed key for the request's disk and operation (bucket left for the caller). */
static __always_inline void disk_key_of(struct disk_key *dk, struct request *rq)
{
	struct request___rq_disk *old = (void *)rq;
	struct gendisk *disk;

	__builtin_memset(dk, 0, sizeof(*dk));
	if (bpf_core_field_exists(old->rq_disk))
		disk = BPF_CORE_READ(old, rq_disk);
	else
		disk = BPF_CORE_READ(rq, q, disk);
	if (disk)
		dk->dev = encode_dev(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor));
	dk->op = BPF_CORE_READ(rq, cmd_flags) & REQ_OP_MASK;
}
