//! `ebpfx check`: each config's verdict and every problem; a config error (exit 2) when any
//! config has problems.
use crate::catalog::Catalog;
use crate::check::{self, Report};
use crate::cli::CheckArgs;
use crate::loader::{self, LoadOptions};

use super::Globals;

pub fn run(args: &CheckArgs, globals: &Globals<'_>) -> anyhow::Result<()> {
    let catalog = Catalog::new(globals.config_dir)?;
    let verbose = globals.verbose;
    loader::init_libbpf_logging(verbose);
    if args.attach {
        loader::check_privileges()?;
    }
    let opts = LoadOptions { strict: false, verbose, btf: args.btf.clone(), ..Default::default() };
    let mut out = String::new();
    let mut failed = Vec::new();
    for name in &args.names {
        let report = match catalog.resolve(name) {
            Ok(r) => check::check(&r, &opts, args.attach),
            Err(e) => Report { problems: vec![format!("{e:#}")], notes: vec![] },
        };
        if report.problems.is_empty() {
            out.push_str(&format!("{name}: ok\n"));
        } else {
            failed.push(name.clone());
            out.push_str(&format!("{name}: {} problem(s)\n", report.problems.len()));
            for p in &report.problems {
                out.push_str(&format!("  - {p}\n"));
            }
        }
        if verbose > 0 {
            for n in &report.notes {
                out.push_str(&format!("  note: {n}\n"));
            }
        }
    }
    crate::output::print(&out)?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(crate::error::config_err(format!("check failed for {}", failed.join(", "))))
    }
}
