// SPDX-License-Identifier: GPL-2.0
/* biosnoop: one record per completed block request and submitter: who submitted the IO, disk,
 * operation, sector, bytes, time queued (submission to issue) and device latency (issue to
 * completion).
 *
 * The submitter is known per bio, not per request: block_getrq (a bio gets a new request) and
 * block_bio_backmerge/frontmerge (a bio joins a request already queued) fire in the context of
 * the task that submits the bio, on every kernel from 5.10 on. A bio may join a request of
 * another task, e.g. a direct write whose sectors follow those of a writeback request waiting in
 * the IO scheduler: keyed by request, that write would vanish into the other task's line. So
 * each bio's submitter is kept by bio pointer, and at completion the request's bio list is
 * walked: consecutive bios of one thread make one record (their sectors and bytes together), a
 * bio of another thread starts a record of its own. Requests whose bios were all submitted
 * before the program attached (or that carry no bio) are reported with pid 0 unless a pid
 * filter is set; a bio with no submitter seen in a request that has one counts with its
 * neighbouring record. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"
#include "block.bpf.h"

#define DISK_NAME_LEN_EV 32
/* Bios looked at per completed request. Each bio takes at least one segment unless its pages
 * continue the previous bio's, so a request rarely holds more bios than the queue's
 * max_segments (254 on virtio-blk here, 128 on loop). Bios past this many are not reported. */
#define BIO_WALK_MAX 256

/* Who submitted a bio, and when: filled in the submitter's context. */
struct bio_owner {
	__u64 start_ns;
	__u64 sector;
	__u64 bytes;
	__u32 pid;
	__u32 tid;
	char comm[EVENT_COMM_LEN];
};

struct bio_record {
	struct event_header h; /* pid, tid, comm: the submitter; ts_ns: completion */
	__u32 dev;             /* new_encode_dev(major, minor) of the disk */
	__u32 op;              /* REQ_OP_*: 0 read, 1 write, 2 flush, 3 discard, ... */
	__u32 cmd_flags;       /* all request flags (op in the low bits) */
	__s32 error;           /* blk_status_t at completion, 0 = success */
	__u64 sector;
	__u64 bytes;
	__u64 queue_ns;        /* submission to issue; 0 when the submission was not seen */
	__u64 latency_ns;      /* issue to completion */
	char disk[DISK_NAME_LEN_EV];
};
EVENT_RECORD(struct bio_record);

/* One record being put together at completion: a run of bios of one thread, or the request.
 * The walk's own state (open, lead, ...) lives here too, in map memory and not in registers:
 * the verifier then does not tell loop states apart by those flags, which keeps the walk's
 * verification small (on the stack they multiplied it past 800k instructions). */
struct bio_part {
	struct bio_owner o;
	__u64 issue_ns;
	__u64 now;
	__u64 lead_sector; /* bios without a submitter before the first record's */
	__u64 lead_bytes;
	__u32 dev;
	__u32 cmd_flags;
	__s32 error;
	__u32 issued;      /* the request was issued while attached: records are sent */
	__u32 open;        /* o holds a record being built */
	__u32 lead;        /* lead_sector and lead_bytes hold bios */
	char disk[DISK_NAME_LEN_EV];
};

/* Keyed by bio, a pointer from a slab: unlike request pointers (one per tag) their number is not
 * bounded, so an entry whose bio never reaches a completion here (an IO error before the
 * request, ...) must not fill the map for good: LRU, so the oldest leftovers make room. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* struct bio * */
	__type(value, struct bio_owner);
} bio_owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* struct request * */
	__type(value, __u64); /* issue time */
} bio_issues SEC(".maps");

/* Scratch for the record under construction (too big for the stack beside the walk). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bio_part);
} bio_scratch SEC(".maps");

/* block_getrq and block_bio_{back,front}merge passed the queue (and the request) before the bio
 * up to Linux 5.10; from 5.11 the bio alone. Told apart as for block_rq_issue (block.bpf.h). */
typedef void (*btf_trace_block_getrq___q_bio_rw)(void *, struct request_queue *, struct bio *, int);
typedef void (*btf_trace_block_bio_backmerge___q_rq_bio)(void *, struct request_queue *,
							 struct request *, struct bio *);
typedef void (*btf_trace_block_bio_frontmerge___q_rq_bio)(void *, struct request_queue *,
							  struct request *, struct bio *);

static __always_inline void remember_bio(struct bio *bio)
{
	struct bio_owner o = {};
	__u64 key = (__u64)bio, id;

	if (!bio || !event_wanted())
		return;
	id = bpf_get_current_pid_tgid();
	o.start_ns = bpf_ktime_get_ns();
	o.sector = BPF_CORE_READ(bio, bi_iter.bi_sector);
	o.bytes = BPF_CORE_READ(bio, bi_iter.bi_size);
	o.pid = id >> 32;
	o.tid = (__u32)id;
	bpf_get_current_comm(&o.comm, sizeof(o.comm));
	bpf_map_update_elem(&bio_owners, &key, &o, BPF_ANY);
}

/* The bio of a block tracepoint: argument `old_at` where the kernel passes the queue (and the
 * request) before it (`old_layout`, 5.10), else the first. The two fixed-offset loads are kept
 * apart: see issued_request() in block.bpf.h. */
static __always_inline void remember_bio_arg(u64 *ctx, bool old_layout, int old_at)
{
	u64 bio;

	if (old_layout) {
		bio = ctx[old_at];
		barrier_var(bio);
	} else {
		bio = ctx[0];
		barrier_var(bio);
	}
	remember_bio((struct bio *)bio);
}

