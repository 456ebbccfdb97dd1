// SPDX-License-Identifier: GPL-2.0
/* tcpaccept: one record per TCP connection accepted by accept()/accept4(), in the accepting
 * task's context, without kprobes: at sys_exit the new descriptor (the result) leads through
 * task->files to its socket, whose ends are read with CO-RE. A failed accept writes nothing. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.bpf.h"
#include "tcp.bpf.h"
#include "sockfd.bpf.h"

struct tcp_accept_record {
	struct event_header h; /* the accepting task */
	struct tcp_ends ends;  /* sport: the local (listening) port; ends.state: 0 */
	__s32 fd;              /* the new descriptor */
	__u32 syscall;         /* accept or accept4 */
};
EVENT_RECORD(struct tcp_accept_record);

SEC("tp_btf/sys_exit")
int BPF_PROG(tcpaccept_exit, struct pt_regs *regs, long ret)
{
	struct tcp_accept_record *rec;
	struct socket *sock;
	struct sock *sk;
	long nr = event_syscall_nr(regs);

	if (nr != EV_NR_accept && nr != EV_NR_accept4)
		return 0;
	if (ret < 0 || !event_wanted())
		return 0;
	sock = event_socket_of_fd(ret);
	if (!sock)
		return 0;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_EV)
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (!rec)
		return 0;
	event_header_fill(&rec->h, EVENT_TCP_ACCEPT, sizeof(*rec));
	tcp_ends_of(&rec->ends, sk);
	rec->fd = ret;
	rec->syscall = nr;
	event_submit(ctx, rec, sizeof(*rec));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
