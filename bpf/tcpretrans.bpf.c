// SPDX-License-Identifier: GPL-2.0
/* tcpretrans: TCP segment retransmissions, by remote address, remote port and socket state.
 * IPv4 peers are stored as IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) so one 16-byte
 * `inet_ip` label covers both families (it prints them as dotted quads). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "bits.bpf.h"

#define AF_INET 2
#define AF_INET6 10

struct retrans_key {
	u8 daddr[16]; /* IPv6, or IPv4-mapped IPv6: decoded by `inet_ip` */
	u16 dport;    /* host order */
	u8 state;     /* TCP_ESTABLISHED .. TCP_NEW_SYN_RECV */
	u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct retrans_key);
	__type(value, u64);
} tcp_retransmits_total SEC(".maps");

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcpretrans_retransmit, const struct sock *sk, const struct sk_buff *skb, int err)
{
	struct retrans_key key;
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	u32 daddr4;

	__builtin_memset(&key, 0, sizeof(key));
	if (family == AF_INET) {
		daddr4 = BPF_CORE_READ(sk, __sk_common.skc_daddr); /* network order */
		key.daddr[10] = 0xff;
		key.daddr[11] = 0xff;
		__builtin_memcpy(&key.daddr[12], &daddr4, sizeof(daddr4));
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&key.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		return 0;
	}
	key.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	key.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	ebpfx_count(&tcp_retransmits_total, &key, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
