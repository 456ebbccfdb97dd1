// SPDX-License-Identifier: GPL-2.0
/* tcpconnect: one record per active TCP open (connect()), from the CLOSE -> SYN_SENT state
 * change, which the kernel makes in the connecting task's context. The local port is usually
 * not chosen yet at that point (0 unless the socket was bound). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.bpf.h"
#include "tcp.bpf.h"

#define PORTS_MAX 8
/* --port: only connections to these remote ports (host order); filter_ports_len 0 = any. */
const volatile __u16 filter_ports[PORTS_MAX] = {};
const volatile __u32 filter_ports_len = 0;

struct tcp_connect_record {
	struct event_header h;
	struct tcp_ends ends;
	__u64 cookie; /* the socket's kernel address: tells live connections apart (hidden) */
};
EVENT_RECORD(struct tcp_connect_record);

static __always_inline bool port_wanted(__u16 port)
{
	__u32 i;

	if (filter_ports_len == 0)
		return true;
	for (i = 0; i < PORTS_MAX; i++) {
		if (i >= filter_ports_len)
			break;
		if (filter_ports[i] == port)
			return true;
	}
	return false;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcpconnect_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct tcp_connect_record *rec;
	struct tcp_ends ends;

	if (newstate != TCP_SYN_SENT_EV || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_EV)
		return 0;
	if (!event_wanted())
		return 0;
	tcp_ends_of(&ends, sk);
	if (!port_wanted(ends.dport))
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (!rec)
		return 0;
	event_header_fill(&rec->h, EVENT_TCP_CONNECT, sizeof(*rec));
	__builtin_memcpy(&rec->ends, &ends, sizeof(ends));
	/* Not bpf_get_socket_cookie(): raw_tp (the fallback without kernel BTF) may not call it. */
	rec->cookie = (__u64)(unsigned long)sk;
	event_submit(ctx, rec, sizeof(*rec));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
