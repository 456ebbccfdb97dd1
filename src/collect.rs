//! Map reads: every entry of each metric's map, with `BPF_MAP_LOOKUP_BATCH` through our own loop
//! (libbpf-rs 0.27's `lookup_batch` stops early on hash maps), falling back to key iteration
//! where the map type has no batch support. Per-CPU maps are read with one slot per possible CPU.
use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd};

use anyhow::anyhow;
use libbpf_rs::{MapCore, MapType};

use crate::config::MetricKind;
use crate::loader::Loaded;
use crate::raw::{RawMap, StackTraces};

/// Reads the map of every metric of a loaded config, in config order. `perf_event_array`
/// counters have no map values and get an empty map.
pub fn read_config(loaded: &Loaded) -> anyhow::Result<Vec<RawMap>> {
    // `iter/*` programs (e.g. tcpflows' walk over every TCP socket) fill maps when run.
    loaded.run_iterators()?;
    let mut out = Vec::with_capacity(loaded.config.metrics.len());
    for metric in &loaded.config.metrics {
        if matches!(metric.kind, MetricKind::Counter { perf_event_array: true }) {
            out.push(RawMap { name: metric.name.clone(), slots: 1, ..RawMap::default() });
            continue;
        }
        let map = loaded
            .object
            .maps()
            .find(|m| m.name() == OsStr::new(&metric.name))
            .ok_or_else(|| anyhow!("config {}: map {} vanished", loaded.config.name, metric.name))?;
        let info = MapShape {
            name: metric.name.clone(),
            key_size: map.key_size() as usize,
            value_size: map.value_size() as usize,
            max_entries: map.max_entries(),
            map_type: map.map_type(),
        };
        let raw = read_map(map.as_fd().as_raw_fd(), &info)
            .map_err(|e| anyhow!("config {}: reading map {}: {e}", loaded.config.name, metric.name))?;
        out.push(raw);
    }
    // After the counts: every stack id a count key holds is then in the stack map already.
    // Only those stacks are fetched (the map keeps every stack since attach).
    if loaded.config.metrics.iter().any(crate::decode::stackids::uses_stack_ids) {
        let mut wanted = std::collections::BTreeSet::new();
        for (raw, metric) in out.iter().zip(&loaded.config.metrics) {
            crate::decode::stackids::referenced_ids(metric, raw, &mut wanted);
        }
        let traces = read_stack_traces(loaded, &wanted)?.map(std::sync::Arc::new);
        for (raw, metric) in out.iter_mut().zip(&loaded.config.metrics) {
            if crate::decode::stackids::uses_stack_ids(metric) {
                raw.stack_traces = traces.clone();
            }
        }
    }
    Ok(out)
}

/// The stacks `wanted` (ids as the count keys hold them) from the object's stack-trace maps
/// (bpf/stacks.bpf.h: `NAME` and `NAME_spill`, whose ids carry the spill bit), when it has
/// some. An id missing from its map is left out (decoded as a lost stack).
fn read_stack_traces(loaded: &Loaded, wanted: &std::collections::BTreeSet<u32>) -> anyhow::Result<Option<StackTraces>> {
    use crate::loader::stack_maps::{is_spill, SPILL_BIT};
    let config = &loaded.config.name;
    let maps: Vec<_> = loaded.object.maps().filter(|m| m.map_type() == MapType::StackTrace).collect();
    let names: Vec<String> = maps.iter().map(|m| m.name().to_string_lossy().into_owned()).collect();
    let mut out: Option<StackTraces> = None;
    for (map, name) in maps.iter().zip(&names) {
        let key_size = map.key_size() as usize;
        let value_size = map.value_size() as usize;
        if key_size != 4 || value_size % 8 != 0 || value_size == 0 {
            return Err(anyhow!(
                "config {config}: stack map {name}: key {key_size} bytes and value {value_size} bytes, expected 4 and a multiple of 8"
            ));
        }
        let depth = value_size / 8;
        let shape = MapShape {
            name: name.clone(),
            key_size,
            value_size,
            max_entries: map.max_entries(),
            map_type: MapType::StackTrace,
        };
        let mark = if is_spill(name, &names) { SPILL_BIT } else { 0 };
        let mut raw = RawMap { name: name.clone(), key_size, slots: depth, ..RawMap::default() };
        let ids = wanted.iter().filter(|&&id| id & SPILL_BIT == mark).map(|&id| id & !SPILL_BIT);
        read_keys(map.as_fd().as_raw_fd(), &shape, ids, &mut raw)
            .map_err(|e| anyhow!("config {config}: reading stack map {name}: {e}"))?;
        let traces = out.get_or_insert_with(|| StackTraces { name: name.clone(), depth, ..StackTraces::default() });
        if traces.depth != depth {
            return Err(anyhow!(
                "config {config}: stack maps of different depths ({} and {depth} frames)",
                traces.depth
            ));
        }
        if mark == 0 {
            traces.name = name.clone();
        }
        traces.ids.extend(raw.keys.chunks_exact(4).map(|k| u32::from_ne_bytes([k[0], k[1], k[2], k[3]]) | mark));
        traces.frames.extend_from_slice(&raw.values);
    }
    Ok(out)
}

