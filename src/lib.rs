//! ebpfx: bcc-style eBPF tools as one-shot commands and as a long-running exporter.
//!
//! The data flows one way: `main` parses argv with `cli` and calls one of `commands`, which
//! drive the steps below in order. Each module owns one step and uses only modules below it, never
//! one that uses it back (tests/layout.rs fails on a cycle; docs/architecture.md has the map):
//!
//! ```text
//! main ─> cli ─> commands::{run, serve, render, check, list}
//!                  │
//!                  ├─ grammar                   bcc's `[interval] [count]`, "did you mean"
//!                  ├─ catalog ─> config         built-ins + --config-dir; the YAML, checked
//!                  ├─ targets                   --probe, flow filters (no libbpf)
//!                  ├─ session                   run and serve: attach once, read, assemble
//!                  │    ├─ loader               open, load, attach (uses targets, kallsyms)
//!                  │    ├─ collect, events ─> raw   map contents, perf_event_array tallies
//!                  │    ├─ selfmetrics          ebpfx's own metrics (programs, BPF run time)
//!                  │    └─ assemble ─> decode ─> model   raw bytes → labels → one snapshot
//!                  ├─ regroup                   --by: labels summed away or merged
//!                  ├─ window                    THE loop: signals, deadline, progress, blocks
//!                  ├─ serve                     Collector, http (TLS, basic auth), caps
//!                  └─ output ─> render ─> model stdout, atomic files, push, remote_write, watch
//!
//! run:    session (attach) ─> window: per block session read ─> assemble ─> regroup ─> output
//! serve:  session (attach) ─> caps dropped ─> per scrape (serve::http asks the thread that
//!         owns the serve::Collector) or per interval (window, textfile mode):
//!         session read ─> assemble ─> regroup ─> render
//! render FILE: snapshot_file (a saved run) ─> assemble ─> regroup ─> output
//! check: catalog ─> loader (check.rs)          list: catalog
//! shared below everything: error, model, raw, kallsyms, config
//! not wired yet: stream (ring-buffer event records and reader, docs/events.md)
//! ```
//!
//! Renderers never touch libbpf; the loader never formats output; `window` knows nothing of
//! maps or formats (it drives a [`window::Blocks`]); `output` knows nothing of the loop.
//! `cli` holds only clap types: its shared argument groups (`OutputArgs`, `SeriesArgs`,
//! `AttachArgs`) are flattened into run, render and serve, and it borrows a few value parsers
//! from below (`--max-map-memory`, `--push-label`). Shell completion (`complete`) answers TAB
//! from the same definition, with candidates from `catalog`, `targets` and `regroup`.
pub mod assemble;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod collect;
pub mod commands;
pub mod complete;
pub mod config;
pub mod decode;
pub mod error;
pub mod event_model;
pub mod events;
pub mod grammar;
pub mod kallsyms;
pub mod loader;
pub mod model;
pub mod output;
pub mod raw;
pub mod regroup;
pub mod render;
pub mod selfmetrics;
pub mod serve;
pub mod session;
pub mod snapshot_file;
pub mod stream;
pub mod targets;
pub mod window;
