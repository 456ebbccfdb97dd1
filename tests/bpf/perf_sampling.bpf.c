// SPDX-License-Identifier: GPL-2.0
/* Test object: software cpu-clock samples at 99 Hz per CPU, counted by the command name of the
 * task on CPU (tests/configs/perf_sampling.yaml, tests/live_compat.rs). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bits.bpf.h"

struct t_comm_key {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct t_comm_key);
	__type(value, u64);
} cpu_samples_total SEC(".maps");

/* PERF_TYPE_SOFTWARE (1), PERF_COUNT_SW_CPU_CLOCK (0) */
SEC("perf_event/type=1,config=0,frequency=99")
int cpu_clock_sample(struct bpf_perf_event_data *ctx)
{
	struct t_comm_key k;

	__builtin_memset(&k, 0, sizeof(k));
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	ebpfx_count(&cpu_samples_total, &k, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
