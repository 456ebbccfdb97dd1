// SPDX-License-Identifier: GPL-2.0
/* tcpflows: per-flow TCP state as gauges (smoothed RTT, congestion window, delivery rate, bytes
 * acked: the last value seen), plus a histogram of smoothed RTT samples with fixed buckets.
 *
 * Events that observe a flow (gauges and one RTT histogram sample): tcp_probe (every segment
 * received in ESTABLISHED, traced before the segment's ACK is processed) and
 * tcp_rcv_space_adjust (the application read data, in any state).
 * Events that refresh the gauges only (no histogram sample), so that each flow ends with its
 * final numbers: every TCP state change (inet_sock_set_state: the ACKs processed after the last
 * tcp_probe, e.g. those of the last data and of the FIN, have been processed when FIN_WAIT1 or
 * LAST_ACK is left), socket destruction (tcp_destroy_sock), and a walk over every TCP socket
 * (iter/tcp) that ebpfx runs before each read of the maps, which also reports idle flows that
 * had no event in the window.
 * Addresses are stored as IPv6, IPv4 ones as IPv4-mapped (::ffff:a.b.c.d), for `inet_ip`.
 *
 * Flow selection (--port, --addr, --state) happens here, through read-only globals that ebpfx
 * writes before load: the label set of the gauges stays as small as the selection. A refresh
 * event in a state --state does not select (e.g. the flow closing) updates a flow already
 * reported but does not add one. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "bits.bpf.h"

#define AF_INET 2
#define AF_INET6 10

/* --port N: local or remote port (host order); 0 = any. */
const volatile u16 filter_port = 0;
/* --addr PREFIX: local or remote address within filter_addr/filter_addr_bits (IPv4 prefixes
 * as IPv4-mapped, 96 + their length); 0 bits = any. */
const volatile u8 filter_addr[16] = {};
const volatile u32 filter_addr_bits = 0;
/* --state NAME: TCP state at the event (1 ESTABLISHED .. 12 NEW_SYN_RECV); 0 = any. */
const volatile u8 filter_state = 0;

struct flow_key {
	u8 saddr[16]; /* local */
	u8 daddr[16]; /* remote */
	u16 sport;    /* host order */
	u16 dport;    /* host order */
};

struct rtt_key {
	u64 bucket; /* fixed bucket: upper bound in units of 10 us */
};

#define FLOW_MAP(name)                                                                             \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_HASH);                                                   \
		__uint(max_entries, 10240);                                                        \
		__type(key, struct flow_key);                                                      \
		__type(value, u64);                                                                \
	} name SEC(".maps")

FLOW_MAP(tcp_flow_smoothed_rtt);
FLOW_MAP(tcp_flow_congestion_window);
FLOW_MAP(tcp_flow_delivery_rate_bytes_per_second);
FLOW_MAP(tcp_flow_acked_bytes);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, struct rtt_key);
	__type(value, u64);
} tcp_flow_rtt_seconds SEC(".maps");

/* Bucket bounds in units of 10 us (bucket_multiplier 0.00001: every bound times it is an exact
 * decimal, so `le` reads 0.0001 .. 0.5 rather than 9.999999999999999e-05); they must match
 * bucket_keys in configs/tcpflows.yaml. The last one (300 s, beyond TCP's largest RTO of 120 s)
 * catches everything above 500 ms. */
#define NR_BOUNDS 10
static const u64 rtt_bounds[NR_BOUNDS] = { 10, 50, 100, 500, 1000, 5000, 10000, 20000, 50000, 30000000 };
#define RTT_SUM_KEY (30000000 + 1)

static __always_inline bool addr_selected(const u8 *addr)
{
	u32 bits = filter_addr_bits;
	u8 mask;
	int i;

	for (i = 0; i < 16; i++) {
		if (bits == 0)
			return true;
		mask = bits >= 8 ? 0xff : (u8)(0xff << (8 - bits));
		if ((addr[i] ^ filter_addr[i]) & mask)
			return false;
		bits = bits >= 8 ? bits - 8 : 0;
	}
	return true;
}

/* A gauge keeps the last value. BPF_EXIST only updates a flow already reported. */
static __always_inline void set_gauge(void *map, const struct flow_key *key, u64 value, u64 flags)
{
	bpf_map_update_elem(map, key, &value, flags);
}