SEC("tp_btf/block_getrq")
int biosnoop_getrq(u64 *ctx)
{
	remember_bio_arg(ctx, bpf_core_type_exists(btf_trace_block_getrq___q_bio_rw), 1);
	return 0;
}

SEC("tp_btf/block_bio_backmerge")
int biosnoop_backmerge(u64 *ctx)
{
	remember_bio_arg(ctx, bpf_core_type_exists(btf_trace_block_bio_backmerge___q_rq_bio), 2);
	return 0;
}

SEC("tp_btf/block_bio_frontmerge")
int biosnoop_frontmerge(u64 *ctx)
{
	remember_bio_arg(ctx, bpf_core_type_exists(btf_trace_block_bio_frontmerge___q_rq_bio), 2);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int biosnoop_issue(u64 *ctx)
{
	struct request *rq = issued_request(ctx); /* (q, rq) or (rq), block.bpf.h */
	__u64 key = (__u64)rq, now = bpf_ktime_get_ns();

	bpf_map_update_elem(&bio_issues, &key, &now, BPF_ANY);
	return 0;
}

/* Sends one record for `p`. A subprogram: called from the walk and after it. */
static __noinline int bio_emit(void *ctx, struct bio_part *p)
{
	struct bio_record *rec;

	if (!p)
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (!rec)
		return 0;
	rec->h.ts_ns = p->now;
	rec->h.kind = EVENT_BIO;
	rec->h.size = sizeof(*rec);
	rec->h.pid = p->o.pid;
	rec->h.tid = p->o.tid;
	__builtin_memcpy(rec->h.comm, p->o.comm, sizeof(rec->h.comm));
	__builtin_memcpy(rec->disk, p->disk, sizeof(rec->disk));
	rec->dev = p->dev;
	rec->cmd_flags = p->cmd_flags;
	rec->op = p->cmd_flags & REQ_OP_MASK;
	rec->error = p->error;
	rec->sector = p->o.sector;
	rec->bytes = p->o.bytes;
	rec->queue_ns = p->o.start_ns && p->o.start_ns < p->issue_ns ? p->issue_ns - p->o.start_ns : 0;
	rec->latency_ns = p->now - p->issue_ns;
	event_submit(ctx, rec, sizeof(*rec));
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(biosnoop_done, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	struct bio_part *p;
	struct bio_owner *o;
	struct gendisk *disk;
	struct bio *bio;
	__u64 key = (__u64)rq, *issued, bkey;
	__u32 zero = 0;
	int i;

	/* Not issued while attached (also a request that the flush machinery ends without issuing
	 * it: the flush request stands for it), or a later partial completion of a request already
	 * reported: no record, but its bios' entries go. */
	issued = bpf_map_lookup_elem(&bio_issues, &key);
	p = bpf_map_lookup_elem(&bio_scratch, &zero);
	if (!p)
		goto out;
	__builtin_memset(p, 0, sizeof(*p));
	if (issued) {
		p->issued = 1;
		p->issue_ns = *issued;
		p->now = bpf_ktime_get_ns();
		p->error = error;
		p->cmd_flags = BPF_CORE_READ(rq, cmd_flags);
		/* rq->rq_disk on 5.10, rq->q->disk since (block.bpf.h) */
		if (bpf_core_field_exists(((struct request___rq_disk *)rq)->rq_disk))
			disk = BPF_CORE_READ((struct request___rq_disk *)rq, rq_disk);
		else
			disk = BPF_CORE_READ(rq, q, disk);
		if (disk) {
			p->dev = encode_dev(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor));
			BPF_CORE_READ_STR_INTO(&p->disk, disk, disk_name);
		}
	}

	/* The bios in sector order: runs of one thread become one record each. */
	bio = BPF_CORE_READ(rq, bio);
#pragma clang loop unroll(disable)
	for (i = 0; i < BIO_WALK_MAX && bio; i++) {
		bkey = (__u64)bio;
		o = bpf_map_lookup_elem(&bio_owners, &bkey);
		if (o) {
			if (!p->issued) {
				/* nothing to send */
			} else if (p->open && o->tid == p->o.tid) {
				p->o.bytes += o->bytes;
				if (o->start_ns < p->o.start_ns)
					p->o.start_ns = o->start_ns;
			} else {
				if (p->open)
					bio_emit(ctx, p);
				p->o = *o;
				if (!p->open && p->lead) {
					p->o.sector = p->lead_sector;
					p->o.bytes += p->lead_bytes;
				}
				p->open = 1;
			}
			bpf_map_delete_elem(&bio_owners, &bkey);
		} else if (p->issued) {
			/* A bio without a submitter here: merged where no tracepoint fires (discard
			 * merges) or submitted before the attach. Its bytes go to the neighbouring
			 * record, so that a request's records add up to its bytes. */
			if (p->open) {
				p->o.bytes += BPF_CORE_READ(bio, bi_iter.bi_size);
			} else {
				if (!p->lead)
					p->lead_sector = BPF_CORE_READ(bio, bi_iter.bi_sector);
				p->lead_bytes += BPF_CORE_READ(bio, bi_iter.bi_size);
				p->lead = 1;
			}
		}
		bio = BPF_CORE_READ(bio, bi_next);
	}
	if (p->open) {
		bio_emit(ctx, p);
	} else if (p->issued && targ_tgid == 0) {
		/* No submitter seen: the request as a whole, owner unknown. */
		p->o.sector = BPF_CORE_READ(rq, __sector);
		p->o.bytes = BPF_CORE_READ(rq, __data_len);
		bio_emit(ctx, p);
	}
out:
	bpf_map_delete_elem(&bio_issues, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
