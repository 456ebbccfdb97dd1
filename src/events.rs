//! `perf_event_array` counters (docs/config-format.md#perf_event_array-counters): the BPF program
//! emits one record per event into a `BPF_MAP_TYPE_PERF_EVENT_ARRAY`; ebpfx counts the records by
//! their bytes during the window. The tallies are handed on as ordinary raw maps (record bytes as
//! keys, counts as values), so decoding, intervals and saved snapshots treat them like any counter.
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::rc::Rc;
use std::time::Duration;

use anyhow::anyhow;
use libbpf_rs::{MapCore, PerfBuffer, PerfBufferBuilder};

use crate::config::{Config, MetricKind};
use crate::loader::Loaded;
use crate::raw::RawMap;

/// Pages per CPU of each perf buffer (64 × 4 KiB): ample when polled every 100 ms.
const PAGES: usize = 64;

#[derive(Default)]
struct Tally {
    counts: HashMap<Vec<u8>, u64>,
    /// Records shorter than the labels' total size (they cannot be decoded).
    short: u64,
    lost: u64,
}

struct Counter {
    config: usize,
    metric: usize,
    name: String,
    key_size: usize,
    buffer: PerfBuffer<'static>,
    tally: Rc<RefCell<Tally>>,
}

/// Every `perf_event_array` counter of the loaded configs, with its perf buffer.
#[derive(Default)]
pub struct EventCounters {
    counters: Vec<Counter>,
}

impl EventCounters {
    /// Opens a perf buffer on the map of each `perf_event_array` counter.
    pub fn open(loaded: &[Loaded]) -> anyhow::Result<EventCounters> {
        let mut counters = Vec::new();
        for (ci, l) in loaded.iter().enumerate() {
            for (mi, metric) in l.config.metrics.iter().enumerate() {
                if !matches!(metric.kind, MetricKind::Counter { perf_event_array: true }) {
                    continue;
                }
                let map = l.object.maps().find(|m| m.name() == OsStr::new(&metric.name)).ok_or_else(|| {
                    crate::error::config_err(format!(
                        "config {}: perf_event_array counter {}: the object has no map of that name",
                        l.config.name, metric.name
                    ))
                })?;
                let key_size = Config::key_size(metric);
                let tally = Rc::new(RefCell::new(Tally::default()));
                let (t1, t2) = (tally.clone(), tally.clone());
                let buffer = PerfBufferBuilder::new(&map)
                    .pages(PAGES)
                    .sample_cb(move |_cpu, data: &[u8]| {
                        let mut t = t1.borrow_mut();
                        // The kernel pads records to 8 bytes: only the labels' bytes count.
                        match data.get(..key_size) {
                            Some(key) => *t.counts.entry(key.to_vec()).or_insert(0) += 1,
                            None => t.short += 1,
                        }
                    })
                    .lost_cb(move |_cpu, n| t2.borrow_mut().lost += n)
                    .build()
                    .map_err(|e| {
                        anyhow!(
                            "config {}: perf_event_array counter {}: cannot open a perf buffer on its map: {e:#}",
                            l.config.name,
                            metric.name
                        )
                    })?;
                counters.push(Counter { config: ci, metric: mi, name: metric.name.clone(), key_size, buffer, tally });
            }
        }
        Ok(EventCounters { counters })
    }

    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Consumes every record waiting in the buffers.
    pub fn poll(&self) {
        for c in &self.counters {
            let _ = c.buffer.poll(Duration::ZERO);
        }
    }

    /// Puts the tallies (cumulative since attach) into `maps` in place of the empty maps
    /// `collect` returns for these counters; returns warnings about dropped or lost records.
    pub fn fill(&self, maps: &mut [Vec<RawMap>]) -> Vec<String> {
        self.poll();
        let mut warnings = Vec::new();
        for c in &self.counters {
            let t = c.tally.borrow();
            let mut raw = RawMap { name: c.name.clone(), key_size: c.key_size, slots: 1, ..RawMap::default() };
            let mut keys: Vec<(&Vec<u8>, &u64)> = t.counts.iter().collect();
            keys.sort();
            for (k, v) in keys {
                raw.push(k, &[*v]);
            }
            if let Some(slot) = maps.get_mut(c.config).and_then(|m| m.get_mut(c.metric)) {
                *slot = raw;
            }
            if t.short > 0 {
                warnings.push(format!(
                    "perf_event_array counter {}: {} records were shorter than the labels' {} bytes and were not counted",
                    c.name, t.short, c.key_size
                ));
            }
            if t.lost > 0 {
                warnings.push(format!(
                    "perf_event_array counter {}: the kernel lost {} records (buffer full): counts are lower bounds",
                    c.name, t.lost
                ));
            }
        }
        warnings
    }
}
