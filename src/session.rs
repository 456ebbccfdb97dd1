//! What `run` and `serve` share between attaching and writing: the configs loaded and attached
//! (with their perf buffers and BPF run-time statistics), one read of every map, and the
//! assembly of a read into a [`Snapshot`] with the self metrics. `run` reads once per block
//! (window), `serve` once per scrape; both go through [`Session::read`] and [`Session::snapshot`].
use std::collections::HashMap;

use crate::assemble::{build_snapshot, note_full_maps};
use crate::catalog::Resolved;
use crate::config::Config;
use crate::decode::{Decoders, Env};
use crate::events::EventCounters;
use crate::loader::{self, LoadOptions, Loaded};
use crate::model::{Snapshot, Window};
use crate::raw::RawMap;
use crate::selfmetrics::{self, ProgramRow, RunStats, StatsGuard};
use crate::targets::tasks::{Gated, Targets};

/// How much `attach` says on stderr (the command's `-q` and `-v`).
#[derive(Clone, Copy, Debug)]
pub struct Notes {
    pub quiet: bool,
    pub verbose: u8,
}

/// How each config loads and which tasks it watches.
pub struct Aim {
    /// One per config, in order: the shared flag and target globals plus the config's own
    /// kernel-side `--by` labels.
    pub opts: Vec<LoadOptions>,
    /// `-p`, `--tid`, `--comm`, `--cgroup`: written into every object's target maps after load.
    pub targets: Targets,
    /// `-- COMMAND` (`run` only): started held before the first load, its pid added to the
    /// targets; the caller releases [`Session::gated`] when its window starts.
    pub command: Vec<std::ffi::OsString>,
}

/// Attached configs and everything needed to read and decode them.
pub struct Session {
    pub loaded: Vec<Loaded>,
    pub configs: Vec<Config>,
    pub config_names: Vec<String>,
    pub events: EventCounters,
    event_warnings: Vec<String>,
    /// Run-time statistics for as long as the session lives: the kernel turns them off when the
    /// guard's descriptor closes (end, error, Ctrl-C, even SIGKILL).
    stats_guard: Option<StatsGuard>,
    pub decoders: Decoders,
    /// `-- COMMAND`, held before exec until the caller releases it.
    pub gated: Option<Gated>,
}

/// One read of every map with the program statistics taken just before it.
pub struct Read {
    pub maps: Vec<Vec<RawMap>>,
    pub rows: Vec<ProgramRow>,
    pub stats: HashMap<u32, RunStats>,
}

impl Session {
    /// Opens and checks every config's object, then loads and attaches them all (filling their
    /// target maps), switches on run-time statistics and opens the perf buffers. `what` names
    /// the command in notes.
    pub fn attach(resolved: &[Resolved], aim: Aim, globals: Notes, what: &str) -> anyhow::Result<Session> {
        let Aim { opts, mut targets, command } = aim;
        if opts.len() != resolved.len() {
            return Err(anyhow::anyhow!("internal: {} configs but {} load options", resolved.len(), opts.len()));
        }
        loader::init_libbpf_logging(globals.verbose);
        // Objects are opened and checked against their configs before anything is loaded.
        let prepared =
            resolved.iter().zip(&opts).map(|(r, o)| loader::prepare(r, o)).collect::<anyhow::Result<Vec<_>>>()?;
        loader::check_privileges()?;
        // `-- COMMAND`: started now, held before exec until the window starts; its pid joins the set.
        let gated = if command.is_empty() { None } else { Some(Gated::spawn(&command)?) };
        if let Some(g) = &gated {
            targets.pids.push(g.pid);
        }
        let mut loaded: Vec<Loaded> = Vec::with_capacity(prepared.len());
        for (p, o) in prepared.into_iter().zip(&opts) {
            let l = load_one(p, o, globals, what)?;
            if targets.any() {
                loader::tasks::fill(&targets, &l)?;
            }
            loaded.push(l);
        }
        loader::post_attach_mark();
        let stats_guard = match selfmetrics::enable_stats() {
            Ok(g) => Some(g),
            Err(e) => {
                if globals.verbose > 0 {
                    crate::say!("ebpfx: note: BPF run-time statistics unavailable ({e}): no run counts in the output");
                }
                None
            }
        };
        let events = EventCounters::open(&loaded)?;
        Ok(Session {
            config_names: loaded.iter().map(|l| l.config.name.clone()).collect(),
            configs: loaded.iter().map(|l| l.config.clone()).collect(),
            loaded,
            events,
            event_warnings: Vec::new(),
            stats_guard,
            decoders: Decoders::new(Env::system()),
            gated,
        })
    }