/// What the reader needs to know about a map.
#[derive(Debug, Clone)]
pub struct MapShape {
    pub name: String,
    pub key_size: usize,
    pub value_size: usize,
    pub max_entries: u32,
    pub map_type: MapType,
}

impl MapShape {
    fn per_cpu(&self) -> bool {
        matches!(self.map_type, MapType::PercpuHash | MapType::PercpuArray | MapType::LruPercpuHash)
    }
    fn is_array(&self) -> bool {
        matches!(self.map_type, MapType::Array | MapType::PercpuArray)
    }
}

/// Number of possible CPUs (per-CPU values have one slot each).
pub fn possible_cpus() -> anyhow::Result<usize> {
    // SAFETY: plain libbpf call without arguments; it reads /sys and caches the result.
    let n = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
    if n <= 0 {
        return Err(anyhow!("cannot count possible CPUs: {}", std::io::Error::from_raw_os_error(-n)));
    }
    Ok(n as usize)
}

/// Reads every entry of the map behind `fd`. Values must be u64 (checked at load).
pub fn read_map(fd: i32, shape: &MapShape) -> anyhow::Result<RawMap> {
    let slots = if shape.per_cpu() { possible_cpus()? } else { 1 };
    let mut raw = RawMap {
        name: shape.name.clone(),
        key_size: shape.key_size,
        slots,
        per_cpu: shape.per_cpu(),
        keys: Vec::new(),
        values: Vec::new(),
        max_entries: shape.max_entries,
        is_array: shape.is_array(),
        stack_traces: None,
    };
    if shape.value_size != 8 {
        return Err(anyhow!("value size is {} bytes, expected 8", shape.value_size));
    }
    match read_batched(fd, shape, &mut raw) {
        Ok(()) => Ok(raw),
        Err(e) if e == libc::EINVAL || e == libc::ENOTSUP || e == libc::EOPNOTSUPP || e == 524 => {
            raw.keys.clear();
            raw.values.clear();
            read_by_key(fd, shape, &mut raw)?;
            Ok(raw)
        }
        Err(e) => Err(anyhow!("BPF_MAP_LOOKUP_BATCH failed: {}", std::io::Error::from_raw_os_error(e))),
    }
}

