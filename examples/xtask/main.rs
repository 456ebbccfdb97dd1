//! Maintainer tasks, not part of the product: `cargo xtask WHAT [--check]` (an alias in
//! .cargo/config.toml for `cargo run --example xtask --`).
//!
//!   cargo xtask man           rewrite man/*.1 from the clap definition (clap_mangen)
//!   cargo xtask completions   rewrite completions/* (clap_complete's registration scripts)
//!   cargo xtask all           both (also `make generate`)
//!   --check                   write nothing; exit 1 and name every stale file
mod generated;

use generated::What;

const USAGE: &str = "usage: cargo xtask man|completions|all [--check]";

fn main() {
    std::process::exit(match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            1
        }
    });
}

fn run() -> anyhow::Result<i32> {
    let mut what = None;
    let mut check = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "man" => what = Some(What::Man),
            "completions" => what = Some(What::Completions),
            "all" => what = Some(What::All),
            "--check" => check = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(0);
            }
            other => {
                eprintln!("xtask: unknown argument {other:?}\n{USAGE}");
                return Ok(2);
            }
        }
    }
    let Some(what) = what else {
        eprintln!("{USAGE}");
        return Ok(2);
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = generated::artefacts(what)?;
    if check {
        let problems = generated::differences(&files, root)?;
        if problems.is_empty() {
            return Ok(0);
        }
        eprintln!("stale generated files (run `{}`):", generated::REGENERATE_COMMAND);
        for p in problems {
            eprintln!("  {p}");
        }
        return Ok(1);
    }
    for path in generated::write(&files, root)? {
        println!("wrote {}", path.strip_prefix(root).unwrap_or(&path).display());
    }
    Ok(0)
}
