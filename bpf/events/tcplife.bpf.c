// SPDX-License-Identifier: GPL-2.0
/* tcplife: one record per TCP connection that closes, with its addresses, ports, bytes sent and
 * received, and lifetime (from its first state change to CLOSE).
 *
 * All from inet_sock_set_state. The owning task is taken where the kernel is in the owner's
 * context: connect() (-> SYN_SENT) and close()/shutdown() (-> FIN_WAIT1 or LAST_ACK). A
 * connection whose first state change came before attach is not reported (no birth time). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "events.bpf.h"
#include "tcp.bpf.h"

/* Kernels before sock_common's skc_flags kept the flags in struct sock. */
struct sock___flags_in_sock {
	unsigned long sk_flags;
} __attribute__((preserve_access_index));

struct tcp_owner {
	__u32 pid;
	__u32 tid;
	char comm[EVENT_COMM_LEN];
};

struct tcp_life_record {
	struct event_header h; /* pid, tid, comm: the owner (0 and "" when never seen) */
	struct tcp_ends ends;  /* ends.state: the state before CLOSE */
	__u64 tx_bytes;        /* payload bytes sent, each once (bytes_sent - bytes_retrans) */
	__u64 rx_bytes;        /* payload bytes received (bytes_received without the FIN) */
	__u64 duration_ns;
};
EVENT_RECORD(struct tcp_life_record);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* struct sock * */
	__type(value, __u64);
} tcp_births SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, struct tcp_owner);
} tcp_owners SEC(".maps");

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcplife_state, const struct sock *sk, const int oldstate, const int newstate)
{
	struct tcp_life_record *rec;
	struct tcp_owner *owner;
	struct tcp_sock *tp;
	__u64 key = (__u64)sk, now, *birth, rx;
	unsigned long sk_flags;

	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP_EV)
		return 0;
	now = bpf_ktime_get_ns();
	if (newstate < TCP_FIN_WAIT1_EV)
		bpf_map_update_elem(&tcp_births, &key, &now, BPF_NOEXIST);
	if (newstate == TCP_SYN_SENT_EV || newstate == TCP_FIN_WAIT1_EV || newstate == TCP_LAST_ACK_EV) {
		struct tcp_owner o = {};
		__u64 id = bpf_get_current_pid_tgid();

		o.pid = id >> 32;
		o.tid = (__u32)id;
		bpf_get_current_comm(&o.comm, sizeof(o.comm));
		bpf_map_update_elem(&tcp_owners, &key, &o, BPF_NOEXIST);
	}
	if (newstate != TCP_CLOSE_EV)
		return 0;

	birth = bpf_map_lookup_elem(&tcp_births, &key);
	if (!birth)
		goto out;
	owner = bpf_map_lookup_elem(&tcp_owners, &key);
	if (targ_tgid != 0 && (!owner || owner->pid != targ_tgid))
		goto out;
	rec = event_reserve(sizeof(*rec));
	if (!rec)
		goto out;
	rec->h.ts_ns = now;
	rec->h.kind = EVENT_TCP_LIFE;
	rec->h.size = sizeof(*rec);
	if (owner) {
		rec->h.pid = owner->pid;
		rec->h.tid = owner->tid;
		__builtin_memcpy(rec->h.comm, owner->comm, sizeof(rec->h.comm));
	} else {
		rec->h.pid = 0;
		rec->h.tid = 0;
		__builtin_memset(rec->h.comm, 0, sizeof(rec->h.comm));
	}
	tcp_ends_of(&rec->ends, sk);
	rec->ends.state = oldstate;
	tp = (struct tcp_sock *)sk;
	/* bytes_acked and bytes_received count sequence space, so SYN and FIN add one each;
	 * payload counters are exact. The FIN received is known by SOCK_DONE, which only tcp_fin()
	 * sets on a TCP socket. */
	rec->tx_bytes = BPF_CORE_READ(tp, bytes_sent) - BPF_CORE_READ(tp, bytes_retrans);
	rx = BPF_CORE_READ(tp, bytes_received);
	if (bpf_core_field_exists(sk->__sk_common.skc_flags))
		sk_flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	else
		sk_flags = BPF_CORE_READ((struct sock___flags_in_sock *)sk, sk_flags);
	if (rx > 0 && (sk_flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))))
		rx -= 1;
	rec->rx_bytes = rx;
	rec->duration_ns = now - *birth;
	event_submit(ctx, rec, sizeof(*rec));
out:
	bpf_map_delete_elem(&tcp_births, &key);
	bpf_map_delete_elem(&tcp_owners, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
