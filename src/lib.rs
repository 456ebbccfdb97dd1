//! ebpfx: bcc-style eBPF tools as one-shot commands.
//!
//! The data flows one way: `cli` → `catalog` → `config` → `loader` → `collect` → `decode` →
//! `model` → `render`. `session` drives one run (deadline, signals, progress) by calling these
//! in order. Renderers never touch libbpf; the loader never formats output.
pub mod catalog;
pub mod check;
pub mod cli;
pub mod collect;
pub mod config;
pub mod decode;
pub mod error;
pub mod events;
pub mod generate;
pub mod loader;
pub mod model;
pub mod push;
pub mod raw;
pub mod render;
pub mod selfmetrics;
pub mod session;
pub mod snapshot_file;
pub mod targets;
pub mod watch;
