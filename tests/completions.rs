//! The committed completion scripts: fresh (what `cargo xtask completions` and
//! `EBPFX_COMPLETE=SHELL ebpfx` print now), and working in real bash, zsh and fish against the binary
//! under test, which answers every TAB itself (clap_complete's dynamic completion).
//!
//! The shells are not installed by the tests. Debian packages: bash, zsh, fish (`make deps`).
//! Without one, its test is skipped with a message; under `CI=true` that is a failure.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// The generator `cargo xtask` runs; each test uses part of it.
#[allow(dead_code)]
#[path = "../examples/xtask/generated.rs"]
mod generated;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> PathBuf {
    repo().join(generated::COMPLETIONS_DIR).join(name)
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ebpfx")).parent().expect("the binary has a directory").to_path_buf()
}

/// PATH with the binary under test first: the scripts run `ebpfx` to get the candidates.
fn path_env() -> String {
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", bin_dir().display())
}

/// A `--config-dir` holding `foo.yaml`.
fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("foo.yaml"), "metrics: {}\n").expect("write foo.yaml");
    dir
}

/// The directory the shells run in: one file `snap.json` (for FILE arguments) and nothing
/// starting with `-`.
fn work_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("snap.json"), "{}\n").expect("write snap.json");
    dir
}

/// Whether the tests for `shell` can run: true if `probe` works; otherwise skips (prints why) or,
/// under CI=true, fails.
fn shell_ready(shell: &str, package: &str, probe: &mut Command) -> bool {
    let ok = probe.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let msg = format!("{shell} completion test needs {shell} (Debian package: {package}); it is not usable here");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: a missing shell is a failure)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Runs `cmd`, killing it after `limit`: a wedged shell must fail the test, not hang it.
fn run_with_timeout(cmd: &mut Command, limit: Duration) -> (String, String) {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the shell");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the shell") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out_reader.join().expect("stdout reader");
    let err = err_reader.join().expect("stderr reader");
    assert!(status.success(), "{cmd:?} failed ({status})\nstdout:\n{out}\nstderr:\n{err}");
    (out, err)
}

fn assert_offers(shell: &str, line: &str, got: &[String], want: &[&str]) {
    for w in want {
        assert!(got.iter().any(|g| g == w), "{shell}: completing {line:?} should offer {w:?}; it offered {got:?}");
    }
}

fn assert_not_offered(shell: &str, line: &str, got: &[String], unwanted: &[&str]) {
    for w in unwanted {
        assert!(!got.iter().any(|g| g == w), "{shell}: completing {line:?} should not offer {w:?}; it offered {got:?}");
    }
}

/// One completion case: the command line up to the cursor, what must be offered, what must not,
/// and whether no candidate may start with `-` (options only once the word starts with `-`).
struct Case {
    line: String,
    want: Vec<&'static str>,
    unwanted: Vec<&'static str>,
    no_options: bool,
}

fn case(line: impl Into<String>, want: &[&'static str], unwanted: &[&'static str]) -> Case {
    let line = line.into();
    let no_options = !line.rsplit(' ').next().unwrap_or("").starts_with('-');
    Case { line, want: want.to_vec(), unwanted: unwanted.to_vec(), no_options }
}

