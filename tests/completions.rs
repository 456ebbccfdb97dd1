//! The committed completion scripts: fresh (equal to what `ebpfx generate` writes now), and
//! working in real bash, zsh and fish against the binary under test.
//!
//! The shells are not installed by the tests. Debian packages: bash-completion, zsh, fish.
//! Without one, its test is skipped with a message; under `CI=true` that is a failure.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ebpfx::generate::{self, What};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> PathBuf {
    repo().join(generate::COMPLETIONS_DIR).join(name)
}

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_ebpfx")).parent().expect("the binary has a directory").to_path_buf()
}

/// PATH with the binary under test first, so the scripts' `ebpfx list --names` runs it.
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

/// The cases every shell must pass: (command line up to the cursor, must offer, must not offer).
fn cases(dir: &Path) -> Vec<(String, Vec<&'static str>, Vec<&'static str>)> {
    let d = dir.display();
    vec![
        ("ebpfx run bio".into(), vec!["biolatency"], vec!["syscalls"]),
        ("ebpfx run --f".into(), vec!["--for", "--format"], vec![]),
        (format!("ebpfx --config-dir {d} run "), vec!["foo", "biolatency", "syscalls"], vec![]),
        (format!("ebpfx run --config-dir {d} biolatency "), vec!["foo", "syscalls"], vec![]),
        ("ebpfx run --format ".into(), vec!["prom", "table"], vec!["biolatency"]),
        ("ebpfx check bio".into(), vec!["biolatency"], vec!["syscalls"]),
        (format!("ebpfx --config-dir {d} check "), vec!["foo", "biolatency"], vec![]),
        ("ebpfx run ".into(), vec!["biolatency"], vec!["foo"]),
        (format!("ebpfx --config-dir={d} run f"), vec!["foo"], vec![]),
        // Maintainer plumbing stays out of the completions.
        ("ebpfx ".into(), vec!["run", "list", "check", "render"], vec!["generate"]),
        ("ebpfx list --".into(), vec!["--config-dir"], vec!["--names"]),
    ]
}

#[test]
fn completions_are_fresh() {
    let tmp = tempfile::tempdir().expect("temp dir");
    generate::write(What::Completions, tmp.path()).expect("generate completions");
    let problems = generate::differences(What::Completions, tmp.path(), &repo()).expect("compare files");
    assert!(
        problems.is_empty(),
        "the committed completions do not match src/cli.rs:\n  {}\nrun `{}` and commit the result",
        problems.join("\n  "),
        generate::REGENERATE_COMMAND
    );
}

