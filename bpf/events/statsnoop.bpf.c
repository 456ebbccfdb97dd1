// SPDX-License-Identifier: GPL-2.0
/* statsnoop: one record per stat-family call (stat, lstat, newfstatat, statx, statfs; arm64 has
 * only the last three), with the path, the AT_* flags and the result. sys_enter keeps the path
 * pointer per thread; sys_exit reads the path (the caller's memory is still in place). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"

#define STAT_PATH_LEN 256
#define EV_AT_SYMLINK_NOFOLLOW 0x100

struct stat_args {
	const char *path;
	__u32 flags;
	__u32 nr;
};

struct stat_record {
	struct event_header h;
	__s32 ret;      /* 0 or -errno */
	__u32 syscall;  /* syscall number */
	__u32 flags;    /* AT_* (lstat: AT_SYMLINK_NOFOLLOW) */
	__u32 path_len; /* bytes in path with its NUL; STAT_PATH_LEN: the path may be cut */
	char path[STAT_PATH_LEN];
};
EVENT_RECORD(struct stat_record);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct stat_args);
} stats SEC(".maps");

static __always_inline bool stat_call(long nr)
{
	return nr == EV_NR_stat || nr == EV_NR_lstat || nr == EV_NR_statfs || nr == EV_NR_newfstatat ||
	       nr == EV_NR_statx;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(statsnoop_enter, struct pt_regs *regs, long id)
{
	struct stat_args a = {};
	__u32 tid;

	if (id == EV_NR_stat || id == EV_NR_statfs) {
		a.path = (const char *)PT_REGS_PARM1_CORE_SYSCALL(regs);
	} else if (id == EV_NR_lstat) {
		a.path = (const char *)PT_REGS_PARM1_CORE_SYSCALL(regs);
		a.flags = EV_AT_SYMLINK_NOFOLLOW;
	} else if (id == EV_NR_newfstatat) {
		a.path = (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		a.flags = PT_REGS_PARM4_CORE_SYSCALL(regs);
	} else if (id == EV_NR_statx) {
		a.path = (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		a.flags = PT_REGS_PARM3_CORE_SYSCALL(regs);
	} else {
		return 0;
	}
	if (!event_wanted())
		return 0;
	a.nr = id;
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&stats, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(statsnoop_exit, struct pt_regs *regs, long ret)
{
	struct stat_record *rec;
	struct stat_args *a;
	long n;
	__u32 tid;

	if (!stat_call(event_syscall_nr(regs)))
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	a = bpf_map_lookup_elem(&stats, &tid);
	if (!a)
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (rec) {
		event_header_fill(&rec->h, EVENT_STAT, sizeof(*rec));
		rec->ret = ret;
		rec->syscall = a->nr;
		rec->flags = a->flags;
		n = bpf_probe_read_user_str(rec->path, sizeof(rec->path), a->path);
		rec->path_len = n > 0 ? n : 0;
		event_submit(ctx, rec, sizeof(*rec));
	}
	bpf_map_delete_elem(&stats, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
