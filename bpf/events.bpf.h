/* Shared by the event tools in bpf/events/: the record header every tool's record starts with,
 * the transport (a ring buffer, or a perf event array where the kernel has none) with an exact
 * loss counter, and the tgid filter.
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

/* The transport. One map per object, named `events`, and its loss counter `events_lost`: one
 * u64 per CPU, incremented each time a record cannot be handed over. `events` is declared as a
 * ring buffer (BPF_MAP_TYPE_RINGBUF, 5.8+); user space sets its size (max_entries, bytes: a power
 * of two multiple of the page size) before load. On a kernel without ring buffers, or with
 * `--event-buffer perf`, user space retypes it to a BPF_MAP_TYPE_PERF_EVENT_ARRAY (4-byte keys
 * and values, one entry per possible CPU) and sets `event_use_perf` (src/stream/perfbuf.rs).
 * The flag is read-only data, a constant to the verifier: the branch of the other transport is
 * dead code it never walks, so a ring buffer helper on a kernel that lacks it is never seen. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

const volatile bool event_use_perf = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} events_lost SEC(".maps");

/* Perf mode: bpf_perf_event_output() copies a finished record, so event_reserve() hands out a
 * per-CPU scratch record instead of ring memory. A program can be interrupted on its CPU by
 * another program of the object (a block completion in a hardirq, say) between reserve and
 * submit, so the scratch has one slot per nesting level: `events_nest` is this CPU's depth
 * (interrupts nest and return in order, so a plain increment and decrement stay consistent). */
#define EVENT_SCRATCH_SIZE 512 /* the largest fixed record (mountsnoop: 488 bytes) fits */
#define EVENT_NEST_MAX 4

struct event_scratch {
	__u8 data[EVENT_SCRATCH_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EVENT_NEST_MAX);
	__type(key, __u32);
	__type(value, struct event_scratch);
} events_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} events_nest SEC(".maps");

/* Perf mode: 1 once user space has opened the perf buffers (one perf event per CPU, put into
 * `events` after the programs are attached). Before that an output has nowhere to go: those
 * events precede the run's reading and are not sent (nor counted as lost). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} events_perf_ready SEC(".maps");

static __always_inline bool event_perf_ready(void)
{
	__u32 zero = 0, *ready = bpf_map_lookup_elem(&events_perf_ready, &zero);

	return ready && *ready;
}

static __always_inline void event_count_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&events_lost, &zero);

	if (lost)
		*lost += 1; /* this CPU's slot: no other writer, no atomic needed */
}

/* Perf mode: gives back this CPU's innermost scratch slot. */
static __always_inline void event_scratch_put(void)
{
	__u32 zero = 0, *depth = bpf_map_lookup_elem(&events_nest, &zero);

	if (depth && *depth > 0)
		*depth -= 1;
}

/* Reserves a fixed-size record (at most EVENT_SCRATCH_SIZE bytes: checked at compile time when
 * the size is a constant); when there is no room, counts the loss and returns NULL. Every record
 * from here goes to event_submit() or event_discard(). */
static __always_inline void *event_reserve_size(__u64 size)
{
	void *rec = NULL;

	if (event_use_perf) {
		__u32 zero = 0, slot, *depth;

		if (!event_perf_ready())
			return NULL;
		depth = bpf_map_lookup_elem(&events_nest, &zero);
		if (depth && size <= EVENT_SCRATCH_SIZE && *depth < EVENT_NEST_MAX) {
			slot = *depth;
			rec = bpf_map_lookup_elem(&events_scratch, &slot);
			if (rec)
				*depth = slot + 1;
		}
	} else {
		rec = bpf_ringbuf_reserve(&events, size, 0);
	}
	if (!rec)
		event_count_lost();
	return rec;
}

#define event_reserve(size)                                                                       \
	({                                                                                         \
		_Static_assert(!__builtin_constant_p(size) || (size) <= EVENT_SCRATCH_SIZE,        \
			       "event record larger than EVENT_SCRATCH_SIZE: use event_output()"); \
		event_reserve_size(size);                                                          \
	})

/* Hands a record of `size` bytes from event_reserve() to the reader; `ctx` is the program's
 * context (bpf_perf_event_output() needs it). Every event program submits through this (never
 * bpf_ringbuf_submit itself), so the transport stays in this header. In perf mode a full buffer
 * makes the output fail, and that failure is counted: received + lost = produced there too. */
static __always_inline void event_submit(void *ctx, void *rec, __u64 size)
{
	if (event_use_perf) {
		if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, rec, size) != 0)
			event_count_lost();
		event_scratch_put();
	} else {
		bpf_ringbuf_submit(rec, 0);
	}
}

/* Gives back a record from event_reserve() that will not be sent. */
static __always_inline void event_discard(void *rec)
{
	if (event_use_perf)
		event_scratch_put();
	else
		bpf_ringbuf_discard(rec, 0);
}

/* Copies a record of `size` bytes to the reader (variable-size records); counts a failure. */
static __always_inline void event_output(void *ctx, void *rec, __u64 size)
{
	long err;

	if (event_use_perf) {
		if (!event_perf_ready())
			return;
		err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, rec, size);
	} else
		err = bpf_ringbuf_output(&events, rec, size, 0);
	if (err != 0)
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
