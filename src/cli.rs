//! The command line, defined once with clap: parsing, help, completions (`complete`) and man pages
//! (`cargo xtask man`) all come from these types.
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueHint};
use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter};

use crate::render::{Format, TimeUnit};

/// bcc-style eBPF tools as one-shot commands.
///
/// ebpfx loads a config (ebpf_exporter's YAML format beside a compiled CO-RE BPF object),
/// attaches its programs, collects for a window, reads the BPF maps and prints the result as
/// Prometheus text, terminal histograms or tables. Built-in tools need no compiler at run time.
#[derive(Debug, Parser)]
#[command(name = "ebpfx", version, about, long_about, propagate_version = true)]
#[command(
    after_help = "Examples:\n  ebpfx list\n  ebpfx run biolatency --for 30s\n  ebpfx run syscalls --for 5s --format table\n  ebpfx run syscalls -i 1s -c 10 -T\n  ebpfx run syscalls --watch\n  ebpfx run profile --for 30s --format flamegraph > profile.svg\n  ebpfx run funclatency --probe /usr/bin/python3:PyEval_EvalCode --for 10s\n  ebpfx run biolatency --for 1m --output /var/lib/prometheus/node-exporter/biolatency.prom\n  ebpfx --config-dir ./configs check mytool\n  ebpfx --config-dir ./configs run mytool"
)]
pub struct Cli {
    /// Also use configs from DIR (NAME.yaml beside NAME.bpf.o, as ebpf_exporter lays them out);
    /// a config there wins over a built-in of the same name.
    #[arg(long, global = true, value_name = "DIR", env = "EBPFX_CONFIG_DIR", value_hint = ValueHint::DirPath)]
    pub config_dir: Option<PathBuf>,

