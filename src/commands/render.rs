//! `ebpfx render FILE`: decodes and renders a `--save-raw` snapshot, without root or BPF.
use std::io::Write;

use crate::assemble::{build_snapshot, note_full_maps};
use crate::cli::RenderArgs;
use crate::config::Config;
use crate::decode::{Decoders, Env};
use crate::model::MAP_FULL;
use crate::output::view::{check_binary_output, choose_format, render_for_to};
use crate::output::AtomicFile;
use crate::raw::RawMap;

use super::Globals;

pub fn run(args: &RenderArgs, globals: &Globals<'_>) -> anyhow::Result<()> {
    if super::events::is_events_file(&args.file) {
        return super::events::render(args, globals);
    }
    if args.timestamp {
        return Err(crate::error::usage_err("-T adds a time column to saved event runs; this is a map snapshot"));
    }
    let saved = crate::snapshot_file::load(&args.file)?;
    check_binary_output(args.out.format, args.out.output.is_some())?;
    let format = choose_format(args.out.format, args.out.output.is_some());
    let by = crate::regroup::parse_and_check(
        args.series.by.as_deref(),
        &saved.configs.iter().map(|(c, _)| c).collect::<Vec<_>>(),
    )?;
    crate::regroup::check_top(args.out.top, format)?;
    crate::regroup::check_stacks(by.as_ref(), format)?;
    let mut out = args.out.output.as_deref().map(|o| AtomicFile::create(o, "--output")).transpose()?;
    let configs: Vec<&Config> = saved.configs.iter().map(|(c, _)| c).collect();
    let maps: Vec<Vec<RawMap>> = saved.configs.iter().map(|(_, m)| m.clone()).collect();
    let mut snapshot = build_snapshot(&configs, &maps, saved.window, &mut Decoders::new(Env::system()));
    snapshot.self_metrics = saved.self_metrics;
    snapshot.self_metrics.retain(|m| m.name != MAP_FULL);
    note_full_maps(&mut snapshot, &configs, &maps);
    if let Some(by) = &by {
        crate::regroup::regroup(&mut snapshot, by);
    }
    if !globals.quiet {
        for w in &snapshot.warnings {
            crate::say!("ebpfx: warning: {w}");
        }
    }
    let opts = super::render_options(&args.out, &args.series);
    let write = |w: &mut dyn Write| render_for_to(format, &snapshot, &opts, saved.sample_frequency_hz, w);
    match out.as_mut() {
        Some(file) => file.write_with(write),
        None => crate::output::write_stdout(write),
    }
}
