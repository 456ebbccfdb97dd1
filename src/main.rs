//! The `ebpfx` binary: parse arguments, call the library, map errors to exit codes
//! (2 usage/config, 1 runtime, 130 double interrupt).
use clap::Parser;

use ebpfx::cli::{Cli, Command};
use ebpfx::session::{self, RunRequest};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => session::run(&RunRequest {
            names: args.names,
            duration: args.duration,
            format: args.format,
            output: args.output,
            prefix: args.prefix,
            strict: args.strict,
            btf: args.btf,
            config_dir: cli.config_dir,
            verbose: cli.verbose,
            quiet: cli.quiet,
            interval: args.interval,
            count: args.count.map(|c| c as usize),
            timestamp: args.timestamp,
            save_raw: args.save_raw,
            push: args.push,
            job: args.job,
            fleet: args.fleet,
            watch: args.watch,
            frequency: args.frequency,
            probe: args.probe,
            port: args.port,
            addr: args.addr,
            state: args.state,
        }),
        Command::Render(args) => session::render_saved(&args.file, args.format, args.output.as_deref(), &args.prefix),
        Command::List(args) if args.names => {
            ebpfx::generate::config_names(cli.config_dir.as_deref()).and_then(|text| session::write_output(None, &text))
        }
        Command::List(_) => {
            session::list(cli.config_dir.as_deref()).and_then(|text| session::write_output(None, &text))
        }
        Command::Check(args) => {
            session::check(&args.names, cli.config_dir.as_deref(), args.attach, args.btf, cli.verbose)
        }
        Command::Generate(args) => ebpfx::generate::run(&args),
    };
    if let Err(err) = result {
        eprintln!("ebpfx: {err:#}");
        std::process::exit(ebpfx::error::exit_code(&err));
    }
}