    /// Show load details and libbpf's warnings on stderr; -vv adds libbpf's debug log.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Print nothing but results and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Refuse (exit 2) an object with a map that would take more kernel memory than SIZE
    /// (entries x key and value sizes, x CPUs for per-CPU maps): 1G by default. `check -v`
    /// shows every map's figure. SIZE in bytes or with K, M, G, T (powers of 1024).
    #[arg(long, global = true, value_name = "SIZE", value_parser = crate::loader::map_memory::parse_size)]
    pub max_map_memory: Option<u64>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Attach one or more configs, collect for a window, print the results.
    Run(Box<RunArgs>),
    /// List the configs that can be run: name, where it comes from, what it measures.
    List(ListArgs),
    /// Check configs against their BPF objects without attaching: maps, key and value sizes,
    /// label layout against the key struct. Exit 0 when clean, 2 with every problem listed.
    Check(CheckArgs),
    /// Attach once and keep collecting: answer Prometheus scrapes over HTTP(S), or rewrite a
    /// textfile every interval (--output), with counters cumulative since the start.
    Serve(Box<ServeArgs>),
    /// Render a snapshot saved with `run --save-raw` in any format (no root or BPF needed).
    Render(RenderArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ListArgs {}

#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    /// Config names (see `ebpfx list`).
    #[arg(required = true, value_name = "NAME", add = ArgValueCandidates::new(crate::complete::config_names))]
    pub names: Vec<String>,

    /// Also load, attach and detach every program (needs root), like ebpf_exporter's config check.
    #[arg(long)]
    pub attach: bool,

    /// BTF file for CO-RE on kernels without /sys/kernel/btf/vmlinux.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub btf: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Config names (see `ebpfx list`), then optionally bcc's `[interval] [count]`: a block
    /// every INTERVAL seconds, COUNT of them (`ebpfx run biolatency 1 10`).
    #[arg(required = true, value_name = "NAME", add = ArgValueCandidates::new(crate::complete::config_names))]
    pub names: Vec<String>,

    /// How long to collect: 500ms, 30s, 2m, 1h30m (a bare number is seconds). Without it, collect until Ctrl-C.
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Print a block every INTERVAL with the values of that interval only (like bcc's
    /// `[interval]`; a bare number is seconds); ends at --count blocks, at --for, or on Ctrl-C.
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,

    /// Stop after N interval blocks (needs --interval, or an interval after the config names).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Head each block with the time (HH:MM:SS).
    #[arg(short = 'T', long)]
    pub timestamp: bool,

    /// A live table redrawn in place every interval (1s unless --interval), top-like: sorted,
    /// cut to the terminal height, with totals. Ctrl-C quits and restores the terminal.
    #[arg(short, long, conflicts_with_all = ["output", "push", "format", "save_raw"])]
    pub watch: bool,

    #[command(flatten)]
    pub out: OutputArgs,

    #[command(flatten)]
    pub series: SeriesArgs,

    /// Also store the raw map contents and the configs in FILE (JSON), to render later with
    /// `ebpfx render FILE` in any format, without root.
    #[arg(long, value_name = "FILE", conflicts_with = "interval", value_hint = ValueHint::FilePath)]
    pub save_raw: Option<PathBuf>,

    /// Push the Prometheus text to a Pushgateway at URL (its base URL; PUT, one group per
    /// config: job + config + instance (the host name) + --push-label labels). Nothing is
    /// printed unless --format or --output asks for it.
    #[arg(long, value_name = "URL")]
    pub push: Option<String>,

    /// Job name of the pushed group (--push) and `job` label of remote-written series.
    #[arg(long, value_name = "NAME", default_value = "ebpfx")]
    pub job: String,

    #[command(flatten)]
    pub fleet: FleetArgs,

    /// Event tools: size of each ring buffer, a power of two of at least a page, in bytes or
    /// with K/M/G (4096, 64K, 8M); overrides the config's ring_size. A perf buffer splits it
    /// over the CPUs (a power of two of pages each, at least one).
    #[arg(long, value_name = "SIZE")]
    pub ring_size: Option<String>,

    /// Event tools: how records reach ebpfx. auto: a BPF ring buffer, or a perf buffer (one per
    /// CPU) on a kernel without ring buffers (before 5.8); ring or perf: that one.
    #[arg(long, value_enum, value_name = "KIND", default_value_t = crate::config::EventBuffer::Auto)]
    pub event_buffer: crate::config::EventBuffer,

    /// exitsnoop: one line per thread that ends, not only per process.
    #[arg(long)]
    pub per_thread: bool,

    #[command(flatten)]
    pub attach: AttachArgs,

    /// Start COMMAND (held until the programs are attached, so nothing of it is missed), trace
    /// it and its descendants only (forks followed in the kernel), end the window when it exits
    /// (or at --for / Ctrl-C), then print. ebpfx's exit status is its own (0 when the results
    /// were printed); the command's status is reported on stderr.
    #[arg(last = true, value_name = "COMMAND", value_hint = ValueHint::CommandWithArguments)]
    pub command: Vec<std::ffi::OsString>,
}

/// How `run` and `render` write their results: format, file, time unit, row limit.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Output format. Default: prom when stdout is not a terminal or with --output; otherwise
    /// histograms as hist and counters as a table.
    #[arg(short, long, value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Write the results to FILE atomically (temp file in the same directory, then rename),
    /// e.g. into node_exporter's textfile directory.
    #[arg(short, long, value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub output: Option<PathBuf>,

    /// Unit of time histograms in hist and table output (bcc prints usecs; -m is `--unit ms`).
    /// Prometheus and JSON output keep seconds.
    #[arg(long, value_enum, value_name = "UNIT", default_value_t = TimeUnit::Us)]
    pub unit: TimeUnit,

    /// Tables (and `run --watch`) show the N largest rows of each metric, hist the N label sets
    /// with the most observations; both say how many were left out.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub top: Option<u64>,
}

/// The series of `run`, `render` and `serve`: metric name prefix and output labels.
#[derive(Debug, Args, Clone)]
pub struct SeriesArgs {
    /// Prefix of every Prometheus metric name (ebpf_exporter uses ebpf_exporter_).
    #[arg(long, value_name = "PREFIX", default_value = "ebpfx_", value_parser = parse_prefix)]
    pub prefix: String,

