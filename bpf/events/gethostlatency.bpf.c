// SPDX-License-Identifier: GPL-2.0
/* gethostlatency: one record per host name lookup through libc's getaddrinfo(),
 * gethostbyname() or gethostbyname2(), with the name, the result and how long the call took.
 * Uprobes on the functions' entry keep the name pointer and the start time per thread; the
 * return probes read the name (the caller's memory is still in place) and write the record.
 * libbpf finds libc.so.6 in the usual library directories (or $LD_LIBRARY_PATH); processes with
 * another libc (static binaries, musl) are not seen. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "events.bpf.h"

#define HOST_LEN 256

enum lookup_func {
	LOOKUP_GETADDRINFO = 1,
	LOOKUP_GETHOSTBYNAME = 2,
	LOOKUP_GETHOSTBYNAME2 = 3,
};

/* gethostbyname*() returned NULL (h_errno is not read). */
#define LOOKUP_NULL -1000

struct lookup_start {
	const char *host;
	__u64 start_ns;
	__u32 func;
};

struct host_lookup_record {
	struct event_header h;
	__u64 latency_ns;
	__s32 ret;      /* getaddrinfo: 0 or EAI_* (negative); gethostbyname*: 0 or LOOKUP_NULL */
	__u32 func;     /* enum lookup_func */
	__u32 host_len; /* bytes in host with its NUL; HOST_LEN: the name may be cut */
	__u32 _pad;
	char host[HOST_LEN];
};
EVENT_RECORD(struct host_lookup_record);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct lookup_start);
} lookups SEC(".maps");

static __always_inline int lookup_enter(const char *host, __u32 func)
{
	struct lookup_start s = {};
	__u32 tid;

	if (!event_wanted())
		return 0;
	s.host = host;
	s.start_ns = bpf_ktime_get_ns();
	s.func = func;
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&lookups, &tid, &s, BPF_ANY);
	return 0;
}

static __always_inline int lookup_exit(void *ctx, __s32 ret)
{
	struct host_lookup_record *rec;
	struct lookup_start *s;
	__u64 now = bpf_ktime_get_ns();
	long n;
	__u32 tid;

	tid = (__u32)bpf_get_current_pid_tgid();
	s = bpf_map_lookup_elem(&lookups, &tid);
	if (!s)
		return 0;
	rec = event_reserve(sizeof(*rec));
	if (rec) {
		event_header_fill(&rec->h, EVENT_HOST_LOOKUP, sizeof(*rec));
		rec->h.ts_ns = now;
		rec->latency_ns = now - s->start_ns;
		rec->ret = ret;
		rec->func = s->func;
		rec->_pad = 0;
		n = bpf_probe_read_user_str(rec->host, sizeof(rec->host), s->host);
		rec->host_len = n > 0 ? n : 0;
		event_submit(ctx, rec, sizeof(*rec));
	}
	bpf_map_delete_elem(&lookups, &tid);
	return 0;
}

SEC("uprobe/libc.so.6:getaddrinfo")
int BPF_UPROBE(gethostlatency_getaddrinfo, const char *node)
{
	return lookup_enter(node, LOOKUP_GETADDRINFO);
}

SEC("uretprobe/libc.so.6:getaddrinfo")
int BPF_URETPROBE(gethostlatency_getaddrinfo_ret, int ret)
{
	return lookup_exit(ctx, ret);
}

SEC("uprobe/libc.so.6:gethostbyname")
int BPF_UPROBE(gethostlatency_gethostbyname, const char *name)
{
	return lookup_enter(name, LOOKUP_GETHOSTBYNAME);
}

SEC("uretprobe/libc.so.6:gethostbyname")
int BPF_URETPROBE(gethostlatency_gethostbyname_ret, void *hostent)
{
	return lookup_exit(ctx, hostent ? 0 : LOOKUP_NULL);
}

SEC("uprobe/libc.so.6:gethostbyname2")
int BPF_UPROBE(gethostlatency_gethostbyname2, const char *name)
{
	return lookup_enter(name, LOOKUP_GETHOSTBYNAME2);
}

SEC("uretprobe/libc.so.6:gethostbyname2")
int BPF_URETPROBE(gethostlatency_gethostbyname2_ret, void *hostent)
{
	return lookup_exit(ctx, hostent ? 0 : LOOKUP_NULL);
}

char LICENSE[] SEC("license") = "GPL";
