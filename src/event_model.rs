//! The neutral form of event records, beside [`crate::model`]'s snapshots: what the event
//! renderers (`render::events`) read. Built by `stream::event` from ring buffer records, or by
//! hand in tests; nothing here knows about libbpf or an output format.

/// How one event stream's records are shown: its columns in display order.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSchema {
    /// The config the stream belongs to.
    pub config: String,
    /// The `events:` entry's name.
    pub stream: String,
    /// Printed columns: short ones in record order, then long ones (arguments, paths).
    pub columns: Vec<Column>,
    /// Index into [`EventRow::values`] of each prom label, and its name.
    pub labels: Vec<(usize, String)>,
    /// ebpf_exporter spans: JSON adds `name` and `end`, and leaves out an all-zero parent.
    pub span: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// Index into [`EventRow::values`].
    pub field: usize,
    /// Table width; long columns are not padded.
    pub width: usize,
    pub long: bool,
    /// JSON prints the value as a number.
    pub numeric: bool,
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Wall-clock time of the event (Unix nanoseconds), when the record has a timestamp.
    pub time_ns: Option<u64>,
    /// Decoded value of every field of the record, in record order (hidden ones too).
    pub values: Vec<String>,
    /// The raw value of the latency field, when the stream has one.
    pub latency: Option<u64>,
}
