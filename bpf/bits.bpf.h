/* Shared helpers for ebpfx's BPF programs: ebpf_exporter-compatible histogram slots. */
#pragma once

/* floor(log2(v)) for v > 0, without loops the verifier would have to unroll. */
static __always_inline __u32 ebpfx_log2(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/*
 * exp2 slot as ebpf_exporter defines it: bucket k holds (2^(k-1), 2^k], values 0 and 1 land in
 * slot 0, so slot = ceil(log2(v)). Values above max_slot are clamped into max_slot.
 */
static __always_inline __u64 ebpfx_exp2_slot(__u64 v, __u64 max_slot)
{
	__u64 slot = v <= 1 ? 0 : ebpfx_log2(v - 1) + 1;

	return slot > max_slot ? max_slot : slot;
}

/* Adds `delta` to a u64 counter in a hash map, creating the entry when absent.
 *
 * Every count in bpf/ is created through this (or ebpfx_count_percpu): a plain "look up, else
 * insert the initial value" loses the observation of the CPU whose insert fails because another
 * CPU created the key between its lookup and its insert. Here the insert uses BPF_NOEXIST and,
 * when it fails, the entry the other CPU created is looked up again and added to. */
static __always_inline void ebpfx_count(void *map, const void *key, __u64 delta)
{
	__u64 *c = bpf_map_lookup_elem(map, key);

	if (c) {
		__sync_fetch_and_add(c, delta);
		return;
	}
	if (bpf_map_update_elem(map, key, &delta, BPF_NOEXIST) != 0) {
		/* Another CPU created it first: add to theirs. */
		c = bpf_map_lookup_elem(map, key);
		if (c)
			__sync_fetch_and_add(c, delta);
	}
}

/* Adds `delta` to a u64 counter in a per-CPU hash map: this CPU's slot has no other writer, so
 * no atomic add is needed. Creates the entry when absent; when another CPU created the same key
 * first (update fails), adds to this CPU's slot of that entry instead of losing the count. */
static __always_inline void ebpfx_count_percpu(void *map, const void *key, __u64 delta)
{
	__u64 *c = bpf_map_lookup_elem(map, key);

	if (c) {
		*c += delta;
		return;
	}
	if (bpf_map_update_elem(map, key, &delta, BPF_NOEXIST) != 0) {
		c = bpf_map_lookup_elem(map, key);
		if (c)
			*c += delta;
	}
}

/* Adds one observation of `value` to a histogram map keyed by a struct whose `bucket` field
 * is set by the caller: count into the slot, raw value into the sum slot (max_slot + 1).
 * Both go through ebpfx_count, which never loses an observation when two CPUs create the same
 * key at once (per-CPU maps included: the atomic add then only touches this CPU's slot). */
#define EBPFX_HIST_OBSERVE(map, key_ptr, value, max_slot)                                  \
	do {                                                                               \
		__u64 __v = (value);                                                       \
		(key_ptr)->bucket = ebpfx_exp2_slot(__v, (max_slot));                      \
		ebpfx_count(&(map), (key_ptr), 1);                                         \
		(key_ptr)->bucket = (max_slot) + 1;                                        \
		ebpfx_count(&(map), (key_ptr), __v);                                       \
	} while (0)
