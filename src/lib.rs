//! ebpfx: bcc-style eBPF tools as one-shot commands.
//!
//! The data flows one way: `main` parses argv with `cli` and calls one of `commands`, which
//! drive the steps below in order. Each module owns one step and uses only modules below it, never
//! one that uses it back (tests/layout.rs fails on a cycle; docs/architecture.md has the map):
//!
//! ```text
//! main ─> cli ─> commands::{run, serve, render, check, list}
//!                  │
//!                  ├─ catalog ─> config         built-ins + --config-dir; the YAML, checked
//!                  ├─ targets                   --probe, flow filters (no libbpf)
//!                  ├─ session                   run and serve: attach once, read, assemble
//!                  ├─ loader                    open, load, attach (uses targets, kallsyms)
//!                  ├─ window                    THE loop: signals, deadline, progress, blocks
//!                  │    per block:
//!                  ├─ collect, events ─> raw    map contents, perf_event_array tallies
//!                  ├─ assemble ─> decode ─> model   raw bytes → labels → one snapshot
//!                  └─ output ─> render ─> model stdout, atomic files, push, remote_write, watch
//!
//! serve: session (attach once) ─> per scrape (serve::http asks the owning thread) or per
//!        interval (window, textfile): session read ─> assemble ─> render
//!
//! render FILE: snapshot_file (a saved run) ─> assemble ─> output
//! check: catalog ─> loader (check.rs)          list: catalog
//! shared below everything: error, model, raw, kallsyms
//! not wired yet: stream (ring-buffer event records and reader, docs/events.md)
//! ```
//!
//! Renderers never touch libbpf; the loader never formats output; `window` knows nothing of
//! maps or formats (it drives a [`window::Blocks`]); `output` knows nothing of the loop.
//! Shell completion (`complete`) and ebpfx's own metrics (`selfmetrics`) hang off `cli` and
//! `loader` respectively.
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
