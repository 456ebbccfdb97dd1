/* Targets and kernel-side --by labels, shared by every task-context built-in (one copy here,
 * none per tool). ebpfx writes the const volatile globals before load (src/targets.rs), so the
 * verifier sees them as constants: with no target and no --by label, every branch below is dead
 * code and the unfiltered path costs one constant test that the compiler and verifier remove.
 *
 * Targets (-p, --tid, --comm, --cgroup, `-- COMMAND`): a task is traced when it matches every
 * kind of target that is set (a pid set AND a comm set), any value within a kind.
 *   -p/--pid and `-- COMMAND`: the thread-group id is in ebpfx_target_pids; for `-- COMMAND`
 *     the program ebpfx_follow_fork (autoload off unless ebpfx turns it on) adds every child
 *     forked by a traced process, so descendants are followed in the kernel;
 *   --tid: the thread id is in ebpfx_target_tids;
 *   --comm: the 16-byte, zero-padded command name is in ebpfx_target_comms;
 *   --cgroup: the task's cgroup v2 ancestor at the target's level is the target (tasks in the
 *     cgroup or below it).
 * Kernel-side --by labels: struct ebpfx_by in a key, each field left zero unless ebpfx_by asks
 * for it (the YAML label then turns on; otherwise ebpfx decodes those bytes as padding), so an
 * unasked field never splits a key and maps stay as small as without it. */
#pragma once

#include <bpf/bpf_core_read.h>

#define EBPFX_TARGET_PID 1
#define EBPFX_TARGET_TID 2
#define EBPFX_TARGET_COMM 4
#define EBPFX_TARGET_CGROUP 8

#define EBPFX_BY_PID 1
#define EBPFX_BY_COMM 2
#define EBPFX_BY_CGROUP 4
#define EBPFX_BY_CPU 8

#define EBPFX_COMM_LEN 16

const volatile __u32 ebpfx_target = 0;		    /* EBPFX_TARGET_* bits; 0: every task */
const volatile __u64 ebpfx_target_cgroup_id = 0;    /* cgroup v2 id (directory inode) */
const volatile __u32 ebpfx_target_cgroup_level = 0; /* its depth below the root (root: 0) */
const volatile __u32 ebpfx_by = 0;		    /* EBPFX_BY_* bits: fields to fill */
const volatile __u32 ebpfx_target_pid1 = 0;	    /* -p with one pid: compared, no lookup */

/* Allocated on use: a run without targets pays no memory for them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* thread-group id */
	__type(value, __u8);
} ebpfx_target_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32); /* thread id */
	__type(value, __u8);
} ebpfx_target_tids SEC(".maps");

struct ebpfx_comm {
	char comm[EBPFX_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ebpfx_comm);
	__type(value, __u8);
} ebpfx_target_comms SEC(".maps");

/* Kernels before 6.1 keep the ancestors' ids, not pointers. */
struct cgroup___ebpfx_old {
	int level;
	__u64 ancestor_ids[];
} __attribute__((preserve_access_index));

/* Whether cgroup `cg` is the target cgroup or below it. */
static __always_inline bool ebpfx_cgroup_below(struct cgroup *cg)
{
	__u32 want = ebpfx_target_cgroup_level;
	__u64 id = 0;
	int level;

	if (!cg)
		return false;
	level = BPF_CORE_READ(cg, level);
	if (level < (int)want)
		return false;
	if (bpf_core_field_exists(struct cgroup, ancestors)) {
		struct cgroup *anc = NULL;

		bpf_core_read(&anc, sizeof(anc), &cg->ancestors[want]);
		if (!anc)
			return false;
		id = BPF_CORE_READ(anc, kn, id);
	} else {
		struct cgroup___ebpfx_old *old = (void *)cg;

		bpf_core_read(&id, sizeof(id), &old->ancestor_ids[want]);
	}
	return id == ebpfx_target_cgroup_id;
}

/* Whether the pid/tid/comm/cgroup given (of any task) match the targets. */
static __always_inline bool ebpfx_target_match(__u32 tgid, __u32 tid, struct ebpfx_comm *comm,
					       struct cgroup *cg)
{
	__u32 mask = ebpfx_target;

