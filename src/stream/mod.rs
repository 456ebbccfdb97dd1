//! Event streams: BPF programs that write one record per event into a ring buffer
//! (`BPF_MAP_TYPE_RINGBUF`), as the snoop tools do (bpf/events/). `records` holds the record
//! layouts shared with bpf/events.bpf.h and decodes them; `ringbuf` reads a ring buffer and its
//! loss counter. Not wired into the config format or the run loop yet (docs/events.md).
pub mod event;
pub mod records;
pub mod ringbuf;
