//! One file per subcommand: each turns its clap arguments into calls of the library, in the
//! order of the data flow. `main` only dispatches here.
use std::path::Path;

pub mod check;
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

/// The render options of `--prefix`, `--unit` and `--top` (run and render).
fn render_options(out: &crate::cli::OutputArgs, series: &crate::cli::SeriesArgs) -> crate::render::Options {
    crate::render::Options {
        prefix: series.prefix.clone(),
        unit: out.unit,
        top: out.top.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    }
}
