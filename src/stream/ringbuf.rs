//! Reads one event stream: a BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`), or a perf event array
//! (`BPF_MAP_TYPE_PERF_EVENT_ARRAY`, [`super::perfbuf`]) where the kernel has no ring buffers.
//! Records go to a callback as bytes, as the kernel wrote them, and the loss counter (a per-CPU
//! u64 array the BPF side increments when a record finds no room) is summed over CPUs on
//! request. Together, received + lost = produced, exactly.
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType, Object, OpenObject, RingBuffer, RingBufferBuilder};

/// The ring buffer map of the event tools in bpf/events/.
pub const RING_MAP: &str = "events";
/// Its loss counter.
pub const LOST_MAP: &str = "events_lost";
/// Smallest and largest ring sizes accepted (bytes). The kernel wants a power of two that is a
/// multiple of the page size.
pub const RING_SIZE_MIN: u64 = 4096;
pub const RING_SIZE_MAX: u64 = 1 << 30;

/// Checks a ring size (bytes) before it reaches the kernel, which would only say EINVAL.
pub fn check_ring_size(bytes: u64) -> anyhow::Result<u32> {
    let page = page_size();
    if !bytes.is_power_of_two() || bytes < page.max(RING_SIZE_MIN) || bytes > RING_SIZE_MAX {
        bail!(
            "ring buffer size {bytes} bytes: must be a power of two from {} to {} bytes (e.g. 262144 for 256 KiB)",
            page.max(RING_SIZE_MIN),
            RING_SIZE_MAX
        );
    }
    // Power of two >= page size: a multiple of the page size. Fits u32: <= 1 GiB.
    Ok(bytes as u32)
}

/// The system's page size in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 on error, handled below.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

/// Sets the size (bytes) of ring buffer map `map` of an object that is open, not yet loaded.
pub fn set_ring_size(open: &mut OpenObject, map: &str, bytes: u64) -> anyhow::Result<()> {
    let size = check_ring_size(bytes)?;
    let mut found = false;
    for mut m in open.maps_mut() {
        if m.name().to_str() != Some(map) {
            continue;
        }
        if m.map_type() != MapType::RingBuf {
            bail!("map {map} is a {:?} map, not a ring buffer (BPF_MAP_TYPE_RINGBUF)", m.map_type());
        }
        m.set_max_entries(size).with_context(|| format!("setting the size of ring buffer {map} to {bytes} bytes"))?;
        found = true;
    }
    if !found {
        bail!("the BPF object has no map named {map}");
    }
    Ok(())
}

/// How the records arrive.
enum Source<'cb> {
    Ring(RingBuffer<'cb>),
    Perf(super::perfbuf::PerfReader<'cb>),
}

/// A ring buffer (or perf buffer) being read, and its loss counter.
pub struct EventReader<'cb> {
    source: Source<'cb>,
    /// None: the object counts no lost records (ebpf_exporter's span objects).
    lost: Option<MapHandle>,
    ring_name: String,
    /// The ring's size in bytes (its max_entries).
    size: u64,
}