	if (mask & EBPFX_TARGET_PID) {
		if (ebpfx_target_pid1) {
			if (tgid != ebpfx_target_pid1)
				return false;
		} else if (!bpf_map_lookup_elem(&ebpfx_target_pids, &tgid)) {
			return false;
		}
	}
	if ((mask & EBPFX_TARGET_TID) && !bpf_map_lookup_elem(&ebpfx_target_tids, &tid))
		return false;
	if ((mask & EBPFX_TARGET_COMM) && comm && !bpf_map_lookup_elem(&ebpfx_target_comms, comm))
		return false;
	if ((mask & EBPFX_TARGET_CGROUP) && !ebpfx_cgroup_below(cg))
		return false;
	return true;
}

/* Whether the current task is traced. The first test is a load-time constant. */
static __always_inline bool ebpfx_target_current(void)
{
	struct ebpfx_comm comm;
	struct cgroup *cg = NULL;
	__u64 id;

	if (!ebpfx_target)
		return true;
	id = bpf_get_current_pid_tgid();
	__builtin_memset(&comm, 0, sizeof(comm));
	if (ebpfx_target & EBPFX_TARGET_COMM)
		bpf_get_current_comm(comm.comm, sizeof(comm.comm));
	if (ebpfx_target & EBPFX_TARGET_CGROUP) {
		struct task_struct *t = (void *)bpf_get_current_task();

		cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	}
	return ebpfx_target_match(id >> 32, (__u32)id, &comm, cg);
}

/* Whether task `t` (not necessarily current, e.g. sched_switch's next) is traced. */
static __always_inline bool ebpfx_target_task(struct task_struct *t)
{
	struct ebpfx_comm comm;
	struct cgroup *cg = NULL;

	if (!ebpfx_target)
		return true;
	__builtin_memset(&comm, 0, sizeof(comm));
	if (ebpfx_target & EBPFX_TARGET_COMM)
		BPF_CORE_READ_STR_INTO(&comm.comm, t, comm);
	if (ebpfx_target & EBPFX_TARGET_CGROUP)
		cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	return ebpfx_target_match(BPF_CORE_READ(t, tgid), BPF_CORE_READ(t, pid), &comm, cg);
}

/* The kernel-side --by fields of a key (configs declare them as labels pid, cpu, comm, cgroup
 * in this order, listed under `kernel_labels`). 32 bytes, no padding inside. */
struct ebpfx_by {
	__u32 pid; /* thread-group id */
	__u32 cpu;
	char comm[EBPFX_COMM_LEN];
	__u64 cgroup; /* cgroup v2 id */
};

/* Fills the asked fields from the current task; the caller zeroed the key. */
static __always_inline void ebpfx_by_current(struct ebpfx_by *by)
{
	if (!ebpfx_by)
		return;
	if (ebpfx_by & EBPFX_BY_PID)
		by->pid = bpf_get_current_pid_tgid() >> 32;
	if (ebpfx_by & EBPFX_BY_CPU)
		by->cpu = bpf_get_smp_processor_id();
	if (ebpfx_by & EBPFX_BY_COMM)
		bpf_get_current_comm(by->comm, sizeof(by->comm));
	if (ebpfx_by & EBPFX_BY_CGROUP)
		by->cgroup = bpf_get_current_cgroup_id();
}

/* Fills the asked fields from task `t` (cpu: the CPU the program runs on). */
static __always_inline void ebpfx_by_task(struct ebpfx_by *by, struct task_struct *t)
{
	if (!ebpfx_by)
		return;
	if (ebpfx_by & EBPFX_BY_PID)
		by->pid = BPF_CORE_READ(t, tgid);
	if (ebpfx_by & EBPFX_BY_CPU)
		by->cpu = bpf_get_smp_processor_id();
	if (ebpfx_by & EBPFX_BY_COMM)
		BPF_CORE_READ_STR_INTO(&by->comm, t, comm);
	if (ebpfx_by & EBPFX_BY_CGROUP)
		by->cgroup = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

/* `-- COMMAND`: a process forked by a traced process is traced too. Loaded only when ebpfx
 * runs a command (the `?` prefix turns autoload off by default). */
SEC("?tp_btf/sched_process_fork")
int BPF_PROG(ebpfx_follow_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;

	if (ptgid != ctgid && bpf_map_lookup_elem(&ebpfx_target_pids, &ptgid))
		bpf_map_update_elem(&ebpfx_target_pids, &ctgid, &one, BPF_ANY);
	return 0;
}
