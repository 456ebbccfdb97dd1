// SPDX-License-Identifier: GPL-2.0
/* opensnoop: one record per open()/openat()/openat2(), with flags, mode, result and path.
 * sys_enter keeps the arguments per thread; sys_exit reads the path (the caller's memory is
 * still in place) and writes the record. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"

#define OPEN_PATH_LEN 256

struct open_args {
	const char *path;
	__u64 flags;
	__u32 mode;
	__u32 nr;
};

struct open_record {
	struct event_header h;
	__u64 flags;     /* O_* */
	__s32 ret;       /* fd, or -errno */
	__u32 mode;
	__u32 syscall;   /* syscall number: open, openat or openat2 */
	__u32 path_len;  /* bytes in path with its NUL; OPEN_PATH_LEN: the path may be cut */
	char path[OPEN_PATH_LEN];
};
EVENT_RECORD(struct open_record);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct open_args);
} opens SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(opensnoop_enter, struct pt_regs *regs, long id)
{
	struct open_args args = {};
	__u32 tid;

	if (id == EV_NR_open) {
		args.path = (const char *)PT_REGS_PARM1_CORE_SYSCALL(regs);
		args.flags = (__u32)PT_REGS_PARM2_CORE_SYSCALL(regs);
		args.mode = PT_REGS_PARM3_CORE_SYSCALL(regs);
	} else if (id == EV_NR_openat) {
		args.path = (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		args.flags = (__u32)PT_REGS_PARM3_CORE_SYSCALL(regs);
		args.mode = PT_REGS_PARM4_CORE_SYSCALL(regs);
	} else if (id == EV_NR_openat2) {
		struct open_how *how = (struct open_how *)PT_REGS_PARM3_CORE_SYSCALL(regs);
		__u64 mode = 0;

		args.path = (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		bpf_probe_read_user(&args.flags, sizeof(args.flags), &how->flags);
		bpf_probe_read_user(&mode, sizeof(mode), &how->mode);
		args.mode = mode;
	} else {
		return 0;
	}
	if (!event_wanted())
		return 0;
	args.nr = id;
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&opens, &tid, &args, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(opensnoop_exit, struct pt_regs *regs, long ret)
{
	struct open_record *rec;
	struct open_args *args;
	long nr = event_syscall_nr(regs), n;
	__u32 tid;

	if (nr != EV_NR_open && nr != EV_NR_openat && nr != EV_NR_openat2)
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	args = bpf_map_lookup_elem(&opens, &tid);
	if (!args)
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (rec) {
		event_header_fill(&rec->h, EVENT_OPEN, sizeof(*rec));
		rec->flags = args->flags;
		rec->ret = ret;
		rec->mode = args->mode;
		rec->syscall = args->nr;
		n = bpf_probe_read_user_str(rec->path, sizeof(rec->path), args->path);
		rec->path_len = n > 0 ? n : 0;
		event_submit(ctx, rec, sizeof(*rec));
	}
	bpf_map_delete_elem(&opens, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
