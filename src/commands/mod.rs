//! One file per subcommand: each turns its clap arguments into calls of the library, in the
//! order of the data flow. `main` only dispatches here.
use std::path::Path;

pub mod check;
pub mod events;
pub mod list;
pub mod render;
pub mod run;
pub mod serve;

/// The flags every subcommand takes (`--config-dir`, `-v`, `-q`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Globals<'a> {
    pub config_dir: Option<&'a Path>,
    pub verbose: u8,
    pub quiet: bool,
}