    /// Output labels are exactly these: the config's other labels are summed away (counters)
    /// or merged bucket-wise (histograms); `none` merges everything into one series.
    /// bcc's `biolatency -D` is `--by device`. `pid`, `comm`, `cgroup`, `cpu` are added in the
    /// kernel by configs that declare them (`runqlat --by pid,comm` is bcc's `runqlat -P`).
    #[arg(long, value_name = "LABEL[,LABEL...]", value_delimiter = ',', add = ArgValueCompleter::new(crate::complete::by_values))]
    pub by: Option<Vec<String>>,
}

/// How `run` and `serve` load and attach the configs, and what they point them at.
#[derive(Debug, Args, Clone)]
pub struct AttachArgs {
    /// Fail when any program cannot load or attach, instead of leaving it out with a warning.
    #[arg(long)]
    pub strict: bool,

    /// BTF file for CO-RE on kernels without /sys/kernel/btf/vmlinux.
    #[arg(long, value_name = "PATH", value_hint = ValueHint::FilePath)]
    pub btf: Option<PathBuf>,

    /// Sample HZ times a second per CPU: replaces the frequency of perf_event programs
    /// (`profile` samples at 99 Hz by default).
    #[arg(long, value_name = "HZ", value_parser = clap::value_parser!(u64).range(1..))]
    pub frequency: Option<u64>,

    /// Functions for funclatency/funccount: BINARY:FUNCTION, FUNCTION may be a glob
    /// (`libc.so.6:'malloc*'`); BINARY is a path, a name in $PATH, a library name, or `kernel`
    /// for kernel functions (kprobes). Repeatable: kernel and user targets mix in one run.
    #[arg(long, value_name = "BINARY:FUNCTION", add = ArgValueCompleter::new(crate::complete::probe_values))]
    pub probe: Vec<String>,

    /// Only flows with this local or remote port (tcpflows).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,

    /// Only flows with a local or remote address in PREFIX, e.g. 10.0.0.0/8 (tcpflows).
    #[arg(long, value_name = "PREFIX")]
    pub addr: Option<String>,

    /// Only flows in this TCP state at the event, e.g. ESTABLISHED (tcpflows).
    #[arg(long, value_name = "NAME")]
    pub state: Option<String>,

    #[command(flatten)]
    pub targets: TargetArgs,
}

/// Task targets, filtered in the kernel by configs that declare them (`run` and `serve`).
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// Only these processes (thread-group ids), filtered in the kernel: repeatable or a comma
    /// list. Configs that select tasks say so (`ebpfx list`); others refuse the flag.
    #[arg(short, long = "pid", value_name = "PID", action = clap::ArgAction::Append)]
    pub pid: Vec<String>,

    /// Only these threads (thread ids), filtered in the kernel: repeatable or a comma list.
    #[arg(long, value_name = "TID", action = clap::ArgAction::Append)]
    pub tid: Vec<String>,

    /// Only tasks with exactly this command name (at most 15 bytes, as the kernel keeps it);
    /// repeatable.
    #[arg(long, value_name = "NAME", action = clap::ArgAction::Append)]
    pub comm: Vec<String>,

    /// Only tasks in this cgroup v2 directory or below it: a path, or one relative to
    /// /sys/fs/cgroup (`system.slice/cron.service`).
    #[arg(long, value_name = "PATH", value_hint = ValueHint::DirPath)]
    pub cgroup: Option<PathBuf>,
}

/// Sending a run's results to the systems that gather many hosts: Pushgateway grouping labels
/// and Prometheus remote write.
#[derive(Debug, Args, Clone, Default)]
pub struct FleetArgs {
    /// Send the series to a Prometheus remote-write receiver (Prometheus with
    /// --web.enable-remote-write-receiver, Thanos Receive, Cortex, Mimir, VictoriaMetrics),
    /// e.g. http://prometheus:9090/api/v1/write. `run`: the window's series, timestamped at its
    /// end, and nothing printed unless --format or --output asks for it; `serve`: the totals
    /// since the start, every --interval.
    #[arg(long, value_name = "URL")]
    pub remote_write: Option<String>,

