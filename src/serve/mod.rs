//! `ebpfx serve`: the programs stay attached and every read covers the time since they were
//! attached (kernel maps are never cleared, so counters are cumulative and label sets last as
//! long as the process). A [`Collector`] makes the snapshot of one read; the HTTP side
//! ([`http`]) asks the thread that owns it for one per scrape; textfile mode writes one per
//! interval through the run loop.
use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use crate::model::{Metric, MetricValues, Sample, Snapshot, Window};
use crate::render::Options;
use crate::selfmetrics::RunStats;
use crate::session::Session;

pub mod caps;
pub mod http;
pub mod webconfig;

/// The attached session and the moment the counters started.
pub struct Collector {
    pub session: Session,
    start_wall: SystemTime,
    start: Instant,
    start_stats: HashMap<u32, RunStats>,
    pub render: Options,
    /// `--by`: the exported labels.
    pub by: Option<crate::regroup::By>,
    /// When the decoders (and their caches of decoded label values) were last made new.
    decoders_since: Instant,
    /// How long the last [`Collector::snapshot`] took to read the maps, then to decode them
    /// (`-vv` says it per scrape).
    pub last_times: (std::time::Duration, std::time::Duration),
}

/// The decoders' caches of label values grow with every distinct key ever seen (cgroups and
/// tasks come and go): a long-running serve starts them afresh this often, so that memory
/// stays bounded by what the maps hold, at the cost of one uncached decode.
const DECODERS_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

impl Collector {
    /// Starts the clock: call it right after attaching.
    pub fn new(mut session: Session, render: Options) -> Collector {
        // Label sets are stable here: decoded keys are kept between scrapes (README.md, `ebpfx serve`, "Label cache").
        keep_keys(&mut session.decoders);
        let start_stats = session.gather_stats().1;
        Collector {
            session,
            start_wall: SystemTime::now(),
            start: Instant::now(),
            start_stats,
            render,
            by: None,
            decoders_since: Instant::now(),
            last_times: Default::default(),
        }
    }

    /// Keeps the decoded keys of the latest read where most of its keys were new: call it when
    /// no scrape waits and the last answer is out (such a scrape costs what a one-shot read
    /// does; the keys are kept while nobody waits).
    pub fn keep_keys_read(&mut self) {
        self.session.decoders.fill_kept_keys();
    }

    /// Reads every map now and decodes the totals since the start.
    pub fn snapshot(&mut self) -> anyhow::Result<Snapshot> {
        if self.decoders_since.elapsed() > DECODERS_LIFETIME {
            self.session.decoders = crate::decode::Decoders::new(crate::decode::Env::system());
            keep_keys(&mut self.session.decoders);
            self.decoders_since = Instant::now();
        }
        let t0 = Instant::now();
        let read = self.session.read()?;
        let t1 = Instant::now();
        let window = Window { start: self.start_wall, end: SystemTime::now(), length: self.start.elapsed() };
        let mut snapshot = self.session.snapshot(&read, None, window, &self.start_stats);
        if let Some(by) = &self.by {
            crate::regroup::regroup(&mut snapshot, by);
        }
        snapshot.self_metrics.push(start_time(&self.session.config_names, self.start_wall));
        drop(read);
        self.last_times = (t1 - t0, t1.elapsed());
        Ok(snapshot)
    }
}

/// Decoded keys are kept between reads, and a read that has none kept yet is answered first and
/// kept after ([`Collector::keep_keys_read`]).
fn keep_keys(decoders: &mut crate::decode::Decoders) {
    decoders.keep_decoded_keys(true);
    decoders.fill_kept_keys_later(true);
}

/// `start_time_seconds{config}`: when the counters started (a change means they restarted).
fn start_time(configs: &[String], start: SystemTime) -> Metric {
    let t = start.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    Metric {
        config: "ebpfx".into(),
        name: "start_time_seconds".into(),
        help: "Unix time at which ebpfx serve attached the config's programs: its counters count from then".into(),
        label_names: vec!["config".into()],
        values: MetricValues::Gauge(
            configs.iter().map(|c| Sample { labels: vec![c.clone()], value: t }).collect::<Vec<_>>().into(),
        ),
    }
}
