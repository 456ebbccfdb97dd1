// SPDX-License-Identifier: GPL-2.0
/* profile: on-CPU stack sampling. A software cpu-clock perf event fires FREQ times a second on
 * every CPU (ebpfx opens one event per online CPU; `--frequency HZ` overrides the 99 Hz of the
 * section name); each sample counts the interrupted task's kernel and user stacks, stored inline
 * in the key so that ebpfx can symbolize them (kstack via /proc/kallsyms, ustack via the
 * process' ELF files). Idle (pid 0) is left out, as in bcc's profile. User stacks are walked by
 * frame pointers: code built without them shows its leaf frame and little else. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

#define COMM_LEN 16
#define MAX_FRAMES 32

struct stack_key {
	char comm[COMM_LEN]; /* decoded by `string` */
	u32 pid;             /* process id (tgid); `uint`, read by `ustack` */
	u32 _pad;
	u64 kstack[MAX_FRAMES]; /* kernel return addresses, leaf first, zero-filled */
	u64 ustack[MAX_FRAMES]; /* user return addresses, leaf first, zero-filled */
};

/* The key is 536 bytes, larger than the 512-byte BPF stack: it is built in a per-CPU slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct stack_key);
} scratch SEC(".maps");

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
	u32 zero = 0;
	struct stack_key *key;

	if ((u32)id == 0) /* the idle task */
		return 0;
	key = bpf_map_lookup_elem(&scratch, &zero);
	if (!key)
		return 0;
	__builtin_memset(key, 0, offsetof(struct stack_key, kstack));
	bpf_get_current_comm(key->comm, sizeof(key->comm));
	key->pid = id >> 32;
	/* bpf_get_stack zero-fills what it does not write (and all of it on error: a kernel
	 * thread has no user stack, a sample taken in user mode no kernel stack). */
	bpf_get_stack(ctx, key->kstack, sizeof(key->kstack), 0);
	bpf_get_stack(ctx, key->ustack, sizeof(key->ustack), BPF_F_USER_STACK);

	ebpfx_count(&cpu_samples_total, key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
