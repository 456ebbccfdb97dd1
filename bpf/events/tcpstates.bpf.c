// SPDX-License-Identifier: GPL-2.0
/* tcpstates: one record per TCP state change (inet_sock_set_state), with both ends, the old and
 * the new state and how long the socket stayed in the old one.
 *
 * The task in the header is the one the kernel ran the change in: the socket's owner for
 * connect(), listen(), close() and shutdown(), but whatever task a packet interrupted for a
 * change made on receipt (often the sender on loopback, pid 0 in an idle CPU's softirq).
 * With -p (targ_tgid), a socket is followed from its first change made in that process's
 * context to its CLOSE: later changes on receipt are reported too. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.bpf.h"
#include "tcp.bpf.h"

struct tcp_state_record {
	struct event_header h;
	struct tcp_ends ends; /* ends.state: 0 (the states follow) */
	__u16 oldstate;
	__u16 newstate;
	__u32 _pad;
	__u64 old_ns; /* time in the old state; 0: the socket's earlier change was not seen */
	__u64 skaddr; /* the socket's kernel address, big-endian (`hex` prints it as usual) */
};
EVENT_RECORD(struct tcp_state_record);

/* struct sock * -> time of its last state change seen. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, __u64);
} tcp_last_change SEC(".maps");

/* -p: the sockets of the target process (struct sock * -> 1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, __u8);
} tcp_followed SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcpstates_change, const struct sock *sk, const int oldstate, const int newstate)
{
	struct tcp_state_record *rec;
	__u64 key = (__u64)sk, now, *last, old_ns = 0;
	__u8 one = 1;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_EV)
		return 0;
	now = bpf_ktime_get_ns();
	last = bpf_map_lookup_elem(&tcp_last_change, &key);
	if (last)
		old_ns = now - *last;
	if (newstate == TCP_CLOSE_EV)
		bpf_map_delete_elem(&tcp_last_change, &key);
	else
		bpf_map_update_elem(&tcp_last_change, &key, &now, BPF_ANY);

	if (targ_tgid != 0) {
		if (event_wanted())
			bpf_map_update_elem(&tcp_followed, &key, &one, BPF_ANY);
		else if (!bpf_map_lookup_elem(&tcp_followed, &key))
			return 0;
		if (newstate == TCP_CLOSE_EV)
			bpf_map_delete_elem(&tcp_followed, &key);
	}

	rec = event_reserve(sizeof(*rec));
	if (!rec)
		return 0;
	event_header_fill(&rec->h, EVENT_TCP_STATE, sizeof(*rec));
	rec->h.ts_ns = now;
	tcp_ends_of(&rec->ends, sk);
	rec->oldstate = oldstate;
	rec->newstate = newstate;
	rec->_pad = 0;
	rec->old_ns = old_ns;
	rec->skaddr = bpf_cpu_to_be64(key);
	event_submit(ctx, rec, sizeof(*rec));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
