// SPDX-License-Identifier: GPL-2.0
/* bindsnoop: one record per bind() of an IPv4 or IPv6 address: descriptor, protocol and socket
 * type, address, port and result. sys_enter reads the address (the caller's sockaddr) and the
 * socket behind the descriptor; sys_exit adds the result and writes the record. Binds of other
 * families (unix, netlink, packet) are not reported. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.bpf.h"
#include "tcp.bpf.h"
#include "sockfd.bpf.h"

struct bind_call {
	__s32 fd;
	__u16 family;   /* AF_INET or AF_INET6 */
	__u16 port;     /* host order */
	__u16 protocol; /* IPPROTO_*, 0 when fd is no socket */
	__u16 type;     /* SOCK_STREAM, SOCK_DGRAM, ...; 0 when fd is no socket */
	__u8 addr[16];  /* IPv4 as ::ffff:a.b.c.d */
};

struct bind_record {
	struct event_header h;
	struct bind_call c;
	__s32 ret; /* 0 or -errno */
};
EVENT_RECORD(struct bind_record);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct bind_call);
} binds SEC(".maps");

/* The start of a struct sockaddr_in or sockaddr_in6. */
struct ev_sockaddr {
	__u16 family;
	__u16 port;  /* network order */
	__u32 v4;    /* sin_addr; sin6_flowinfo for IPv6 */
	__u8 v6[16]; /* sin6_addr */
};

SEC("tp_btf/sys_enter")
int BPF_PROG(bindsnoop_enter, struct pt_regs *regs, long id)
{
	struct bind_call c = {};
	struct ev_sockaddr sa = {};
	struct socket *sock;
	const void *uaddr;
	long len;
	__u32 tid;

	if (id != EV_NR_bind || !event_wanted())
		return 0;
	uaddr = (const void *)PT_REGS_PARM2_CORE_SYSCALL(regs);
	len = PT_REGS_PARM3_CORE_SYSCALL(regs);
	if (len < 16 || bpf_probe_read_user(&sa, len < (long)sizeof(sa) ? 16 : sizeof(sa), uaddr) != 0)
		return 0;
	if (sa.family == AF_INET) {
		c.addr[10] = 0xff;
		c.addr[11] = 0xff;
		__builtin_memcpy(&c.addr[12], &sa.v4, 4);
	} else if (sa.family == AF_INET6 && len >= (long)sizeof(sa)) {
		__builtin_memcpy(c.addr, sa.v6, 16);
	} else {
		return 0;
	}
	c.family = sa.family;
	c.port = bpf_ntohs(sa.port);
	c.fd = PT_REGS_PARM1_CORE_SYSCALL(regs);
	sock = event_socket_of_fd(c.fd);
	if (sock) {
		c.type = BPF_CORE_READ(sock, type);
		c.protocol = BPF_CORE_READ(sock, sk, sk_protocol);
	}
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&binds, &tid, &c, BPF_ANY);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(bindsnoop_exit, struct pt_regs *regs, long ret)
{
	struct bind_record *rec;
	struct bind_call *c;
	__u32 tid;

	if (event_syscall_nr(regs) != EV_NR_bind)
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	c = bpf_map_lookup_elem(&binds, &tid);
	if (!c)
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (rec) {
		event_header_fill(&rec->h, EVENT_BIND, sizeof(*rec));
		__builtin_memcpy(&rec->c, c, sizeof(rec->c));
		rec->ret = ret;
		event_submit(ctx, rec, sizeof(*rec));
	}
	bpf_map_delete_elem(&binds, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