    /// Whether run-time statistics are on (run counts in the self metrics).
    pub fn has_stats(&self) -> bool {
        self.stats_guard.is_some()
    }

    /// Program rows and run statistics of every loaded config, by program id.
    pub fn gather_stats(&self) -> (Vec<ProgramRow>, HashMap<u32, RunStats>) {
        let mut rows = Vec::new();
        let mut stats = HashMap::new();
        for l in &self.loaded {
            for (row, st) in selfmetrics::program_stats(l) {
                if row.id != 0 {
                    stats.insert(row.id, st);
                }
                rows.push(row);
            }
        }
        (rows, stats)
    }

    /// Raw maps of every loaded config, in config order (perf_event_array tallies included).
    pub fn read_maps(&mut self) -> anyhow::Result<Vec<Vec<RawMap>>> {
        let mut maps = self.loaded.iter().map(crate::collect::read_config).collect::<anyhow::Result<Vec<_>>>()?;
        self.event_warnings = self.events.fill(&mut maps);
        Ok(maps)
    }

    /// The statistics, then every map.
    pub fn read(&mut self) -> anyhow::Result<Read> {
        let (rows, stats) = self.gather_stats();
        let maps = self.read_maps()?;
        Ok(Read { maps, rows, stats })
    }

    /// Detaches every program; maps stay readable.
    pub fn detach(&mut self) {
        for l in &mut self.loaded {
            l.detach();
        }
    }

    /// Decodes `values` (a read, or the difference of two) into a snapshot of `window`, with the
    /// self metrics: program statistics gathered since `stats_since` (None: since load), and
    /// the maps of `read` that are full.
    pub fn snapshot(
        &mut self,
        read: &Read,
        values: Option<&[Vec<RawMap>]>,
        window: Window,
        stats_since: &HashMap<u32, RunStats>,
    ) -> Snapshot {
        let configs: Vec<&Config> = self.configs.iter().collect();
        let mut snapshot = build_snapshot(&configs, values.unwrap_or(&read.maps), window, &mut self.decoders);
        snapshot.warnings.append(&mut self.event_warnings);
        let run_stats = self.stats_guard.as_ref().map(|_| selfmetrics::window_delta(stats_since, &read.stats));
        snapshot.self_metrics = selfmetrics::metrics(&self.config_names, &read.rows, run_stats.as_ref());
        // Fullness of the map itself: the difference of a full map can be small.
        note_full_maps(&mut snapshot, &configs, &read.maps);
        snapshot
    }
}

/// Loads and attaches one prepared config, saying what was left out.
fn load_one(p: loader::Prepared, opts: &LoadOptions, globals: Notes, what: &str) -> anyhow::Result<Loaded> {
    let r = &p.resolved;
    if r.config.tracing_spans > 0 && !globals.quiet {
        crate::say!(
            "ebpfx: note: config {} defines {} tracing span(s); {what} does not collect spans",
            r.config.name,
            r.config.tracing_spans
        );
    }
    let l = loader::load(p, opts)?;
    if let Some(spec) = &l.config.cgroup_id_map {
        let mut cgroups = HashMap::new();
        crate::decode::cgroup::walk(std::path::Path::new("/sys/fs/cgroup"), &mut cgroups);
        let n = loader::cgroup_map::sync(&l, spec, cgroups)?;
        if globals.verbose > 0 {
            crate::say!("ebpfx: config {}: cgroup_id_map {}: {n} cgroup(s) selected", l.config.name, spec.name);
        }
    }
    for p in l.programs.iter().filter(|p| !p.attached) {
        if !globals.quiet {
            crate::say!(
                "ebpfx: warning: config {}: program {} ({}) left out: {} (--strict makes this an error)",
                l.config.name,
                p.name,
                p.section,
                p.problem.as_deref().unwrap_or("unknown reason")
            );
        }
    }
    if globals.verbose > 0 {
        let ids: Vec<String> = l.programs.iter().filter(|p| p.attached).map(|p| p.id.to_string()).collect();
        crate::say!(
            "ebpfx: config {}: {} of {} programs attached in {:.1} ms (program ids {})",
            l.config.name,
            l.attached(),
            l.programs.len(),
            l.setup_time.as_secs_f64() * 1000.0,
            ids.join(",")
        );
    }
    Ok(l)
}
