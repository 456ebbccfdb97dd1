//! The `ebpfx` binary: parse arguments, dispatch to `commands::*`, map errors to exit codes
//! (2 usage/config, 1 runtime, 0 for a closed stdout; 130 comes from the signal handler).
use clap::Parser;

use ebpfx::cli::{Cli, Command};
use ebpfx::commands::{self, Globals};

fn main() {
    // First of all, so that an early SIGTERM (GNU timeout) cannot kill a run without output.
    if let Err(err) = ebpfx::window::install_signal_handler() {
        ebpfx::say!("ebpfx: {err:#}");
        std::process::exit(1);
    }
    // A shell asking for completions (EBPFX_COMPLETE=bash ...) is answered here and exits.
    ebpfx::complete::handle_request(<Cli as clap::CommandFactory>::command);
    let cli = Cli::try_parse().unwrap_or_else(|err| {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        ebpfx::grammar::plain_unknown_argument(err, &mut cmd).exit()
    });
    ebpfx::loader::map_memory::set_limit(cli.max_map_memory);
    if !matches!(cli.command, Command::Run(_) | Command::Serve(_)) {
        // No window to end: an interrupt quits at once.
        ebpfx::window::quit_on_interrupt();
    }
    let globals = Globals { config_dir: cli.config_dir.as_deref(), verbose: cli.verbose, quiet: cli.quiet };
    let result = match &cli.command {
        Command::Run(args) => commands::run::run(args, &globals),
        Command::Serve(args) => commands::serve::run(args, &globals),
        Command::Render(args) => commands::render::run(args, &globals),
        Command::List(args) => commands::list::run(args, &globals),
        Command::Check(args) => commands::check::run(args, &globals),
    };
    if let Err(err) = result {
        // The reader of stdout went away (`| head`): a quiet, normal end.
        if ebpfx::output::is_closed(&err) {
            std::process::exit(0);
        }
        ebpfx::say!("ebpfx: {err:#}");
        std::process::exit(ebpfx::error::exit_code(&err));
    }
}
