//! The `ebpfx` binary: parse arguments, call the library, map errors to exit codes
//! (2 usage/config, 1 runtime, 130 double interrupt).
use clap::Parser;

use ebpfx::cli::{Cli, Command};
use ebpfx::session::{self, RunRequest};

fn main() {
    // First of all, so that an early SIGTERM (GNU timeout) cannot kill the run without output.
    if let Err(err) = ebpfx::window::install_signal_handler() {
        eprintln!("ebpfx: {err:#}");
        std::process::exit(1);
    }
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        // No window to end: an interrupt quits at once.
        ebpfx::window::quit_on_interrupt();
    }
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
            watch: args.watch,
            frequency: args.frequency,
            probe: args.probe,
            port: args.port,
            addr: args.addr,
            state: args.state,
        }),
        Command::Render(args) => {
            session::render_saved(&args.file, args.format, args.output.as_deref(), &args.prefix, cli.quiet)
        }
        Command::List(args) if args.names => {
            ebpfx::generate::config_names(cli.config_dir.as_deref()).and_then(|text| session::write_output(&text))
        }
        Command::List(_) => session::list(cli.config_dir.as_deref()).and_then(|text| session::write_output(&text)),
        Command::Check(args) => {
            session::check(&args.names, cli.config_dir.as_deref(), args.attach, args.btf, cli.verbose)
        }
        Command::Generate(args) => ebpfx::generate::run(&args),
    };
    if let Err(err) = result {
        // The reader of stdout went away (`| head`): a quiet, normal end.
        if ebpfx::output::is_closed(&err) {
            std::process::exit(0);
        }
        eprintln!("ebpfx: {err:#}");
        std::process::exit(ebpfx::error::exit_code(&err));
    }
}