impl<'cb> EventReader<'cb> {
    /// Reads ring buffer `ring` of the loaded object `obj`, handing every record to `on_record`;
    /// `lost` names the per-CPU u64 array (one entry) that counts records the ring had no room for.
    pub fn new(
        obj: &Object,
        ring: &str,
        lost: &str,
        on_record: impl FnMut(&[u8]) + 'cb,
    ) -> anyhow::Result<EventReader<'cb>> {
        EventReader::with_counter(obj, ring, Some(lost), on_record)
    }

    /// [`EventReader::new`], where `lost: None` means the object has no loss counter
    /// ([`EventReader::lost`] then says 0: losses cannot be known).
    pub fn with_counter(
        obj: &Object,
        ring: &str,
        lost: Option<&str>,
        on_record: impl FnMut(&[u8]) + 'cb,
    ) -> anyhow::Result<EventReader<'cb>> {
        EventReader::open(obj, ring, lost, PerfSizing { bytes: 256 * 1024, record_size: None }, on_record)
    }

    /// [`EventReader::with_counter`] for a ring buffer or a perf event array (the map's type
    /// after load says which); `perf` sizes a perf buffer.
    pub fn open(
        obj: &Object,
        ring: &str,
        lost: Option<&str>,
        perf: PerfSizing,
        mut on_record: impl FnMut(&[u8]) + 'cb,
    ) -> anyhow::Result<EventReader<'cb>> {
        let ring_map = obj
            .maps()
            .find(|m| m.name().to_str() == Some(ring))
            .ok_or_else(|| anyhow!("the BPF object has no map named {ring}"))?;
        let is_perf = match ring_map.map_type() {
            MapType::RingBuf => false,
            MapType::PerfEventArray => true,
            other => bail!(
                "map {ring} is a {other:?} map, not a ring buffer (BPF_MAP_TYPE_RINGBUF) or a perf event array (BPF_MAP_TYPE_PERF_EVENT_ARRAY)"
            ),
        };
        let lost = match lost {
            None => None,
            Some(lost) => {
                let lost_map = obj
                    .maps()
                    .find(|m| m.name().to_str() == Some(lost))
                    .ok_or_else(|| anyhow!("the BPF object has no map named {lost} (the loss counter of {ring})"))?;
                if lost_map.map_type() != MapType::PercpuArray || lost_map.value_size() != 8 || lost_map.key_size() != 4
                {
                    bail!("map {lost}: the loss counter must be a per-CPU array of u64 values");
                }
                Some(MapHandle::try_from(&lost_map).with_context(|| format!("opening loss counter {lost}"))?)
            }
        };
        if is_perf {
            // The pacing bound (commands::events::pace) is per buffer: a perf event array has
            // one per CPU, and a single busy CPU fills its own.
            let cpus = super::perfbuf::cpus();
            let size = super::perfbuf::perf_pages(perf.bytes, cpus, page_size()) as u64 * page_size();
            let reader = super::perfbuf::PerfReader::new(&ring_map, perf.bytes, perf.record_size, on_record)
                .with_context(|| format!("perf event array {ring}"))?;
            super::perfbuf::mark_ready(obj)?;
            return Ok(EventReader { source: Source::Perf(reader), lost, ring_name: ring.to_string(), size });
        }
        let size = u64::from(ring_map.max_entries());
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&ring_map, move |data: &[u8]| {
                on_record(data);
                0
            })
            .with_context(|| format!("adding ring buffer {ring}"))?;
        let ring_buf = builder.build().with_context(|| format!("opening ring buffer {ring}"))?;
        Ok(EventReader { source: Source::Ring(ring_buf), lost, ring_name: ring.to_string(), size })
    }

    /// Whether records come through a perf buffer (else a ring buffer).
    pub fn is_perf(&self) -> bool {
        matches!(self.source, Source::Perf(_))
    }

    /// Waits up to `timeout` for records and hands over all that are there; returns how many.
    /// A signal interrupting the wait is not an error (0 records).
    pub fn poll(&self, timeout: Duration) -> anyhow::Result<usize> {
        match &self.source {
            Source::Ring(ring) => self.count(ring.poll_raw(timeout)),
            Source::Perf(p) => p.poll(timeout).with_context(|| format!("reading perf buffer {}", self.ring_name)),
        }
    }

    /// Hands over the records already in the ring without waiting; returns how many.
    pub fn drain(&self) -> anyhow::Result<usize> {
        match &self.source {
            Source::Ring(ring) => self.count(ring.consume_raw()),
            Source::Perf(p) => p.drain().with_context(|| format!("reading perf buffer {}", self.ring_name)),
        }
    }

    fn count(&self, n: i32) -> anyhow::Result<usize> {
        if n >= 0 {
            return Ok(n as usize);
        }
        if -n == libc::EINTR {
            return Ok(0);
        }
        Err(anyhow!("reading ring buffer {}: {}", self.ring_name, std::io::Error::from_raw_os_error(-n)))
    }

    /// The ring's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes a record of `len` bytes takes in the ring: an 8-byte header, rounded up to 8.
    pub fn footprint(len: usize) -> u64 {
        (len as u64).saturating_add(8 + 7) & !7
    }

    /// The epoll descriptor that becomes readable when records arrive: lets the session's one
    /// wait (deadline, signals) include this ring.
    pub fn epoll_fd(&self) -> i32 {
        match &self.source {
            Source::Ring(ring) => ring.epoll_fd(),
            Source::Perf(p) => p.epoll_fd(),
        }
    }

    /// Records lost so far (no room), summed over CPUs. Through a perf buffer, the kernel also
    /// reports lost records (`PERF_RECORD_LOST`); each of them is an output that failed, which
    /// the object's counter has counted already (bpf/events.bpf.h counts every failure, at the
    /// moment it happens, where the kernel reports late), so the two are not added: the larger
    /// is the loss (the counter, unless an object does not count its failures).
    pub fn lost(&self) -> anyhow::Result<u64> {
        let counted = self.counted_lost()?;
        Ok(match &self.source {
            Source::Ring(_) => counted,
            Source::Perf(p) => counted.max(p.kernel_lost()),
        })
    }

    /// The object's loss counter alone, summed over CPUs.
    fn counted_lost(&self) -> anyhow::Result<u64> {
        let Some(counter) = &self.lost else { return Ok(0) };
        let values = counter
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .with_context(|| format!("reading the loss counter of ring buffer {}", self.ring_name))?
            .unwrap_or_default();
        let mut total = 0u64;
        for v in values {
            let b: [u8; 8] = v
                .get(..8)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| anyhow!("loss counter of {}: short per-CPU value", self.ring_name))?;
            total = total.saturating_add(u64::from_ne_bytes(b));
        }
        Ok(total)
    }
}

