// SPDX-License-Identifier: GPL-2.0
/* biosnoop: one record per completed block request: who started it, disk, operation, sector,
 * bytes, time queued (start to issue) and device latency (issue to completion).
 *
 * block_io_start fires in the context of the task that submits the IO, so the pid and command
 * are the submitter's even when a kernel worker later issues the request. A request already
 * started when the program attached has no owner: it is reported with pid 0 unless a pid filter
 * is set. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"
#include "block.bpf.h"

#define DISK_NAME_LEN_EV 32

struct bio_start {
	__u64 start_ns; /* 0: unknown (started before attach) */
	__u64 issue_ns;
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
	__u64 queue_ns;        /* block_io_start to issue; 0 when the start was not seen */
	__u64 latency_ns;      /* issue to completion */
	char disk[DISK_NAME_LEN_EV];
};
EVENT_RECORD(struct bio_record);

struct bio_issue {
	__u64 sector;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* struct request * */
	__type(value, struct bio_start);
} bio_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, struct bio_issue);
} bio_issues SEC(".maps");

SEC("tp_btf/block_io_start")
int BPF_PROG(biosnoop_start, struct request *rq)
{
	struct bio_start s = {};
	__u64 key = (__u64)rq, id;

	if (!event_wanted())
		return 0;
	id = bpf_get_current_pid_tgid();
	s.start_ns = bpf_ktime_get_ns();
	s.pid = id >> 32;
	s.tid = (__u32)id;
	bpf_get_current_comm(&s.comm, sizeof(s.comm));
	bpf_map_update_elem(&bio_starts, &key, &s, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int biosnoop_issue(u64 *ctx)
{
	struct request *rq = issued_request(ctx); /* (q, rq) or (rq), block.bpf.h */
	struct bio_start *s, fresh = {};
	struct bio_issue is = {};
	__u64 key = (__u64)rq;

	s = bpf_map_lookup_elem(&bio_starts, &key);
	if (!s) {
		if (targ_tgid != 0)
			return 0;
		fresh.issue_ns = bpf_ktime_get_ns();
		bpf_map_update_elem(&bio_starts, &key, &fresh, BPF_ANY);
	} else {
		s->issue_ns = bpf_ktime_get_ns();
	}
	is.sector = BPF_CORE_READ(rq, __sector);
	is.bytes = BPF_CORE_READ(rq, __data_len);
	bpf_map_update_elem(&bio_issues, &key, &is, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(biosnoop_done, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	struct bio_record *rec;
	struct bio_start *s;
	struct bio_issue *is;
	struct gendisk *disk;
	__u64 key = (__u64)rq, now;
	__u32 flags;

	s = bpf_map_lookup_elem(&bio_starts, &key);
	is = bpf_map_lookup_elem(&bio_issues, &key);
	if (!s || !is || !s->issue_ns)
		goto out;
	rec = event_reserve(sizeof(*rec));
	if (!rec)
		goto out;
	now = bpf_ktime_get_ns();
	rec->h.ts_ns = now;
	rec->h.kind = EVENT_BIO;
	rec->h.size = sizeof(*rec);
	rec->h.pid = s->pid;
	rec->h.tid = s->tid;
	__builtin_memcpy(rec->h.comm, s->comm, sizeof(rec->h.comm));
	__builtin_memset(rec->disk, 0, sizeof(rec->disk));
	rec->dev = 0;
	/* rq->rq_disk on 5.10, rq->q->disk since (block.bpf.h) */
	if (bpf_core_field_exists(((struct request___rq_disk *)rq)->rq_disk))
		disk = BPF_CORE_READ((struct request___rq_disk *)rq, rq_disk);
	else
		disk = BPF_CORE_READ(rq, q, disk);
	if (disk) {
		rec->dev = encode_dev(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor));
		BPF_CORE_READ_STR_INTO(&rec->disk, disk, disk_name);
	}
	flags = BPF_CORE_READ(rq, cmd_flags);
	rec->cmd_flags = flags;
	rec->op = flags & REQ_OP_MASK;
	rec->error = error;
	rec->sector = is->sector;
	rec->bytes = is->bytes;
	rec->queue_ns = s->start_ns ? s->issue_ns - s->start_ns : 0;
	rec->latency_ns = now - s->issue_ns;
	event_submit(ctx, rec, sizeof(*rec));
out:
	bpf_map_delete_elem(&bio_starts, &key);
	bpf_map_delete_elem(&bio_issues, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
