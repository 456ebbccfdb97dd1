// SPDX-License-Identifier: GPL-2.0
/* Test object: packets seen by XDP on lo, by ethernet protocol, IP protocol and UDP destination
 * port (tests/configs/xdp_lo.yaml, tests/live_compat.rs). Every packet passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "bits.bpf.h"

#define ETH_P_IP 0x0800
#define IPPROTO_UDP_ 17

struct t_xdp_key {
	u16 eth_proto;
	u16 ip_proto;
	u16 dst_port;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct t_xdp_key);
	__type(value, u64);
} xdp_packets_total SEC(".maps");

SEC("xdp/lo")
int xdp_count_lo(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct t_xdp_key k;

	__builtin_memset(&k, 0, sizeof(k));
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	k.eth_proto = bpf_ntohs(eth->h_proto);
	if (k.eth_proto == ETH_P_IP) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return XDP_PASS;
		k.ip_proto = ip->protocol;
		if (ip->protocol == IPPROTO_UDP_ && ip->ihl == 5) {
			struct udphdr *udp = (void *)(ip + 1);

			if ((void *)(udp + 1) > data_end)
				return XDP_PASS;
			k.dst_port = bpf_ntohs(udp->dest);
		}
	}
	ebpfx_count(&xdp_packets_total, &k, 1);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
