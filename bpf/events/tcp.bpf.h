/* Shared by tcpconnect and tcplife: socket addresses as 16 bytes (IPv4 as IPv4-mapped IPv6,
 * ::ffff:a.b.c.d, for the `inet_ip` decoder) and ports in host order. */
#pragma once

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP_EV 6

#define TCP_ESTABLISHED_EV 1
#define TCP_SYN_SENT_EV 2
#define TCP_SYN_RECV_EV 3
#define TCP_FIN_WAIT1_EV 4
#define TCP_CLOSE_EV 7
#define TCP_LAST_ACK_EV 9

struct tcp_ends {
	__u16 family;
	__u16 sport; /* local, host order */
	__u16 dport; /* remote, host order */
	__u16 state; /* the state the socket left (tcplife) or 0 */
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline void tcp_ends_of(struct tcp_ends *e, const struct sock *sk)
{
	__u32 v4;

	__builtin_memset(e, 0, sizeof(*e));
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* skc_num is cleared when the socket releases its port (at CLOSE, before the tracepoint);
	 * inet_sport keeps it. Before the port is chosen both are 0. */
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!e->sport)
		e->sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	e->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == AF_INET) {
		e->saddr[10] = 0xff;
		e->saddr[11] = 0xff;
		e->daddr[10] = 0xff;
		e->daddr[11] = 0xff;
		v4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(&e->saddr[12], &v4, 4);
		v4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(&e->daddr[12], &v4, 4);
	} else {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}
