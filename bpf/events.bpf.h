/* Shared by the event tools in bpf/events/: the record header every tool's record starts with,
 * a ring buffer with an exact loss counter, and the tgid filter.
 *
 * Every record begins with `struct event_header`; its `kind` says which record follows, so one
 * reader can tell records apart and check their size. User space (src/stream/records.rs) keeps
 * #[repr(C)] twins of these structs: change both together. */
#pragma once

#define EVENT_COMM_LEN 16

/* Record kinds (src/stream/records.rs `Kind`). */
enum event_kind {
	EVENT_EXEC = 1,
	EVENT_EXIT = 2,
	EVENT_OPEN = 3,
	EVENT_BIO = 4,
	EVENT_TCP_CONNECT = 5,
	EVENT_TCP_LIFE = 6,
	EVENT_KILL = 7,
	EVENT_MOUNT = 8,
	EVENT_TCP_STATE = 9,
	EVENT_BIND = 10,
	EVENT_STAT = 11,
	EVENT_TCP_ACCEPT = 12,
	EVENT_HOST_LOOKUP = 13,
};

struct event_header {
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 kind;  /* enum event_kind */
	__u32 size;  /* bytes of this record, header included */
	__u32 pid;   /* thread group id, as user space calls a pid */
	__u32 tid;
	char comm[EVENT_COMM_LEN];
};

/* 0: every process. Otherwise only events of this thread group (tests, `--pid`). */
const volatile __u32 targ_tgid = 0;

/* One ring buffer per object, named `events`, and its loss counter `events_lost`: one u64 per
 * CPU, incremented each time a record finds the ring full. User space sets the ring's size
 * (max_entries, bytes: a power of two multiple of the page size) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} events_lost SEC(".maps");

static __always_inline void event_count_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&events_lost, &zero);

	if (lost)
		*lost += 1; /* this CPU's slot: no other writer, no atomic needed */
}

/* Reserves a fixed-size record; on a full ring counts the loss and returns NULL. */
static __always_inline void *event_reserve(__u64 size)
{
	void *rec = bpf_ringbuf_reserve(&events, size, 0);

	if (!rec)
		event_count_lost();
	return rec;
}

/* Hands a record from event_reserve() to the reader. Every event program submits through this
 * (never bpf_ringbuf_submit itself), so the transport stays in this header. */
static __always_inline void event_submit(void *rec)
{
	bpf_ringbuf_submit(rec, 0);
}

/* Gives back a record from event_reserve() that will not be sent. */
static __always_inline void event_discard(void *rec)
{
	bpf_ringbuf_discard(rec, 0);
}

/* Copies a record of `size` bytes into the ring (variable-size records); counts a failure. */
static __always_inline void event_output(void *rec, __u64 size)
{
	if (bpf_ringbuf_output(&events, rec, size, 0) != 0)
		event_count_lost();
}

/* Header from the current task. */
static __always_inline void event_header_fill(struct event_header *h, __u32 kind, __u32 size)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->ts_ns = bpf_ktime_get_ns();
	h->kind = kind;
	h->size = size;
	h->pid = id >> 32;
	h->tid = (__u32)id;
	bpf_get_current_comm(&h->comm, sizeof(h->comm));
}

/* True when the current task passes the tgid filter. */
static __always_inline bool event_wanted(void)
{
	return targ_tgid == 0 || (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

/* Syscall numbers for the raw sys_enter/sys_exit tracepoints (no tracefs needed). */
#if defined(__TARGET_ARCH_x86)
#define EV_NR_open 2
#define EV_NR_kill 62
#define EV_NR_mount 165
#define EV_NR_umount2 166
#define EV_NR_tkill 200
#define EV_NR_tgkill 234
#define EV_NR_openat 257
#define EV_NR_execve 59
#define EV_NR_execveat 322
#define EV_NR_openat2 437
#define EV_NR_bind 49
#define EV_NR_accept 43
#define EV_NR_accept4 288
#define EV_NR_stat 4
#define EV_NR_lstat 6
#define EV_NR_statfs 137
#define EV_NR_newfstatat 262
#define EV_NR_statx 332
#elif defined(__TARGET_ARCH_arm64)
#define EV_NR_open -1 /* no open(2) on arm64 */
#define EV_NR_kill 129
#define EV_NR_mount 40
#define EV_NR_umount2 39
#define EV_NR_tkill 130
#define EV_NR_tgkill 131
#define EV_NR_openat 56
#define EV_NR_execve 221
#define EV_NR_execveat 281
#define EV_NR_openat2 437
#define EV_NR_bind 200
#define EV_NR_accept 202
#define EV_NR_accept4 242
#define EV_NR_stat -1 /* no stat(2)/lstat(2) on arm64: newfstatat */
#define EV_NR_lstat -1
#define EV_NR_statfs 43
#define EV_NR_newfstatat 79
#define EV_NR_statx 291
#else
#error "event tools: syscall numbers known for x86 and arm64 only"
#endif

/* Syscall number at tp_btf/sys_exit (sys_enter gets it as an argument): the raw tracepoint
 * fires for every syscall, so the exit programs check this before any map lookup. */
#if defined(__TARGET_ARCH_x86)
static __always_inline long event_syscall_nr(struct pt_regs *regs)
{
	return BPF_CORE_READ(regs, orig_ax);
}
#else
struct pt_regs___arm64 {
	__s64 syscallno;
} __attribute__((preserve_access_index));

static __always_inline long event_syscall_nr(struct pt_regs *regs)
{
	return BPF_CORE_READ((struct pt_regs___arm64 *)regs, syscallno);
}
#endif

/* Names the record type of ring buffer `events` in the object's BTF (its pointee), so that user
 * space can compare its own layout with the object's (a record written only through a
 * bpf_ringbuf_reserve() pointer would otherwise leave no trace in BTF). Never read. */
#define EVENT_RECORD(type) type *const volatile events_record = 0