static __always_inline void observe_rtt(u64 rtt_us)
{
	struct rtt_key key = {};
	u64 rtt = (rtt_us + 5) / 10; /* units of 10 us, rounded */
	int i;

	key.bucket = rtt_bounds[NR_BOUNDS - 1];
	for (i = 0; i < NR_BOUNDS; i++) {
		if (rtt <= rtt_bounds[i]) {
			key.bucket = rtt_bounds[i];
			break;
		}
	}
	ebpfx_count(&tcp_flow_rtt_seconds, &key, 1);
	key.bucket = RTT_SUM_KEY;
	ebpfx_count(&tcp_flow_rtt_seconds, &key, rtt);
}

/* What an event does with the flow: observe it (gauges and a histogram sample), or refresh its
 * gauges only. */
enum mode { OBSERVE, REFRESH };

/* Gauges of the flow of `sk`. `selected`: the state filter selects the flow at this event (a
 * refresh of a flow it does not select only updates gauges the flow already has). */
static __always_inline void record(struct sock *sk, enum mode mode, bool selected)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct flow_key key;
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	u32 saddr4, daddr4, rate, interval, mss;
	u64 srtt_us, rate64 = 0, flags;

	if (!selected && mode == OBSERVE)
		return;
	flags = selected ? BPF_ANY : BPF_EXIST;
	__builtin_memset(&key, 0, sizeof(key));
	if (family == AF_INET) {
		saddr4 = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		daddr4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		key.saddr[10] = key.saddr[11] = 0xff;
		key.daddr[10] = key.daddr[11] = 0xff;
		__builtin_memcpy(&key.saddr[12], &saddr4, sizeof(saddr4));
		__builtin_memcpy(&key.daddr[12], &daddr4, sizeof(daddr4));
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&key.saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&key.daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		return;
	}
	/* inet_sport rather than skc_num: closing a socket unhashes it and zeroes skc_num before the
	 * last state change and the destruction are traced. */
	key.sport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	if (key.sport == 0)
		key.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	key.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (filter_port && key.sport != filter_port && key.dport != filter_port)
		return;
	if (filter_addr_bits && !addr_selected(key.saddr) && !addr_selected(key.daddr))
		return;

	srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3; /* the kernel keeps 8 x srtt */
	if (srtt_us == 0)
		return; /* no RTT sample yet (or a listening socket) */
	set_gauge(&tcp_flow_acked_bytes, &key, BPF_CORE_READ(tp, bytes_acked), flags);
	set_gauge(&tcp_flow_smoothed_rtt, &key, srtt_us, flags);
	set_gauge(&tcp_flow_congestion_window, &key, BPF_CORE_READ(tp, snd_cwnd), flags);
	/* As tcp_get_info computes tcpi_delivery_rate. */
	rate = BPF_CORE_READ(tp, rate_delivered);
	interval = BPF_CORE_READ(tp, rate_interval_us);
	mss = BPF_CORE_READ(tp, mss_cache);
	if (rate && interval)
		rate64 = (u64)rate * mss * 1000000 / interval;
	set_gauge(&tcp_flow_delivery_rate_bytes_per_second, &key, rate64, flags);
	if (mode == OBSERVE)
		observe_rtt(srtt_us);
}

static __always_inline bool state_selected(u32 state)
{
	return filter_state == 0 || state == filter_state;
}

static __always_inline u32 sk_state(struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_state);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcpflows_probe, struct sock *sk, const struct sk_buff *skb)
{
	record(sk, OBSERVE, state_selected(sk_state(sk)));
	return 0;
}

SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(tcpflows_rcv_space_adjust, struct sock *sk)
{
	record(sk, OBSERVE, state_selected(sk_state(sk)));
	return 0;
}

/* Fires before the state is stored: the segment that caused it has been processed. The flow is
 * selected by the state it leaves or enters. */
SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcpflows_set_state, struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	record(sk, REFRESH, state_selected(oldstate) || state_selected(newstate));
	return 0;
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcpflows_destroy, struct sock *sk)
{
	record(sk, REFRESH, state_selected(sk_state(sk)));
	return 0;
}

/* Every TCP socket of the network namespace, walked when ebpfx reads the maps: flows without any
 * event in the window (idle ones) are reported too, with their numbers at that moment. */
SEC("iter/tcp")
int tcpflows_iter(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc); /* NULL for TIME_WAIT and request sockets */
	if (!tp)
		return 0;
	record((struct sock *)tp, REFRESH, state_selected(sk_state((struct sock *)tp)));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
