//! The perf-buffer transport of event streams: a `BPF_MAP_TYPE_PERF_EVENT_ARRAY` read through
//! libbpf's perf buffer (one buffer per CPU), for kernels without BPF ring buffers (before 5.8)
//! or when `--event-buffer perf` asks for it. A config's map may be declared as a perf event
//! array; the built-in tools declare a ring buffer that [`prepare_map`] retypes before load,
//! setting the object's `event_use_perf` flag so that bpf/events.bpf.h sends records with
//! `bpf_perf_event_output` (docs/events.md#kernels-without-a-ring-buffer).
use std::cell::Cell;
use std::rc::Rc;

use anyhow::{anyhow, bail, Context};
use libbpf_rs::{MapCore, MapType, OpenObject, PerfBuffer, PerfBufferBuilder};

use crate::config::EventConfig;

/// The global of bpf/events.bpf.h that switches an object to the perf transport.
pub const PERF_FLAG: &str = "event_use_perf";

pub use crate::config::EventBuffer;

/// Whether this kernel has BPF ring buffers (`BPF_MAP_TYPE_RINGBUF`), by libbpf's probe (it
/// creates a small map: needs the privileges a load needs). A failing probe (no privileges)
/// says yes: the load that follows reports the real problem.
pub fn kernel_has_ring_buffers() -> bool {
    MapType::RingBuf.is_supported().unwrap_or(true)
}

/// Possible CPUs (the kernel's per-CPU buffer slots).
fn possible_cpus() -> anyhow::Result<usize> {
    libbpf_rs::num_possible_cpus().map_err(|e| anyhow!("reading the number of possible CPUs: {e}"))
}

/// Possible CPUs, 1 when unknown (for messages).
pub fn cpus() -> usize {
    possible_cpus().unwrap_or(1).max(1)
}

/// Pages of each CPU's perf buffer for a stream whose ring size is `bytes`: the same memory
/// split over the CPUs, rounded down to a power of two (libbpf wants one), at least one page.
pub fn perf_pages(bytes: u64, cpus: usize, page: u64) -> usize {
    let per_cpu = bytes / page.max(1) / (cpus.max(1) as u64);
    let pages = if per_cpu <= 1 { 1 } else { 1u64 << (63 - per_cpu.leading_zeros()) };
    usize::try_from(pages).unwrap_or(1)
}

/// Makes map `ev.ring_buffer` of an open (not loaded) object what `ev.buffer` asks for: a ring
/// buffer gets its size; a ring buffer becomes a perf event array for [`EventBuffer::Perf`]
/// when the object has the [`PERF_FLAG`] global (`has_switch`): then it returns true and the
/// caller (the loader) sets the flag; a declared perf event array stays one. Errors name the
/// config key (`ring_buffer`).
pub fn prepare_map(open: &mut OpenObject, ev: &EventConfig, has_switch: bool) -> anyhow::Result<bool> {
    let map_name = ev.ring_buffer.as_str();
    let ty = open
        .maps()
        .find(|m| m.name().to_str() == Some(map_name))
        .map(|m| m.map_type())
        .ok_or_else(|| anyhow!("ring_buffer: the BPF object has no map named {map_name:?}"))?;
    match (ty, ev.buffer) {
        (MapType::RingBuf, EventBuffer::Auto | EventBuffer::Ring) => {
            super::ringbuf::set_ring_size(open, map_name, ev.ring_size).map(|_| false)
        }
        (MapType::RingBuf, EventBuffer::Perf) => {
            if !has_switch {
                bail!(
                    "ring_buffer: map {map_name:?} is a ring buffer and the object has no `{PERF_FLAG}` switch (bpf/events.bpf.h) to send through a perf event array instead: {}",
                    if kernel_has_ring_buffers() {
                        "run it with --event-buffer auto or ring"
                    } else {
                        "this kernel has no BPF ring buffers (Linux 5.8+): declare the map as a BPF_MAP_TYPE_PERF_EVENT_ARRAY"
                    }
                );
            }
            let cpus = u32::try_from(possible_cpus()?).unwrap_or(u32::MAX);
            for mut m in open.maps_mut() {
                if m.name().to_str() != Some(map_name) {
                    continue;
                }
                m.set_type(MapType::PerfEventArray)
                    .and_then(|_| m.set_key_size(4))
                    .and_then(|_| m.set_value_size(4))
                    .and_then(|_| m.set_max_entries(cpus))
                    .with_context(|| format!("ring_buffer: making map {map_name:?} a perf event array"))?;
            }
            Ok(true)
        }
        (MapType::PerfEventArray, EventBuffer::Auto | EventBuffer::Perf) => Ok(false),
        (MapType::PerfEventArray, EventBuffer::Ring) => bail!(
            "ring_buffer: map {map_name:?} is a perf event array (BPF_MAP_TYPE_PERF_EVENT_ARRAY): --event-buffer ring needs a BPF_MAP_TYPE_RINGBUF map; use --event-buffer auto or perf"
        ),
        (other, _) => bail!(
            "ring_buffer: map {map_name:?} is a {other:?} map: an events entry reads a BPF_MAP_TYPE_RINGBUF or BPF_MAP_TYPE_PERF_EVENT_ARRAY map"
        ),
    }
}

