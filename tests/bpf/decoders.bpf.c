// SPDX-License-Identifier: GPL-2.0
/* Test object: one uprobe on examples/probe_target.rs's ebpfx_probe_hit(a, b, text) fills one
 * map per decoder family (tests/configs/decoders.yaml, tests/live_compat.rs). Keys are derived
 * from the arguments so that the test knows every expected label value. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bits.bpf.h"

/* Set by ebpfx from /proc/kallsyms before load (config `kaddrs`). */
const volatile u64 kaddr_schedule = 0;
const volatile u64 kaddr_do_nanosleep = 0;

#define HASH_MAP(NAME, KEY)                          \
	struct {                                     \
		__uint(type, BPF_MAP_TYPE_HASH);     \
		__uint(max_entries, 64);             \
		__type(key, KEY);                    \
		__type(value, u64);                  \
	} NAME SEC(".maps")

struct t_uint_key {
	u8 u8v;
	u8 pad;
	u16 u16v;
	u32 u32v;
	u64 u64v;
};
HASH_MAP(uint_total, struct t_uint_key);

HASH_MAP(hex_total, u32);

struct t_text_key {
	char text[16];
};
HASH_MAP(string_total, struct t_text_key);
HASH_MAP(regexp_total, struct t_text_key);

struct t_dname_key {
	char wire[32];
};
HASH_MAP(dname_total, struct t_dname_key);

struct t_static_key {
	u32 mapped;
	u32 passthru;
	u32 nomap;
};
HASH_MAP(static_map_total, struct t_static_key);

struct t_inet_key {
	u8 v4[4];
	u8 v6[16];
	u8 v4mapped[16];
};
HASH_MAP(inet_ip_total, struct t_inet_key);

struct t_errno_key {
	u32 err;
	u32 pad;
	u64 nr;
};
HASH_MAP(errno_syscall_total, struct t_errno_key);

struct t_ksym_key {
	u64 exact;
	u64 inside;
	u64 stack[4];
};
HASH_MAP(ksym_total, struct t_ksym_key);

struct t_cgroup_key {
	u64 path;
	u64 id;
};
HASH_MAP(cgroup_total, struct t_cgroup_key);

struct t_dev_key {
	u32 ifindex;
	u32 dev;
};
HASH_MAP(device_total, struct t_dev_key);

struct t_pci_key {
	u64 vendor;
	u64 device;
	u64 class;
	u64 subclass;
};
HASH_MAP(pci_total, struct t_pci_key);

SEC("uprobe/probe_target:ebpfx_probe_hit")
int BPF_UPROBE(decoders_probe_hit, u64 a, u64 b, const char *text)
{
	u32 small = a & 0xff;

	struct t_uint_key uk;
	__builtin_memset(&uk, 0, sizeof(uk));
	uk.u8v = a;
	uk.u16v = a;
	uk.u32v = a;
	uk.u64v = a;
	ebpfx_count(&uint_total, &uk, 1);

	u32 hk = a;
	ebpfx_count(&hex_total, &hk, 1);

	/* The text argument is a wire-format DNS name when a == 4, a plain string otherwise. */
	if (a == 4) {
		struct t_dname_key dk;
		__builtin_memset(&dk, 0, sizeof(dk));
		bpf_probe_read_user_str(dk.wire, sizeof(dk.wire), text);
		ebpfx_count(&dname_total, &dk, 1);
	} else {
		struct t_text_key tk;
		__builtin_memset(&tk, 0, sizeof(tk));
		bpf_probe_read_user_str(tk.text, sizeof(tk.text), text);
		ebpfx_count(&string_total, &tk, 1);
		ebpfx_count(&regexp_total, &tk, 1);
	}

	struct t_static_key sk = { .mapped = small, .passthru = small, .nomap = small };
	ebpfx_count(&static_map_total, &sk, 1);

	/* 127.0.0.<a>, 2001:db8::<a>, ::ffff:10.1.2.<a> */
	struct t_inet_key ik;
	__builtin_memset(&ik, 0, sizeof(ik));
	ik.v4[0] = 127;
	ik.v4[3] = small;
	ik.v6[0] = 0x20;
	ik.v6[1] = 0x01;
	ik.v6[2] = 0x0d;
	ik.v6[3] = 0xb8;
	ik.v6[15] = small;
	ik.v4mapped[10] = 0xff;
	ik.v4mapped[11] = 0xff;
	ik.v4mapped[12] = 10;
	ik.v4mapped[13] = 1;
	ik.v4mapped[14] = 2;
	ik.v4mapped[15] = small;
	ebpfx_count(&inet_ip_total, &ik, 1);

	struct t_errno_key ek;
	__builtin_memset(&ek, 0, sizeof(ek));
	ek.err = small;
	ek.nr = small;
	ebpfx_count(&errno_syscall_total, &ek, 1);

	/* ksym: an exact symbol address and one byte into it (no symbol starts there);
	 * kstack: two frames inside schedule and do_nanosleep, then the terminating zero. */
	struct t_ksym_key kk;
	__builtin_memset(&kk, 0, sizeof(kk));
	kk.exact = kaddr_schedule;
	kk.inside = kaddr_schedule + 1;
	kk.stack[0] = kaddr_schedule + 4;
	kk.stack[1] = kaddr_do_nanosleep + 8;
	ebpfx_count(&ksym_total, &kk, 1);

	struct t_cgroup_key ck = { .path = bpf_get_current_cgroup_id(), .id = bpf_get_current_cgroup_id() };
	ebpfx_count(&cgroup_total, &ck, 1);

	/* Interface 1 is lo; 60000 is no interface. Device 0xfe00 is 254:0. */
	struct t_dev_key dv = { .ifindex = a == 4 ? 1 : 60000, .dev = 0xfe00 };
	ebpfx_count(&device_total, &dv, 1);

	/* Intel 82540EM, class 02 (network) subclass 00 (ethernet). */
	struct t_pci_key pk = {
		.vendor = 0x8086,
		.device = (0x8086ULL << 16) | 0x100e,
		.class = 0x02,
		.subclass = 0x0200,
	};
	ebpfx_count(&pci_total, &pk, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
