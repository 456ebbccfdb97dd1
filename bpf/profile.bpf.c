// SPDX-License-Identifier: GPL-2.0
/* profile: on-CPU stack sampling. A software cpu-clock perf event fires FREQ times a second on
 * every CPU (ebpfx opens one event per online CPU; `--frequency HZ` overrides the 99 Hz of the
 * section name); each sample counts the interrupted task's kernel and user stacks, as ids into a
 * stack-trace map (stacks.bpf.h) whose frames ebpfx reads and symbolizes (kstack via
 * /proc/kallsyms, ustack via the process' ELF files). Idle (pid 0) is left out, as in bcc's
 * profile. User stacks are walked by frame pointers: code built without them shows its leaf
 * frame and little else. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"
#include "stacks.bpf.h"

#define COMM_LEN 16

struct stack_key {
	char comm[COMM_LEN]; /* decoded by `string` */
	u32 pid;             /* process id (tgid); `uint`, read by `ustack` */
	s32 kstack;          /* kernel stack id in cpu_stacks, or a negative error */
	s32 ustack;          /* user stack id in cpu_stacks, or a negative error */
	u32 _pad;
};

/* Sized at load by ebpfx: depth perf_event_max_stack, one entry per possible count key
 * (a quarter of that for the spill map). */
EBPFX_STACK_MAPS(cpu_stacks);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stack_key);
	__type(value, u64);
} cpu_samples_total SEC(".maps");

SEC("perf_event/type=1,config=0,frequency=99")
int profile_sample(struct bpf_perf_event_data *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	struct stack_key key;

	if ((u32)id == 0) /* the idle task */
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.pid = id >> 32;
	key.kstack = ebpfx_stack_id(ctx, &cpu_stacks, &cpu_stacks_spill, 0);
	key.ustack = ebpfx_stack_id(ctx, &cpu_stacks, &cpu_stacks_spill, BPF_F_USER_STACK);

	ebpfx_count(&cpu_samples_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