const BASH_HARNESS: &str = r#"
source /usr/share/bash-completion/bash_completion || exit 3
source "$1" || exit 3
line="$2"
# bash splits words at COMP_WORDBREAKS too: `--config-dir=DIR` arrives as three words.
read -ra COMP_WORDS <<<"${line//=/ = }"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE="$line"
COMP_POINT=${#line}
COMPREPLY=()
_ebpfx ebpfx "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;

fn bash_complete(line: &str) -> Vec<String> {
    let (out, _) = run_with_timeout(
        Command::new("bash")
            .args(["--norc", "--noprofile", "-c", BASH_HARNESS, "bash"])
            .arg(script("ebpfx.bash"))
            .arg(line)
            .env("PATH", path_env())
            .env_remove("EBPFX_CONFIG_DIR"),
        Duration::from_secs(30),
    );
    out.lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_in_a_real_shell() {
    if !shell_ready(
        "bash",
        "bash-completion",
        Command::new("bash").args(["--norc", "-c", "source /usr/share/bash-completion/bash_completion"]),
    ) {
        return;
    }
    let dir = config_dir();
    for (line, want, unwanted) in cases(dir.path()) {
        let got = bash_complete(&line);
        assert_offers("bash", &line, &got, &want);
        assert_not_offered("bash", &line, &got, &unwanted);
    }
}

fn fish_complete(line: &str) -> Vec<String> {
    let home = tempfile::tempdir().expect("temp dir");
    let (out, _) = run_with_timeout(
        Command::new("fish")
            .args(["--no-config", "-c", "source $argv[1]; and complete --do-complete=$argv[2]"])
            .arg(script("ebpfx.fish"))
            .arg(line)
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
    let dir = config_dir();
    for (line, want, unwanted) in cases(dir.path()) {
        let got = fish_complete(&line);
        assert_offers("fish", &line, &got, &want);
        assert_not_offered("fish", &line, &got, &unwanted);
    }
}

/// zsh completion only runs inside the line editor, so the harness starts an interactive zsh on
/// a pseudo-terminal (zsh/zpty), loads compinit with the script's directory first on $fpath,
/// wraps `compadd` to print every candidate between markers, types the line and a TAB, and reads
/// until a `comppostfuncs` hook prints the end marker. The markers are assembled at run time so
/// the terminal's echo of these definitions never matches them.
const ZSH_HARNESS: &str = r#"
zmodload zsh/zpty || exit 3
local compdir=$1 line=$2 out
zpty ebpfxcomp zsh -f -i || exit 3
zpty -w ebpfxcomp "PS1='' PROMPT='' RPROMPT=''; fpath=(${(q)compdir} \$fpath)"
zpty -w ebpfxcomp 'autoload -Uz compinit && compinit -u -D'
zpty -w ebpfxcomp 'm_="<""<"; compadd() { local -a got_; builtin compadd -O got_ "$@"; local c_; for c_ in $got_; do print -r -- "${m_}cand>>$c_${m_}end>>"; done; builtin compadd "$@"; }'
zpty -w ebpfxcomp 'ebpfx_done_() { compstate[insert]=""; compstate[list]=""; print -r -- "${m_}done>>"; }; comppostfuncs=(ebpfx_done_); bindkey "^I" complete-word'
zpty -n -w ebpfxcomp "$line"$'\t'
zpty -r ebpfxcomp out '*<<done>>*' || exit 4
zpty -d ebpfxcomp
print -r -- "$out"
"#;

fn zsh_complete(line: &str) -> Vec<String> {
    let compdir = repo().join(generate::COMPLETIONS_DIR);
    let (out, _) = run_with_timeout(
        Command::new("zsh")
            .args(["-f", "-c", ZSH_HARNESS, "zsh"])
            .arg(&compdir)
            .arg(line)
            .env("PATH", path_env())
            .env_remove("EBPFX_CONFIG_DIR"),
        Duration::from_secs(30),
    );
    let mut got = Vec::new();
    for piece in out.split("<<cand>>").skip(1) {
        if let Some((cand, _)) = piece.split_once("<<end>>") {
            if !got.iter().any(|g| g == cand) {
                got.push(cand.to_string());
            }
        }
    }
    got
}

#[test]
fn zsh_completes_in_a_real_shell() {
    if !shell_ready("zsh", "zsh", Command::new("zsh").args(["-f", "-c", "zmodload zsh/zpty"])) {
        return;
    }
    let dir = config_dir();
    for (line, want, unwanted) in cases(dir.path()) {
        let got = zsh_complete(&line);
        assert_offers("zsh", &line, &got, &want);
        assert_not_offered("zsh", &line, &got, &unwanted);
    }
}

#[test]
fn list_names_prints_one_config_per_line() {
    let dir = config_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_ebpfx"))
        .args(["list", "--names", "--config-dir"])
        .arg(dir.path())
        .env_remove("EBPFX_CONFIG_DIR")
        .output()
        .expect("run ebpfx list --names");
    assert!(out.status.success(), "{out:?}");
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    for want in ["biolatency", "syscalls", "foo"] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    assert!(names.iter().all(|n| !n.contains(char::is_whitespace)));

    let missing = Command::new(env!("CARGO_BIN_EXE_ebpfx"))
        .args(["list", "--names", "--config-dir", "/nonexistent/ebpfx-configs"])
        .output()
        .expect("run ebpfx list --names");
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(missing.stdout.is_empty(), "{missing:?}");
}
