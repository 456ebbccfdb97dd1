//! ebpfx: bcc-style eBPF tools as one-shot commands.
//!
//! The data flows one way; each module owns one step and calls only the ones to its right:
//!
//! ```text
//! main ─> commands::{run,render,check,list}
//!           │
//!           ├─ cli (clap types)   catalog ─> config        (built-ins + --config-dir, YAML checks)
//!           │
//!           ├─ run:  loader (open, load, attach) ─> window (ONE loop: signals, deadline,
//!           │        progress, blocks) ─> per block: collect (map reads) ─> raw
//!           │        ─> assemble (decode ─> model::Snapshot, full maps) ─> output
//!           │
//!           └─ render: snapshot_file (a saved run) ─> assemble ─> output
//!
//! output ─> render (pure formats of the model) ─> model
//! output: stdout (a closed pipe ends quietly), atomic files, push, remote_write, watch, view
//! ```
//!
//! Renderers never touch libbpf; the loader never formats output; `window` knows nothing of
//! maps or formats (it drives a [`window::Blocks`]); `output` knows nothing of the loop.
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
pub mod snapshot_file;
pub mod stream;
pub mod targets;
pub mod window;
