// SPDX-License-Identifier: GPL-2.0
/* killsnoop: one record per kill()/tkill()/tgkill(): sender, target, signal and result. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"

struct kill_args {
	__s32 target; /* pid (kill), thread (tkill, tgkill) */
	__s32 tgid;   /* tgkill's thread group, else 0 */
	__u32 sig;
	__u32 nr;
};

struct kill_record {
	struct event_header h; /* the sender */
	__s32 target;
	__s32 target_tgid;
	__u32 sig;
	__s32 ret;     /* 0 or -errno */
	__u32 syscall; /* syscall number: kill, tkill or tgkill */
	__u32 _pad;
};
EVENT_RECORD(struct kill_record);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct kill_args);
} kills SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(killsnoop_enter, struct pt_regs *regs, long id)
{
	struct kill_args a = {};
	__u32 tid;

	if (id == EV_NR_kill || id == EV_NR_tkill) {
		a.target = PT_REGS_PARM1_CORE_SYSCALL(regs);
		a.sig = PT_REGS_PARM2_CORE_SYSCALL(regs);
	} else if (id == EV_NR_tgkill) {
		a.tgid = PT_REGS_PARM1_CORE_SYSCALL(regs);
		a.target = PT_REGS_PARM2_CORE_SYSCALL(regs);
		a.sig = PT_REGS_PARM3_CORE_SYSCALL(regs);
	} else {
		return 0;
	}
	if (!event_wanted())
		return 0;
	a.nr = id;
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&kills, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(killsnoop_exit, struct pt_regs *regs, long ret)
{
	struct kill_record *rec;
	struct kill_args *a;
	long nr = event_syscall_nr(regs);
	__u32 tid;

	if (nr != EV_NR_kill && nr != EV_NR_tkill && nr != EV_NR_tgkill)
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	a = bpf_map_lookup_elem(&kills, &tid);
	if (!a)
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (rec) {
		event_header_fill(&rec->h, EVENT_KILL, sizeof(*rec));
		rec->target = a->target;
		rec->target_tgid = a->tgid;
		rec->sig = a->sig;
		rec->ret = ret;
		rec->syscall = a->nr;
		rec->_pad = 0;
		event_submit(ctx, rec, sizeof(*rec));
	}
	bpf_map_delete_elem(&kills, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