/// The cases every shell must pass, run in [`work_dir`] with `dir` as a `--config-dir`.
fn cases(dir: &Path) -> Vec<Case> {
    let d = dir.display();
    vec![
        case("ebpfx ", &["run", "list", "check", "render"], &["generate"]),
        case("ebpfx run bio", &["biolatency"], &["syscalls"]),
        case("ebpfx run ", &["biolatency", "syscalls"], &["foo"]),
        case("ebpfx run --f", &["--for", "--format"], &[]),
        // Every flag after a config name (zsh offered none).
        case("ebpfx run biolatency --f", &["--for", "--format", "--frequency"], &["biolatency"]),
        case("ebpfx run biolatency --", &["--output", "--save-raw", "--config-dir", "--probe"], &[]),
        case("ebpfx run --format ", &["prom", "hist", "table", "json", "folded", "flamegraph"], &["biolatency"]),
        case("ebpfx run syscalls --format j", &["json"], &["prom"]),
        // Config names from --config-dir, before or after the subcommand, in both spellings.
        case(format!("ebpfx --config-dir {d} run "), &["foo", "biolatency", "syscalls"], &[]),
        case(format!("ebpfx run --config-dir {d} biolatency "), &["foo", "syscalls"], &[]),
        case(format!("ebpfx --config-dir={d} run f"), &["foo"], &[]),
        case("ebpfx check bio", &["biolatency"], &["syscalls"]),
        case(format!("ebpfx --config-dir {d} check "), &["foo", "biolatency"], &[]),
        // --probe: `kernel:` and files, never config names, never an error.
        case("ebpfx run --probe ", &["kernel:", "snap.json"], &["biolatency", "funclatency"]),
        case("ebpfx run funclatency --probe ", &["kernel:", "snap.json"], &["biolatency", "funclatency"]),
        case("ebpfx run funclatency --probe ker", &["kernel:"], &["funclatency"]),
        // After the `:`, the binary's functions.
        case("ebpfx run funclatency --probe libc.so.6:mallo", &["libc.so.6:malloc"], &["funclatency"]),
        case("ebpfx run funclatency --probe libc.so.6:", &["libc.so.6:malloc"], &["biolatency", "funclatency"]),
        case("ebpfx run funclatency --probe kernel:vfs_rea", &["kernel:vfs_read"], &["funclatency"]),
        // `--flag=value` spellings.
        case("ebpfx run biolatency --format=j", &["--format=json"], &["json"]),
        case("ebpfx run biolatency --format=", &["--format=prom", "--format=table"], &["biolatency"]),
        case("ebpfx run biolatency --output=sn", &["--output=snap.json"], &[]),
        // File paths.
        case("ebpfx run biolatency --output ", &["snap.json"], &["biolatency", ".", "./"]),
        case("ebpfx run biolatency --save-raw sn", &["snap.json"], &[]),
        case("ebpfx render ", &["snap.json"], &["biolatency"]),
        case("ebpfx render snap.json --", &["--format", "--output", "--prefix"], &[]),
        case("ebpfx list --", &["--config-dir", "--quiet"], &["--names"]),
        // --by: `none` and label names, after the ones already typed; --unit's values.
        case("ebpfx run biolatency --by ", &["none", "device", "operation"], &["biolatency"]),
        case("ebpfx run biolatency --by dev", &["device"], &["none"]),
        case("ebpfx run biolatency --by device,op", &["device,operation"], &["none", "device,device"]),
        case("ebpfx run runqlat --unit ", &["ns", "us", "ms", "s"], &["runqlat"]),
    ]
}

fn check_cases(shell: &str, complete: impl Fn(&str, &Path) -> Vec<String>) {
    let dir = config_dir();
    let cwd = work_dir();
    for c in cases(dir.path()) {
        let got = complete(&c.line, cwd.path());
        assert_offers(shell, &c.line, &got, &c.want);
        assert_not_offered(shell, &c.line, &got, &c.unwanted);
        if c.no_options {
            assert!(
                !got.iter().any(|g| g.starts_with('-')),
                "{shell}: completing {:?} should offer no options before a `-` is typed; it offered {got:?}",
                c.line
            );
        }
    }
}

#[test]
fn completions_are_fresh() {
    let files = generated::completions().expect("generate completions");
    let problems = generated::differences(&files, &repo()).expect("compare files");
    assert!(
        problems.is_empty(),
        "the committed completions do not match what the binary prints now:\n  {}\nrun `{}` and commit the result",
        problems.join("\n  "),
        generated::REGENERATE_COMMAND
    );
}

/// The committed files are what users get from the installed binary with `EBPFX_COMPLETE=SHELL ebpfx`.
#[test]
fn committed_scripts_are_what_the_binary_prints() {
    for (shell, file) in ebpfx::complete::SCRIPTS {
        let out = Command::new("ebpfx")
            .env("PATH", path_env())
            .env(ebpfx::complete::ENV_VAR, shell)
            .output()
            .expect("run EBPFX_COMPLETE=SHELL ebpfx");
        assert!(out.status.success(), "EBPFX_COMPLETE={shell} ebpfx: {out:?}");
        let committed = std::fs::read(script(file)).expect("read the committed script");
        assert!(
            out.stdout == committed,
            "EBPFX_COMPLETE={shell} ebpfx prints something else than completions/{file}; run `{}`",
            generated::REGENERATE_COMMAND
        );
    }
}

