// SPDX-License-Identifier: GPL-2.0
/* execsnoop: one record per execve()/execveat(), successful or not, with the argument list.
 *
 * sys_enter keeps the arguments (read from the caller's memory, which the exec replaces) in a
 * map keyed by thread group; sys_exit adds the result and the command name (the new program's
 * on success) and copies the record into the ring, only as many bytes as the arguments use.
 * Keyed by thread group, not thread: a successful exec from a non-leader thread returns as the
 * leader. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"

#define EXEC_ARGS_MAX 20   /* arguments kept */
#define EXEC_ARG_LEN 256   /* bytes kept per argument, its NUL included */
#define EXEC_ARGS_SIZE (EXEC_ARGS_MAX * EXEC_ARG_LEN)

#define EXEC_TRUNC_ARGC 1 /* more than EXEC_ARGS_MAX arguments */
#define EXEC_TRUNC_ARG 2  /* an argument filled EXEC_ARG_LEN bytes: it may be cut */
#define EXEC_TRUNC_FAULT 4 /* an argument could not be read */

struct exec_record {
	struct event_header h;
	__u32 ppid;
	__u32 uid;
	__s32 ret;       /* 0 or -errno */
	__u32 argc;      /* arguments in args */
	__u32 args_size; /* bytes used in args: argc NUL-terminated strings */
	__u32 flags;     /* EXEC_TRUNC_* */
	char args[EXEC_ARGS_SIZE];
};
EVENT_RECORD(struct exec_record);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct exec_record);
} execs SEC(".maps");

/* Scratch space: a record is too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_record);
} exec_scratch SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(execsnoop_enter, struct pt_regs *regs, long id)
{
	const char *const *argv;
	struct exec_record *rec;
	struct task_struct *task;
	__u32 zero = 0, tgid, i;

	if (id != EV_NR_execve && id != EV_NR_execveat)
		return 0;
	if (!event_wanted())
		return 0;
	rec = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!rec)
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	task = (struct task_struct *)bpf_get_current_task(); /* not _btf: 5.11+ */
	rec->ppid = BPF_CORE_READ(task, real_parent, tgid);
	rec->uid = (__u32)bpf_get_current_uid_gid();
	rec->ret = 0;
	rec->argc = 0;
	rec->args_size = 0;
	rec->flags = 0;
	if (id == EV_NR_execve)
		argv = (const char *const *)PT_REGS_PARM2_CORE_SYSCALL(regs);
	else
		argv = (const char *const *)PT_REGS_PARM3_CORE_SYSCALL(regs);

	/* argv may be NULL: Linux takes that as an empty list. */
	for (i = 0; argv && i < EXEC_ARGS_MAX; i++) {
		const char *arg = NULL;
		__u32 off = rec->args_size;
		long n;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) != 0) {
			rec->flags |= EXEC_TRUNC_FAULT;
			break;
		}
		if (!arg)
			break;
		if (off > EXEC_ARGS_SIZE - EXEC_ARG_LEN)
			break; /* cannot happen (each argument takes at most EXEC_ARG_LEN); the verifier needs the bound */
		n = bpf_probe_read_user_str(&rec->args[off], EXEC_ARG_LEN, arg);
		if (n <= 0) {
			rec->flags |= EXEC_TRUNC_FAULT;
			break;
		}
		if (n == EXEC_ARG_LEN)
			rec->flags |= EXEC_TRUNC_ARG;
		rec->args_size = off + n;
		rec->argc++;
	}
	if (argv && i == EXEC_ARGS_MAX) {
		const char *more = NULL;

		if (bpf_probe_read_user(&more, sizeof(more), &argv[EXEC_ARGS_MAX]) == 0 && more)
			rec->flags |= EXEC_TRUNC_ARGC;
	}
	bpf_map_update_elem(&execs, &tgid, rec, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(execsnoop_exit, struct pt_regs *regs, long ret)
{
	struct exec_record *rec;
	long nr = event_syscall_nr(regs);
	__u32 tgid, size, args;

	if (nr != EV_NR_execve && nr != EV_NR_execveat)
		return 0;
	tgid = bpf_get_current_pid_tgid() >> 32;
	rec = bpf_map_lookup_elem(&execs, &tgid);
	if (!rec)
		return 0;
	rec->ret = ret;
	args = rec->args_size;
	if (args > EXEC_ARGS_SIZE)
		args = EXEC_ARGS_SIZE;
	size = sizeof(*rec) - EXEC_ARGS_SIZE + args;
	event_header_fill(&rec->h, EVENT_EXEC, size);
	event_output(ctx, rec, size);
	bpf_map_delete_elem(&execs, &tgid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
