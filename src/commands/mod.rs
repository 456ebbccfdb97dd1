//! One file per subcommand: each turns its clap arguments into calls of the library, in the
//! order of the data flow. `main` only dispatches here.
use std::path::Path;

use crate::catalog::{Catalog, Resolved};
use crate::cli::{AttachArgs, OutputArgs, SeriesArgs};
use crate::error::usage_err;
use crate::loader::LoadOptions;
use crate::render::Options;

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
fn render_options(out: &OutputArgs, series: &SeriesArgs) -> Options {
    Options {
        prefix: series.prefix.clone(),
        unit: out.unit,
        top: out.top.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

/// The configs named on the command line, each parsed and validated (none named twice, no
/// metric defined by two), and the load options of `--strict`, `--btf`, `--frequency` and the
/// run-time targets (`--probe`, flow filters), checked like the configs: what can be wrong is
/// found before any BPF is loaded (run and serve).
fn resolve_and_target(
    names: &[String],
    attach: &AttachArgs,
    globals: &Globals<'_>,
) -> anyhow::Result<(Vec<Resolved>, LoadOptions)> {
    let catalog = Catalog::new(globals.config_dir)?;
    let mut resolved: Vec<Resolved> = Vec::new();
    for name in names {
        if resolved.iter().any(|r| r.config.name == *name) {
            return Err(usage_err(format!("config {name:?} is named twice")));
        }
        resolved.push(catalog.resolve(name)?);
    }
    crate::config::check_distinct_metrics(resolved.iter().map(|r| &r.config))?;
    let probe = crate::targets::apply(&mut resolved, &attach.probe)?;
    let flow_globals = crate::targets::flows::globals(attach.port, attach.addr.as_deref(), attach.state.as_deref())?;
    let opts = LoadOptions {
        strict: attach.strict,
        verbose: globals.verbose,
        btf: attach.btf.clone(),
        frequency: attach.frequency,
        globals: flow_globals,
        probe,
    };
    Ok((resolved, opts))
}