/// bash: the committed registration script is sourced and its completion function called as
/// bash's programmable completion calls it, with COMP_WORDS split the way readline splits them
/// (at `=` and `:` too: `--config-dir=DIR` arrives as three words).
const BASH_HARNESS: &str = r#"
source "$1" || exit 3
line="$2"
split="${line//=/ = }"
read -ra COMP_WORDS <<<"${split//:/ : }"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$line"
COMP_POINT=${#line}
COMP_TYPE=9
COMPREPLY=()
fn=$(complete -p ebpfx | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
[[ -n "$fn" ]] || exit 5
"$fn" ebpfx "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

fn bash_complete(line: &str, cwd: &Path) -> Vec<String> {
    let (out, _) = run_with_timeout(
        Command::new("bash")
            .args(["--norc", "--noprofile", "-c", BASH_HARNESS, "bash"])
            .arg(script("ebpfx.bash"))
            .arg(line)
            .current_dir(cwd)
            .env("PATH", path_env())
            .env_remove("EBPFX_CONFIG_DIR"),
        Duration::from_secs(30),
    );
    // Readline replaces only its own word, the text after the last blank, `=` or `:`: the
    // candidates are shown as the whole words they make.
    let last = line.rsplit(' ').next().unwrap_or("");
    let readline_word = last.rsplit(['=', ':']).next().unwrap_or("");
    let kept = &last[..last.len() - readline_word.len()];
    out.lines().filter(|l| !l.is_empty()).map(|c| format!("{kept}{c}")).collect()
}

#[test]
fn bash_completes_in_a_real_shell() {
    if !shell_ready("bash", "bash", Command::new("bash").args(["--norc", "-c", "complete -F true x"])) {
        return;
    }
    check_cases("bash", bash_complete);
}

/// readline inserts the longest common prefix of the candidates: for `ebpfx render <TAB>` that
/// must never be a lone `-`, also in a directory with no file to offer.
#[test]
fn bash_render_tab_does_not_insert_a_dash() {
    if !shell_ready("bash", "bash", Command::new("bash").args(["--norc", "-c", "complete -F true x"])) {
        return;
    }
    let empty = tempfile::tempdir().expect("temp dir");
    for cwd in [work_dir(), empty] {
        let got = bash_complete("ebpfx render ", cwd.path());
        let common = got.iter().skip(1).fold(got.first().cloned().unwrap_or_default(), |acc, g| {
            acc.chars().zip(g.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect()
        });
        assert!(!common.starts_with('-'), "bash would insert {common:?} for `ebpfx render <TAB>`: {got:?}");
    }
}

fn fish_complete(line: &str, cwd: &Path) -> Vec<String> {
    let home = tempfile::tempdir().expect("temp dir");
    let (out, _) = run_with_timeout(
        Command::new("fish")
            .args(["--no-config", "-c", "source $argv[1]; and complete --do-complete=$argv[2]"])
            .arg(script("ebpfx.fish"))
            .arg(line)
            .current_dir(cwd)
            // fish keeps history and universal variables under these: not in the user's home.
            .env("XDG_CONFIG_HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .env("XDG_CACHE_HOME", home.path())
            .env("PATH", path_env())
            .env_remove("EBPFX_CONFIG_DIR"),
        Duration::from_secs(30),
    );
    // `candidate<TAB>description`
    out.lines().map(|l| l.split('\t').next().unwrap_or(l).to_string()).collect()
}

#[test]
fn fish_completes_in_a_real_shell() {
    if !shell_ready("fish", "fish", Command::new("fish").args(["--no-config", "-c", "true"])) {
        return;
    }
    check_cases("fish", fish_complete);
}

/// zsh completion only runs inside the line editor, so the harness starts an interactive zsh on
/// a pseudo-terminal (zsh/zpty), loads compinit with the script's directory first on $fpath (so
/// `_ebpfx` is autoloaded as users install it, and the first TAB must already complete),
/// wraps `compadd` to append every candidate to a file (one a line), types the line and a TAB,
/// and reads the terminal until a `comppostfuncs` hook prints the end marker. The marker is
/// assembled at run time so the terminal's echo of these definitions never matches it.
const ZSH_HARNESS: &str = r#"
zmodload zsh/zpty || exit 3
local compdir=$1 line=$2 candfile=$3 out
zpty ebpfxcomp zsh -f -i || exit 3
zpty -w ebpfxcomp "PS1='' PROMPT='' RPROMPT=''; fpath=(${(q)compdir} \$fpath)"
zpty -w ebpfxcomp 'autoload -Uz compinit && compinit -u -D'
zpty -w ebpfxcomp "cf_=${(q)candfile}"
zpty -w ebpfxcomp 'm_="<""<"; compadd() { local -a got_; builtin compadd -O got_ "$@"; local c_; for c_ in $got_; do print -r -- "$c_" >>$cf_; done; builtin compadd "$@"; }'
zpty -w ebpfxcomp 'ebpfx_done_() { compstate[insert]=""; compstate[list]=""; print -r -- "${m_}done>>"; }; comppostfuncs=(ebpfx_done_); bindkey "^I" complete-word'
zpty -n -w ebpfxcomp "$line"$'\t'
zpty -r ebpfxcomp out '*<<done>>*' || exit 4
zpty -d ebpfxcomp
print -r -- "$out"
"#;

fn zsh_complete(line: &str, cwd: &Path) -> Vec<String> {
    let compdir = repo().join(generated::COMPLETIONS_DIR);
    let scratch = tempfile::tempdir().expect("temp dir");
    let candfile = scratch.path().join("candidates");
    let (out, _) = run_with_timeout(
        Command::new("zsh")
            .args(["-f", "-c", ZSH_HARNESS, "zsh"])
            .arg(&compdir)
            .arg(line)
            .arg(&candfile)
            .current_dir(cwd)
            .env("PATH", path_env())
            .env_remove("EBPFX_CONFIG_DIR"),
        Duration::from_secs(30),
    );
    // What the terminal showed: a completion function's error (such as the old
    // `_arguments:465: command not found: FUNCTION` on `--probe <TAB>`) would be there.
    for error in ["command not found", "_arguments:", "_describe:", "ebpfx:"] {
        assert!(!out.contains(error), "zsh: completing {line:?} printed an error ({error:?}):\n{out}");
    }
    let listed = std::fs::read_to_string(&candfile).unwrap_or_default();
    let mut got: Vec<String> = listed.lines().map(str::to_string).collect();
    got.sort();
    got.dedup();
    got
}

#[test]
fn zsh_completes_in_a_real_shell() {
    if !shell_ready("zsh", "zsh", Command::new("zsh").args(["-f", "-c", "zmodload zsh/zpty"])) {
        return;
    }
    check_cases("zsh", zsh_complete);
}

/// A real interactive shell in a private tmux server (its own socket, killed on drop), to see
/// what the line editor inserts on TAB, not only the candidates.
struct Terminal {
    socket: String,
}

impl Terminal {
    /// Starts `shell` (argv) in `cwd`, runs `setup` (which must set the prompt to `READY> `) and
    /// waits for the prompt.
    fn start(shell: &[&str], setup: &str, cwd: &Path, home: &Path) -> Terminal {
        // A short socket path of our own (not a name under /tmp/tmux-UID, where a stale socket of an
        // earlier run with the same pid can make new-session fail).
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let socket = format!("/tmp/ebpfx-tmux-{}-{}-{nanos}", std::process::id(), shell[0]);
        let mut last = String::new();
        let mut started = false;
        for _ in 0..3 {
            let mut cmd = Command::new("tmux");
            cmd.args(["-S", &socket, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "50", "-c"])
                .arg(cwd)
                .arg("env")
                .arg("-i")
                .arg(format!("HOME={}", home.display()))
                .arg("TERM=xterm")
                .arg(format!("PATH={}", path_env()))
                .args(shell);
            let out = cmd.output().expect("start tmux");
            if out.status.success() {
                started = true;
                break;
            }
            last = format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr));
            let _ = std::fs::remove_file(&socket);
            std::thread::sleep(Duration::from_millis(300));
        }
        assert!(started, "tmux new-session failed 3 times: {last}");
        let term = Terminal { socket };
        term.keys(&["-l", setup]);
        term.keys(&["Enter"]);
        term.wait_for(|screen| screen.lines().any(|l| l == "READY>" || l == "READY> "), "the prompt");
        term
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-S", &self.socket, "send-keys", "-t", "0"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys {keys:?} failed");
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-S", &self.socket, "capture-pane", "-p", "-t", "0"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls the screen until `done` holds (fails after 30 s: a wedged shell must not hang).
    fn wait_for(&self, done: impl Fn(&str) -> bool, what: &str) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "waiting for {what}; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Types `line`, TAB, then `@` as an end mark; returns the edited line as it then stands.
    fn tab(&self, line: &str) -> String {
        self.keys(&["-l", line]);
        self.keys(&["Tab"]);
        self.keys(&["-l", "@"]);
        let screen =
            self.wait_for(|s| s.lines().any(|l| l.starts_with("READY> ") && l.ends_with('@')), "the line after TAB");
        let edited = screen.lines().rfind(|l| l.starts_with("READY> ") && l.ends_with('@')).unwrap_or_default();
        // Clear the line (and any listing under it) for the next case.
        self.keys(&["C-u"]);
        self.keys(&["C-l"]);
        self.wait_for(|s| !s.contains('@'), "the cleared line");
        edited.trim_start_matches("READY> ").trim_end_matches('@').to_string()
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-S", &self.socket, "kill-server"]).status();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn tmux_ready() -> bool {
    shell_ready("tmux", "tmux", Command::new("tmux").arg("-V"))
}

/// What the line editor does on TAB, per shell: `(typed, line after TAB)`.
fn insertions() -> Vec<(&'static str, &'static str)> {
    vec![
        // `kernel:` takes no space: the function name follows.
        ("ebpfx run funclatency --probe ker", "ebpfx run funclatency --probe kernel:"),
        ("ebpfx run biolatency --forma", "ebpfx run biolatency --format "),
        ("ebpfx run biolatency --format fl", "ebpfx run biolatency --format flamegraph "),
        ("ebpfx render ", "ebpfx render snap.json "),
        ("ebpfx run biosi", "ebpfx run biosize "),
        ("ebpfx run funclatency --probe libc.so.6:malloc_tr", "ebpfx run funclatency --probe libc.so.6:malloc_trim "),
        ("ebpfx run biolatency --format=j", "ebpfx run biolatency --format=json "),
        ("ebpfx run biolatency --save-raw=sn", "ebpfx run biolatency --save-raw=snap.json "),
    ]
}

#[test]
fn bash_line_editor_inserts_what_is_expected() {
    if !tmux_ready() || !shell_ready("bash", "bash", Command::new("bash").args(["--norc", "-c", "true"])) {
        return;
    }
    let home = tempfile::tempdir().expect("temp dir");
    let setup = format!("PS1='READY> '; source {}", script("ebpfx.bash").display());
    for (cwd, cases) in
        [(work_dir(), insertions()), (tempfile::tempdir().expect("temp dir"), vec![("ebpfx render ", "ebpfx render ")])]
    {
        let term = Terminal::start(&["bash", "--norc", "--noprofile", "-i"], &setup, cwd.path(), home.path());
        for (typed, want) in cases {
            assert_eq!(term.tab(typed), want, "bash: TAB after {typed:?} in {}", cwd.path().display());
        }
    }
}

#[test]
fn zsh_line_editor_inserts_what_is_expected() {
    if !tmux_ready() || !shell_ready("zsh", "zsh", Command::new("zsh").args(["-f", "-c", "true"])) {
        return;
    }
    let home = tempfile::tempdir().expect("temp dir");
    let compdir = repo().join(generated::COMPLETIONS_DIR);
    let setup = format!("PS1='READY> '; fpath=({} $fpath); autoload -Uz compinit && compinit -u -D", compdir.display());
    let cwd = work_dir();
    let term = Terminal::start(&["zsh", "-f", "-i"], &setup, cwd.path(), home.path());
    for (typed, want) in insertions() {
        assert_eq!(term.tab(typed), want, "zsh: TAB after {typed:?}");
    }
}