/// The map of bpf/events.bpf.h that tells the programs the perf buffers are open.
pub const READY_MAP: &str = "events_perf_ready";

/// Tells an object's programs (bpf/events.bpf.h) that its perf buffers are open: until then
/// (between attach and now) an event has no buffer to go to, and the programs neither send nor
/// count it. Objects without the map (a config's own perf event array) are left alone.
pub(super) fn mark_ready(obj: &libbpf_rs::Object) -> anyhow::Result<()> {
    let Some(map) = obj.maps().find(|m| m.name().to_str() == Some(READY_MAP)) else { return Ok(()) };
    map.update(&0u32.to_ne_bytes(), &1u32.to_ne_bytes(), libbpf_rs::MapFlags::ANY)
        .with_context(|| format!("setting {READY_MAP}"))
}

/// A perf buffer being read: one buffer per CPU, records to a callback, and the records the
/// kernel reported lost (`PERF_RECORD_LOST`, through libbpf's lost callback).
pub(super) struct PerfReader<'cb> {
    buffer: PerfBuffer<'cb>,
    kernel_lost: Rc<Cell<u64>>,
    received: Rc<Cell<usize>>,
}

impl<'cb> PerfReader<'cb> {
    /// `map` is a loaded perf event array; `bytes` the stream's ring size (split over the CPUs,
    /// [`perf_pages`]); records longer than `record_size` (the kernel pads a perf sample to
    /// 8 bytes) are cut to it.
    pub(super) fn new<M: MapCore>(
        map: &M,
        bytes: u64,
        record_size: Option<usize>,
        mut on_record: impl FnMut(&[u8]) + 'cb,
    ) -> anyhow::Result<PerfReader<'cb>> {
        let pages = perf_pages(bytes, possible_cpus()?, super::ringbuf::page_size());
        let kernel_lost = Rc::new(Cell::new(0u64));
        let received = Rc::new(Cell::new(0usize));
        let (kl, rc) = (Rc::clone(&kernel_lost), Rc::clone(&received));
        let buffer = PerfBufferBuilder::new(map)
            .pages(pages)
            .sample_cb(move |_cpu, data: &[u8]| {
                rc.set(rc.get() + 1);
                let data = match record_size {
                    Some(n) if data.len() > n => &data[..n],
                    _ => data,
                };
                on_record(data);
            })
            .lost_cb(move |_cpu, n| kl.set(kl.get().saturating_add(n)))
            .build()
            .map_err(|e| anyhow!("opening a perf buffer ({pages} pages per CPU): {e}"))?;
        Ok(PerfReader { buffer, kernel_lost, received })
    }

    /// Hands over every record in the buffers; returns how many.
    pub(super) fn drain(&self) -> anyhow::Result<usize> {
        self.received.set(0);
        self.buffer.consume().map_err(|e| anyhow!("{e}"))?;
        Ok(self.received.get())
    }

    /// Waits up to `timeout` for records and hands over those there; returns how many.
    /// A signal interrupting the wait is not an error.
    pub(super) fn poll(&self, timeout: std::time::Duration) -> anyhow::Result<usize> {
        self.received.set(0);
        match self.buffer.poll(timeout) {
            Ok(()) => Ok(self.received.get()),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::Interrupted => Ok(self.received.get()),
            Err(e) => Err(anyhow!("{e}")),
        }
    }

    pub(super) fn epoll_fd(&self) -> i32 {
        self.buffer.epoll_fd()
    }

    /// Records the kernel reported lost so far (buffer full). bpf_perf_event_output() fails for
    /// each of them, so an object that counts its output failures (events.bpf.h does) has
    /// counted them already; the kernel reports them late (with the next record that fits).
    pub(super) fn kernel_lost(&self) -> u64 {
        self.kernel_lost.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_pages_split_the_ring_size_over_cpus_as_a_power_of_two() {
        assert_eq!(perf_pages(1 << 20, 2, 4096), 128);
        assert_eq!(perf_pages(1 << 20, 3, 4096), 64); // 85 pages -> 64
        assert_eq!(perf_pages(1 << 20, 64, 4096), 4);
        assert_eq!(perf_pages(4096, 2, 4096), 1);
        assert_eq!(perf_pages(4096, 1, 4096), 1);
        assert_eq!(perf_pages(16 << 20, 1, 4096), 4096);
        assert_eq!(perf_pages(1 << 20, 4096, 4096), 1);
    }
}