    /// A label added to every pushed or remote-written series (Pushgateway: a grouping-key
    /// label), repeatable. `instance` defaults to the host name; `job` comes from --job.
    #[arg(long = "push-label", value_name = "NAME=VALUE", value_parser = crate::output::remote_write::parse_push_label)]
    pub push_labels: Vec<(String, String)>,

    /// An HTTP header of every remote-write request (e.g. X-Scope-OrgID=tenant), repeatable.
    #[arg(long = "remote-write-header", value_name = "NAME=VALUE", value_parser = crate::output::remote_write::parse_header, requires = "remote_write")]
    pub remote_write_headers: Vec<(String, String)>,

    /// Authenticate remote writes with the bearer token in FILE.
    #[arg(long, value_name = "FILE", requires = "remote_write", value_hint = ValueHint::FilePath)]
    pub remote_write_bearer_token_file: Option<PathBuf>,

    /// Authenticate remote writes with basic auth as NAME (password from
    /// --remote-write-password-file).
    #[arg(long, value_name = "NAME", requires = "remote_write")]
    pub remote_write_username: Option<String>,

    /// The basic auth password of --remote-write-username, read from FILE.
    #[arg(long, value_name = "FILE", requires = "remote_write", value_hint = ValueHint::FilePath)]
    pub remote_write_password_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
#[command(
    after_help = "Examples:\n  ebpfx serve biolatency syscalls\n  ebpfx serve biolatency --web.listen-address 127.0.0.1:9435 --web.config.file web.yml\n  ebpfx serve biolatency --output /var/lib/prometheus/node-exporter/ebpfx.prom --interval 15s"
)]
pub struct ServeArgs {
    /// Config names (see `ebpfx list`).
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,

    /// Address to listen on for scrapes: HOST:PORT, or :PORT for every address.
    #[arg(long = "web.listen-address", value_name = "ADDRESS", default_value = ":9435")]
    pub listen_address: String,

    /// Path under which the metrics are served.
    #[arg(long = "web.telemetry-path", value_name = "PATH", default_value = "/metrics")]
    pub telemetry_path: String,

    /// Prometheus exporter-toolkit web config (YAML): tls_server_config (cert_file, key_file,
    /// client_ca_file, client_auth_type, min_version, max_version) and basic_auth_users
    /// (bcrypt hashes), as node_exporter reads it.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Capabilities kept once the programs are attached: none, all, or a comma-separated list
    /// (cap_syslog keeps kernel symbol names readable for ksym/kstack labels; cap_sys_ptrace
    /// lets ustack labels read other processes' maps; cap_dac_override lets --output write
    /// where root does not own the directory).
    #[arg(long = "capabilities.keep", value_name = "CAPS", default_value = "none")]
    pub capabilities_keep: String,

    /// No listener: rewrite FILE atomically every --interval instead (for node_exporter's
    /// textfile collector), with the same cumulative counters.
    #[arg(short, long, value_name = "FILE", conflicts_with_all = ["web_config_file", "listen_address", "telemetry_path"])]
    pub output: Option<PathBuf>,

    /// How often --output is rewritten, and how often --remote-write and --push send the
    /// totals since the start (15s unless given).
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,

    /// Also PUT the totals since the start to a Pushgateway at URL every --interval (as `run
    /// --push`: one group per config, job + config + instance + --push-label labels).
    #[arg(long, value_name = "URL")]
    pub push: Option<String>,

    /// Job name of the pushed group (--push) and `job` label of remote-written series.
    #[arg(long, value_name = "NAME", default_value = "ebpfx")]
    pub job: String,

    // --remote-write URL and its options: every --interval, the totals since the start (the
    // same cumulative counters as the scrapes), timestamped when read.
    #[command(flatten)]
    pub fleet: FleetArgs,

    #[command(flatten)]
    pub series: SeriesArgs,

    #[command(flatten)]
    pub attach: AttachArgs,

