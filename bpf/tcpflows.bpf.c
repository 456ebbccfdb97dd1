// SPDX-License-Identifier: GPL-2.0
/* tcpflows: per-flow TCP state as gauges (smoothed RTT, congestion window, delivery rate, bytes
 * acked: the last value seen), plus a histogram of smoothed RTT samples with fixed buckets.
 *
 * Events: tcp_probe (every segment received in ESTABLISHED) and tcp_rcv_space_adjust (the
 * application read data, in any state). A gauge entry is overwritten at each event.
 * Addresses are stored as IPv6, IPv4 ones as IPv4-mapped (::ffff:a.b.c.d), for `inet_ip`.
 *
 * Flow selection (--port, --addr, --state) happens here, through read-only globals that ebpfx
 * writes before load: the label set of the gauges stays as small as the selection. */
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

static __always_inline void set_gauge(void *map, const struct flow_key *key, u64 value)
{
	bpf_map_update_elem(map, key, &value, BPF_ANY); /* a gauge keeps the last value */
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

static __always_inline void record(struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct flow_key key;
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	u32 saddr4, daddr4, rate, interval, mss;
	u64 srtt_us, rate64 = 0;

	if (filter_state && BPF_CORE_READ(sk, __sk_common.skc_state) != filter_state)
		return;
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
	key.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	key.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (filter_port && key.sport != filter_port && key.dport != filter_port)
		return;
	if (filter_addr_bits && !addr_selected(key.saddr) && !addr_selected(key.daddr))
		return;

	srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3; /* the kernel keeps 8 x srtt */
	if (srtt_us == 0)
		return; /* no RTT sample yet */
	set_gauge(&tcp_flow_smoothed_rtt, &key, srtt_us);
	set_gauge(&tcp_flow_congestion_window, &key, BPF_CORE_READ(tp, snd_cwnd));
	set_gauge(&tcp_flow_acked_bytes, &key, BPF_CORE_READ(tp, bytes_acked));
	/* As tcp_get_info computes tcpi_delivery_rate. */
	rate = BPF_CORE_READ(tp, rate_delivered);
	interval = BPF_CORE_READ(tp, rate_interval_us);
	mss = BPF_CORE_READ(tp, mss_cache);
	if (rate && interval)
		rate64 = (u64)rate * mss * 1000000 / interval;
	set_gauge(&tcp_flow_delivery_rate_bytes_per_second, &key, rate64);
	observe_rtt(srtt_us);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcpflows_probe, struct sock *sk, const struct sk_buff *skb)
{
	record(sk);
	return 0;
}

SEC("tp_btf/tcp_rcv_space_adjust")
int BPF_PROG(tcpflows_rcv_space_adjust, struct sock *sk)
{
	record(sk);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