/// The batch loop: pass the out token back in, stop on ENOENT, grow the buffer on ENOSPC.
fn read_batched(fd: i32, shape: &MapShape, raw: &mut RawMap) -> Result<(), i32> {
    let slots = raw.slots;
    // Token: a bucket index for hash maps, a key for arrays; make it large enough for either.
    let token_size = shape.key_size.max(8);
    let mut in_token = vec![0u8; token_size];
    let mut out_token = vec![0u8; token_size];
    let mut chunk: usize = (shape.max_entries as usize).clamp(64, 8192);
    let mut keys = vec![0u8; chunk * shape.key_size];
    let mut values = vec![0u64; chunk * slots];
    let opts = libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as libbpf_sys::size_t,
        elem_flags: 0,
        flags: 0,
    };
    let mut first = true;
    loop {
        let mut count = chunk as u32;
        let in_ptr = if first { std::ptr::null_mut() } else { in_token.as_mut_ptr().cast() };
        // SAFETY: `keys` holds `chunk` keys and `values` `chunk × slots` u64 (value size 8, so the
        // per-CPU stride round_up(8, 8) × ncpus is `slots` u64s); the tokens are at least as large
        // as a key or a u32 bucket index; `count` tells the kernel the capacity and gets the
        // number written; `opts` is a valid, sized struct.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_batch(
                fd,
                in_ptr,
                out_token.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        let err = if rc < 0 { std::io::Error::last_os_error().raw_os_error().unwrap_or(-rc) } else { 0 };
        let n = (count as usize).min(chunk);
        if rc == 0 || err == libc::ENOENT {
            raw.keys.extend_from_slice(&keys[..n * shape.key_size]);
            raw.values.extend_from_slice(&values[..n * slots]);
        }
        match err {
            0 => {}
            libc::ENOENT => return Ok(()),
            libc::ENOSPC => {
                // A hash bucket holds more entries than fit: retry the same batch, larger.
                if n > 0 {
                    raw.keys.extend_from_slice(&keys[..n * shape.key_size]);
                    raw.values.extend_from_slice(&values[..n * slots]);
                    std::mem::swap(&mut in_token, &mut out_token);
                    first = false;
                }
                chunk *= 2;
                keys.resize(chunk * shape.key_size, 0);
                values.resize(chunk * slots, 0);
                continue;
            }
            e => return Err(e),
        }
        std::mem::swap(&mut in_token, &mut out_token);
        first = false;
    }
}

/// The entries of 4-byte keys `ids` that the map holds (a stack-trace map's stacks by id).
fn read_keys(fd: i32, shape: &MapShape, ids: impl Iterator<Item = u32>, raw: &mut RawMap) -> anyhow::Result<()> {
    let mut value = vec![0u64; raw.slots];
    debug_assert_eq!(shape.key_size, 4);
    for id in ids {
        let key = id.to_ne_bytes();
        // SAFETY: `key` is the map's 4-byte key; `value` holds `slots` u64, the map's value size
        // (checked by the caller: value_size == slots * 8).
        let rc = unsafe { libbpf_sys::bpf_map_lookup_elem(fd, key.as_ptr().cast(), value.as_mut_ptr().cast()) };
        if rc == 0 {
            raw.push(&key, &value);
            continue;
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOENT) {
            return Err(anyhow!("BPF_MAP_LOOKUP_ELEM of stack {id} failed: {e}"));
        }
    }
    Ok(())
}

/// Fallback for map types without batch support: get_next_key + lookup.
fn read_by_key(fd: i32, shape: &MapShape, raw: &mut RawMap) -> anyhow::Result<()> {
    let mut key = vec![0u8; shape.key_size];
    let mut next = vec![0u8; shape.key_size];
    let mut value = vec![0u64; raw.slots];
    let mut first = true;
    loop {
        let prev = if first { std::ptr::null() } else { key.as_ptr().cast() };
        // SAFETY: `prev` is null or a key-sized buffer; `next` is key-sized.
        let rc = unsafe { libbpf_sys::bpf_map_get_next_key(fd, prev, next.as_mut_ptr().cast()) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOENT) {
                return Ok(());
            }
            return Err(anyhow!("BPF_MAP_GET_NEXT_KEY failed: {e}"));
        }
        first = false;
        // SAFETY: `next` is key-sized; `value` holds `slots` u64 (8-byte value × possible CPUs).
        let rc = unsafe { libbpf_sys::bpf_map_lookup_elem(fd, next.as_ptr().cast(), value.as_mut_ptr().cast()) };
        if rc == 0 {
            raw.push(&next, &value);
        }
        // An entry deleted between the two calls is simply gone: keep iterating from it.
        std::mem::swap(&mut key, &mut next);
    }
}
