//! Event streams: BPF programs that write one record per event into a ring buffer
//! (`BPF_MAP_TYPE_RINGBUF`), or a perf event array where the kernel has no ring buffers, as the
//! snoop tools do (bpf/events/). `records` holds the record layouts shared with
//! bpf/events.bpf.h; `event` decodes records by a config's fields; `ringbuf` reads a stream and
//! its loss counter; `perfbuf` is the perf event array transport (docs/events.md).
pub mod event;
pub mod perfbuf;
pub mod records;
pub mod ringbuf;
