/* Stack ids for ebpfx's stack tools (profile, offcputime): a count key holds two 4-byte stack
 * ids (kernel, user) instead of the frames, and the frames live once per distinct stack in a
 * BPF_MAP_TYPE_STACK_TRACE map, read and swapped back in by ebpfx at read time.
 *
 * The depth declared here is a placeholder: before load, ebpfx sets the map's value_size to
 * perf_event_max_stack (/proc/sys/kernel/perf_event_max_stack, 127 by default) x 8 bytes and
 * its max_entries (src/loader/stack_maps.rs), so stacks are as deep as the kernel walks them.
 *
 * A stack-trace map is a table of hash buckets without chaining: a stack whose bucket holds
 * another stack gets -EEXIST (ebpfx never passes BPF_F_REUSE_STACKID, which would overwrite the
 * other stack and make earlier ids name the wrong frames). Such a stack goes to a second,
 * smaller map, NAME_spill, where its bucket is most likely free; its id there is marked with
 * EBPFX_SPILL_BIT. ebpfx reads both maps (src/collect.rs).
 *
 * A capture that still fails keeps its negative error as the id, so that ebpfx can count and
 * show it: -EFAULT means there was no stack of that kind (a kernel thread has no user stack, a
 * sample taken in user mode no kernel stack), -EEXIST a collision in both maps, -ENOMEM a full
 * stack map. */
#pragma once

/* Placeholder depth and size, replaced at load (see above): one frame, one stack, so that a
 * loader that forgot to size the maps shows at once. */
#define EBPFX_STACK_DEPTH 1

/* Marks an id of the spill map. */
#define EBPFX_SPILL_BIT (1 << 30)
#define EBPFX_EEXIST 17

#define EBPFX_STACK_MAP_(name, entries)                                                    \
	struct {                                                                           \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);                                    \
		__uint(max_entries, entries);                                              \
		__uint(key_size, sizeof(__u32));                                           \
		__uint(value_size, EBPFX_STACK_DEPTH * sizeof(__u64));                     \
	} name SEC(".maps")

/* Declares the stack-trace maps `name` and `name_spill` (sizes: placeholders, see above). */
#define EBPFX_STACK_MAPS(name)                                                             \
	EBPFX_STACK_MAP_(name, 1);                                                         \
	EBPFX_STACK_MAP_(name##_spill, 1)

/* The id of the current stack (flags: 0 or BPF_F_USER_STACK, plus frames to skip in the low
 * 8 bits), or the negative error of a failed capture, as the 4-byte label `kstack`/`ustack`. */
static __always_inline __s32 ebpfx_stack_id(void *ctx, void *stacks, void *spill, __u64 flags)
{
	long id = bpf_get_stackid(ctx, stacks, flags);

	if (id == -EBPFX_EEXIST) {
		id = bpf_get_stackid(ctx, spill, flags);
		if (id >= 0)
			id |= EBPFX_SPILL_BIT;
	}
	return (__s32)id;
}