/// Perf buffer sizing of [`EventReader::open`].
#[derive(Debug, Clone, Copy)]
pub struct PerfSizing {
    /// The stream's ring size in bytes, split over the CPUs ([`super::perfbuf::perf_pages`]).
    pub bytes: u64,
    /// The record's size: longer samples (the kernel pads them to 8 bytes) are cut to it.
    pub record_size: Option<usize>,
}

/// Runs of the object's programs the kernel skipped because the same program was already
/// running on that CPU (`bpf_prog_info.recursion_misses`): e.g. a block completion in a
/// hardirq that interrupts the completion program running in a softirq. Such an event never
/// reaches the program, so the ring's loss counter cannot see it; it is a loss all the same.
pub fn program_misses(obj: &Object) -> anyhow::Result<u64> {
    use std::os::fd::{AsFd, AsRawFd};
    let mut total = 0u64;
    for prog in obj.progs() {
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: the descriptor belongs to a program of `obj`, alive for this call; `info` is a
        // zeroed bpf_prog_info of `len` bytes, and every pointer field in it is 0, so the
        // kernel writes only into `info` itself.
        let rc = unsafe {
            libbpf_sys::bpf_obj_get_info_by_fd(
                prog.as_fd().as_raw_fd(),
                (&mut info as *mut libbpf_sys::bpf_prog_info).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            bail!(
                "reading the run statistics of program {}: {}",
                prog.name().to_string_lossy(),
                std::io::Error::from_raw_os_error(-rc)
            );
        }
        total = total.saturating_add(info.recursion_misses);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_sizes_must_be_page_multiples_and_powers_of_two() {
        assert_eq!(check_ring_size(4096).ok(), Some(4096));
        assert_eq!(check_ring_size(1 << 20).ok(), Some(1 << 20));
        for bad in [0, 1, 4095, 6000, 12288, 1 << 31, u64::MAX] {
            let e = check_ring_size(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("power of two"), "{bad}: {e}");
        }
    }
}
