//! One file per subcommand: each turns its clap arguments into calls of the library, in the
//! order of the data flow. `main` only dispatches here.
use std::path::Path;

use crate::loader::globals::GlobalValue;
use crate::loader::LoadOptions;
use crate::targets::tasks::Targets;

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

/// The task targets and kernel-side `--by` labels of `run` and `serve`, checked against what
/// each config declares before anything loads: `resolved` gains the `--by` labels it switches
/// on; one optional `ebpfx_by` global per config comes back.
pub(crate) fn targets_and_by(
    flags: &crate::cli::TargetArgs,
    command: bool,
    by: Option<&[String]>,
    resolved: &mut [crate::catalog::Resolved],
) -> anyhow::Result<(Targets, Vec<Option<GlobalValue>>)> {
    let targets = Targets::parse(&flags.pid, &flags.tid, &flags.comm, flags.cgroup.as_deref(), command)?;
    for r in resolved.iter() {
        targets.check(&r.config)?;
    }
    let by = crate::targets::tasks::parse_by(by.unwrap_or_default());
    let by_globals =
        resolved.iter_mut().map(|r| crate::targets::tasks::apply_by(r, &by)).collect::<anyhow::Result<_>>()?;
    Ok((targets, by_globals))
}

/// One set of load options per config: `base` (with the shared flag globals) plus the target
/// globals and the config's own `--by` global.
pub(crate) fn load_options(
    base: &LoadOptions,
    targets: &Targets,
    by_globals: Vec<Option<GlobalValue>>,
) -> Vec<LoadOptions> {
    by_globals
        .into_iter()
        .map(|by| {
            let mut o = base.clone();
            o.globals.extend(targets.globals());
            o.globals.extend(by);
            o.follow_forks = targets.command;
            o
        })
        .collect()
}
