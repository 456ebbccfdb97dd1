// SPDX-License-Identifier: GPL-2.0
/* mountsnoop: one record per mount()/umount2(): source, target, filesystem type, flags, result
 * and the caller's mount namespace. (The fsopen/fsmount/move_mount API is not covered yet.) */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"

#define MOUNT_SOURCE_LEN 128
#define MOUNT_TARGET_LEN 256
#define MOUNT_FSTYPE_LEN 32

#define MOUNT_OP_MOUNT 1
#define MOUNT_OP_UMOUNT 2

struct mount_args {
	const char *source;
	const char *target;
	const char *fstype;
	__u64 flags;
	__u32 op;
	__u32 _pad;
};

struct mount_record {
	struct event_header h;
	__u32 op;     /* MOUNT_OP_* */
	__s32 ret;    /* 0 or -errno */
	__u64 flags;  /* MS_* for mount, MNT_* / UMOUNT_* for umount2 */
	__u32 mnt_ns; /* inode number of the caller's mount namespace */
	/* bytes used in each string with its NUL (0: absent or unreadable) */
	__u16 source_len;
	__u16 target_len;
	__u16 fstype_len;
	__u16 _pad[3];
	char source[MOUNT_SOURCE_LEN];
	char target[MOUNT_TARGET_LEN];
	char fstype[MOUNT_FSTYPE_LEN];
};
EVENT_RECORD(struct mount_record);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct mount_args);
} mounts SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(mountsnoop_enter, struct pt_regs *regs, long id)
{
	struct mount_args a = {};
	__u32 tid;

	if (id == EV_NR_mount) {
		a.op = MOUNT_OP_MOUNT;
		a.source = (const char *)PT_REGS_PARM1_CORE_SYSCALL(regs);
		a.target = (const char *)PT_REGS_PARM2_CORE_SYSCALL(regs);
		a.fstype = (const char *)PT_REGS_PARM3_CORE_SYSCALL(regs);
		a.flags = PT_REGS_PARM4_CORE_SYSCALL(regs);
	} else if (id == EV_NR_umount2) {
		a.op = MOUNT_OP_UMOUNT;
		a.target = (const char *)PT_REGS_PARM1_CORE_SYSCALL(regs);
		a.flags = PT_REGS_PARM2_CORE_SYSCALL(regs);
	} else {
		return 0;
	}
	if (!event_wanted())
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&mounts, &tid, &a, BPF_ANY);
	return 0;
}

static __always_inline __u16 read_str(char *dst, __u32 size, const char *src)
{
	long n;

	if (!src) {
		dst[0] = 0;
		return 0;
	}
	n = bpf_probe_read_user_str(dst, size, src);
	return n > 0 ? n : 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(mountsnoop_exit, struct pt_regs *regs, long ret)
{
	struct mount_record *rec;
	struct mount_args *a;
	struct task_struct *task;
	long nr = event_syscall_nr(regs);
	__u32 tid;

	if (nr != EV_NR_mount && nr != EV_NR_umount2)
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	a = bpf_map_lookup_elem(&mounts, &tid);
	if (!a)
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (rec) {
		event_header_fill(&rec->h, EVENT_MOUNT, sizeof(*rec));
		rec->op = a->op;
		rec->ret = ret;
		rec->flags = a->flags;
		task = (struct task_struct *)bpf_get_current_task(); /* not _btf: 5.11+ */
		rec->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
		rec->source_len = read_str(rec->source, sizeof(rec->source), a->source);
		rec->target_len = read_str(rec->target, sizeof(rec->target), a->target);
		rec->fstype_len = read_str(rec->fstype, sizeof(rec->fstype), a->fstype);
		rec->_pad[0] = rec->_pad[1] = rec->_pad[2] = 0;
		event_submit(ctx, rec, sizeof(*rec));
	}
	bpf_map_delete_elem(&mounts, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
