//! One file per subcommand: each turns its clap arguments into calls of the library, in the
//! order of the data flow. `main` only dispatches here.
use std::path::Path;

use crate::catalog::{Catalog, Resolved};
use crate::cli::{AttachArgs, OutputArgs, SeriesArgs};
use crate::error::usage_err;
use crate::loader::globals::GlobalValue;
use crate::loader::LoadOptions;
use crate::render::Options;
use crate::targets::tasks::Targets;

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

/// The render options of `--prefix`, `--unit` and `--top` (run and render).
fn render_options(out: &OutputArgs, series: &SeriesArgs) -> Options {
    Options {
        prefix: series.prefix.clone(),
        unit: out.unit,
        top: out.top.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

/// The configs named on the command line, each parsed and validated (none named twice, no
/// metric defined by two), the task targets, and one set of load options per config (`--strict`,
/// `--btf`, `--frequency`, `--probe`, flow filters, target globals, the config's kernel-side
/// `--by`), checked like the configs: what can be wrong is found before any BPF is loaded (run
/// and serve).
fn resolve_and_target(
    names: &[String],
    attach: &AttachArgs,
    by: Option<&[String]>,
    command: bool,
    globals: &Globals<'_>,
) -> anyhow::Result<(Vec<Resolved>, Vec<LoadOptions>, Targets)> {
    let catalog = Catalog::new(globals.config_dir)?;
    let mut resolved: Vec<Resolved> = Vec::new();
    for name in names {
        if resolved.iter().any(|r| r.config.name == *name) {
            return Err(usage_err(format!("config {name:?} is named twice")));
        }
        resolved.push(catalog.resolve(name)?);
    }
    crate::config::check_distinct_metrics(resolved.iter().map(|r| &r.config))?;
    // Task targets (-p, --tid, --comm, --cgroup, -- COMMAND) and kernel-side --by labels,
    // checked against what each config declares.
    let (targets, by_globals) = targets_and_by(&attach.targets, command, by, &mut resolved)?;
    let probe = crate::targets::apply(&mut resolved, &attach.probe)?;
    let flow_globals = crate::targets::flows::globals(attach.port, attach.addr.as_deref(), attach.state.as_deref())?;
    let opts = LoadOptions {
        strict: attach.strict,
        verbose: globals.verbose,
        btf: attach.btf.clone(),
        frequency: attach.frequency,
        globals: flow_globals,
        probe,
        follow_forks: false,
    };
    let opts = load_options(&opts, &targets, by_globals);
    Ok((resolved, opts, targets))
}

/// The task targets and kernel-side `--by` labels of `run` and `serve`, checked against what
/// each config declares before anything loads: `resolved` gains the `--by` labels it switches
/// on; one optional `ebpfx_by` global per config comes back.
fn targets_and_by(
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
fn load_options(base: &LoadOptions, targets: &Targets, by_globals: Vec<Option<GlobalValue>>) -> Vec<LoadOptions> {
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

/// The remote-write target of `--remote-write URL` and its auth and header options (run, serve).
fn remote_write_target(
    url: &str,
    job: &str,
    f: &crate::cli::FleetArgs,
) -> anyhow::Result<crate::output::remote_write::Target> {
    crate::output::remote_write::target(&crate::output::remote_write::Options {
        url,
        job,
        push_labels: &f.push_labels,
        headers: &f.remote_write_headers,
        bearer_token_file: f.remote_write_bearer_token_file.as_deref(),
        username: f.remote_write_username.as_deref(),
        password_file: f.remote_write_password_file.as_deref(),
    })
}