    /// `-- COMMAND` is `run`'s: taken here only to refuse it with a message (serve has no end).
    #[arg(last = true, hide = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args, Clone)]
pub struct RenderArgs {
    /// A file written by `ebpfx run --save-raw FILE`.
    #[arg(value_name = "FILE", value_hint = ValueHint::FilePath)]
    pub file: PathBuf,

    #[command(flatten)]
    pub out: OutputArgs,

    #[command(flatten)]
    pub series: SeriesArgs,

    /// Saved event runs: a TIME column first in tables, as `run -T` prints it.
    #[arg(short = 'T', long)]
    pub timestamp: bool,
}

/// The longest `--for` or `--interval` (defined in `grammar`, which must not import `cli`).
pub use crate::grammar::MAX_DURATION;

/// humantime durations: `500ms`, `30s`, `2m`, `1h30m`; a bare number is seconds (`5`, `0.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if crate::grammar::is_bare_number(s) {
        return crate::grammar::seconds(s);
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{e} (expected a duration such as 500ms, 30s, 2m or 1h30m)"))?;
    if d.is_zero() {
        return Err("the window must be longer than zero (e.g. 500ms, 30s)".to_string());
    }
    Ok(d)
}

fn parse_prefix(s: &str) -> Result<String, String> {
    if s.is_empty() || crate::config::valid_metric_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not a valid Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_dir_before_or_after_subcommand() {
        let a = Cli::try_parse_from(["ebpfx", "--config-dir", "/x", "run", "a"]).expect("before");
        let b = Cli::try_parse_from(["ebpfx", "run", "a", "--config-dir", "/x"]).expect("after");
        assert_eq!(a.config_dir, b.config_dir);
    }

    /// The flattened argument groups parse the same flags the same way in every subcommand
    /// that takes them.
    #[test]
    fn shared_groups_parse_alike() {
        let parse = |argv: &[&str]| Cli::try_parse_from(argv).map(|c| c.command).expect("parses");
        let series = ["--prefix", "x_", "--by", "comm,pid"];
        let output = ["-f", "json", "-o", "/tmp/x", "--unit", "ms", "--top", "3"];
        let attach = ["--strict", "--btf", "/b", "--frequency", "7", "--probe", "kernel:f", "--port", "80"];
        let run: Vec<&str> =
            ["ebpfx", "run", "a"].iter().chain(&series).chain(&output).chain(&attach).copied().collect();
        let render: Vec<&str> = ["ebpfx", "render", "f"].iter().chain(&series).chain(&output).copied().collect();
        let serve: Vec<&str> = ["ebpfx", "serve", "a"].iter().chain(&series).chain(&attach).copied().collect();
        let (Command::Run(run), Command::Render(render), Command::Serve(serve)) =
            (parse(&run), parse(&render), parse(&serve))
        else {
            panic!("wrong subcommands");
        };
        for s in [&run.series, &render.series, &serve.series] {
            assert_eq!(s.prefix, "x_");
            assert_eq!(s.by, Some(vec!["comm".to_string(), "pid".to_string()]));
        }
        for o in [&run.out, &render.out] {
            assert_eq!(o.format, Some(Format::Json));
            assert_eq!(o.output, Some(PathBuf::from("/tmp/x")));
            assert_eq!(o.unit, TimeUnit::Ms);
            assert_eq!(o.top, Some(3));
        }
        for a in [&run.attach, &serve.attach] {
            assert!(a.strict);
            assert_eq!(a.btf, Some(PathBuf::from("/b")));
            assert_eq!(a.frequency, Some(7));
            assert_eq!(a.probe, ["kernel:f"]);
            assert_eq!(a.port, Some(80));
        }
        // What a subcommand does not take stays refused.
        assert!(Cli::try_parse_from(["ebpfx", "render", "f", "--strict"]).is_err());
        assert!(Cli::try_parse_from(["ebpfx", "serve", "a", "--unit", "ms"]).is_err());
        assert!(Cli::try_parse_from(["ebpfx", "run", "a", "--watch", "--format", "json"]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("0").is_err());
    }
}
