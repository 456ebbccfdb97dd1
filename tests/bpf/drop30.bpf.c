// SPDX-License-Identifier: GPL-2.0
/* Test helper: a tc ingress filter dropping ~30% of packets, to cause TCP retransmits inside a
 * test's own network namespace (this kernel has no netem). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

SEC("tc")
int drop30(struct __sk_buff *skb)
{
	return bpf_get_prandom_u32() % 100 < 30 ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
