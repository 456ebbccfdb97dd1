//! Shell completion, answered by the binary itself from the clap definition in `cli.rs`.
//!
//! clap_complete's dynamic engine does the work: the shell's registration script (what
//! `EBPFX_COMPLETE=bash ebpfx` prints, committed under `completions/`) calls
//! `EBPFX_COMPLETE=bash ebpfx -- WORDS...` at each TAB, and the engine walks the same `clap::Command`
//! that parses arguments. This module adds what the engine cannot know: config names (built-in
//! and from the `--config-dir` on the line being completed), `--probe` values (binaries, then
//! their functions), and one rule the shells share: options are offered only once the word
//! starts with `-`, so `ebpfx render <TAB>` completes files and `ebpfx run <TAB>` config names,
//! not a `-` common to every flag.
//!
//! fish uses clap_complete's registration script and wire format (the version is pinned with `=`
//! in Cargo.toml because the `unstable-dynamic` API may change). bash and zsh get our own short
//! scripts ([`BASH_REGISTRATION`], [`ZSH_REGISTRATION`]): clap's cannot complete after `=` or
//! `:` in bash (`--format=j`, `--probe BINARY:`, where it offered config names), adds a space
//! after `kernel:` in zsh and, autoloaded from zsh's `$fpath`, completes nothing on the first TAB.
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap_complete::engine::{CompletionCandidate, PathCompleter, ValueCompleter};
use clap_complete::env::{EnvCompleter, Shells};
use clap_complete::CompleteEnv;

/// The environment variable that turns a run of the binary into a completion request.
pub const ENV_VAR: &str = "EBPFX_COMPLETE";

/// The shells whose registration scripts are committed, by the name `EBPFX_COMPLETE=` takes, with the
/// file each is installed as (see the README).
pub const SCRIPTS: [(&str, &str); 3] = [("bash", "ebpfx.bash"), ("zsh", "_ebpfx"), ("fish", "ebpfx.fish")];

/// When the environment asks for completion (`EBPFX_COMPLETE=SHELL`), print the registration script or
/// the candidates for the given words, and exit; otherwise return and let `main` go on.
pub fn handle_request(command: fn() -> clap::Command) {
    env(command).complete();
}

/// The registration script for `shell` as the installed `ebpfx` on $PATH would print it.
pub fn registration(command: fn() -> clap::Command, shell: &str) -> anyhow::Result<Vec<u8>> {
    let adapter =
        SHELLS.completer(shell).ok_or_else(|| anyhow::anyhow!("no completion support for shell {shell:?}"))?;
    let mut buf = Vec::new();
    let cmd = command();
    let name = cmd.get_name().to_string();
    adapter.write_registration(ENV_VAR, &name, &name, &name, &mut buf)?;
    Ok(buf)
}

fn env(command: fn() -> clap::Command) -> CompleteEnv<'static, fn() -> clap::Command> {
    CompleteEnv::with_factory(command).var(ENV_VAR).shells(SHELLS)
}

const SHELLS: Shells<'static> = Shells(&[&Adapter(Shell::Bash), &Adapter(Shell::Zsh), &Adapter(Shell::Fish)]);

/// `--config-dir` as given on the line being completed (set once per completion request).
static CONFIG_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Candidates for a config-name argument: every config the catalog knows, including those in
/// the `--config-dir` of the line being completed (before or after the subcommand) or
/// `$EBPFX_CONFIG_DIR`. An unreadable directory gives the built-ins alone: completion never
/// prints errors into the user's line.
pub fn config_names() -> Vec<CompletionCandidate> {
    let from_line = CONFIG_DIR.get().cloned().flatten();
    let dir = from_line.or_else(|| std::env::var_os("EBPFX_CONFIG_DIR").filter(|d| !d.is_empty()).map(PathBuf::from));
    let catalog = match crate::catalog::Catalog::new(dir.as_deref()) {
        Ok(catalog) => catalog,
        Err(_) => match crate::catalog::Catalog::new(None) {
            Ok(catalog) => catalog,
            Err(_) => return Vec::new(),
        },
    };
    catalog.names().map(CompletionCandidate::new).collect()
}

/// Candidates for `--by LABEL[,LABEL...]`: `none` and the label names of the configs the
/// catalog knows, after the labels already typed (`device,op<TAB>`).
pub fn by_values(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(text) = current.to_str() else {
        return Vec::new();
    };
    let (done, partial) = text.rsplit_once(',').map_or(("", text), |(d, p)| (d, p));
    let from_line = CONFIG_DIR.get().cloned().flatten();
    let dir = from_line.or_else(|| std::env::var_os("EBPFX_CONFIG_DIR").filter(|d| !d.is_empty()).map(PathBuf::from));
    let Ok(catalog) = crate::catalog::Catalog::new(dir.as_deref()).or_else(|_| crate::catalog::Catalog::new(None))
    else {
        return Vec::new();
    };
    let names: Vec<String> = catalog.names().map(str::to_string).collect();
    let mut labels =
        crate::regroup::label_names(names.iter().filter_map(|n| catalog.resolve(n).ok().map(|r| r.config)));
    let typed: Vec<&str> = if done.is_empty() { Vec::new() } else { done.split(',').collect() };
    labels.retain(|l| !typed.contains(&l.as_str()));
    if typed.is_empty() {
        labels.insert(0, "none".to_string());
    }
    labels.retain(|l| l.starts_with(partial));
    let prefix = if done.is_empty() { String::new() } else { format!("{done},") };
    labels.into_iter().map(|l| CompletionCandidate::new(format!("{prefix}{l}"))).collect()
}

/// Candidates for `--probe BINARY:FUNCTION`: while BINARY is typed, `kernel:` and files (with
/// directories to descend into); after the `:`, the functions of that binary (its ELF symbols,
/// or /proc/kallsyms for `kernel`) starting with what is typed. A binary that cannot be found or
/// read gives none: completion never prints errors into the user's line.
pub fn probe_values(current: &OsStr) -> Vec<CompletionCandidate> {
    let Some(text) = current.to_str() else {
        return Vec::new();
    };
    if let Some((binary, prefix)) = text.split_once(':') {
        return function_names(binary, prefix)
            .into_iter()
            .map(|f| CompletionCandidate::new(format!("{binary}:{f}")))
            .collect();
    }
    let mut out = Vec::new();
    if "kernel".starts_with(text) {
        out.push(CompletionCandidate::new("kernel:").help(Some("kernel functions (kprobes)".into())));
    }
    out.extend(PathCompleter::file().complete(current));
    out
}

/// The function names of `binary` (as `--probe` resolves it) that start with `prefix`, sorted,
/// each once.
fn function_names(binary: &str, prefix: &str) -> Vec<String> {
    let functions = if binary == "kernel" {
        match crate::kallsyms::read_system() {
            Ok(text) => crate::targets::kernel::kallsyms_functions(&text),
            Err(_) => return Vec::new(),
        }
    } else {
        let data = crate::targets::elf::resolve_binary(binary).ok().and_then(|path| std::fs::read(path).ok());
        match data.map(|d| crate::targets::elf::elf_functions(&d)) {
            // IFUNC symbols (`strcmp` in libc) are valid `--probe` targets too.
            Some(Ok(elf)) => elf.functions.into_iter().chain(elf.ifuncs).collect::<Vec<_>>(),
            _ => return Vec::new(),
        }
    };
    let mut names: Vec<String> = functions.into_iter().map(|f| f.name).filter(|n| n.starts_with(prefix)).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The `--config-dir` value in `words` (a completion request's command line, without the word
/// being completed): `--config-dir DIR`, `--config-dir=DIR`, or bash's split form
/// `--config-dir = DIR`; the last one wins, as in parsing. A leading `~/` is the home directory.
pub fn config_dir_in(words: &[OsString]) -> Option<PathBuf> {
    let mut found = None;
    let mut i = 0;
    while i < words.len() {
        let word = words[i].to_string_lossy();
        if word == "--config-dir" {
            let mut value = words.get(i + 1);
            if value.is_some_and(|v| v == "=") {
                i += 1;
                value = words.get(i + 1);
            }
            if let Some(v) = value {
                found = Some(PathBuf::from(v));
                i += 1;
            }
        } else if let Some(v) = word.strip_prefix("--config-dir=") {
            found = Some(PathBuf::from(v));
        }
        i += 1;
    }
    found.filter(|d| !d.as_os_str().is_empty()).map(|d| expand_home(&d))
}

fn expand_home(dir: &Path) -> PathBuf {
    match (dir.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => dir.to_path_buf(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// One shell: its registration script and how it hands over the words, around clap's engine
/// and our candidate selection.
struct Adapter(Shell);

/// The bash registration. Readline splits words at `=` and `:` (COMP_WORDBREAKS), so
/// `--format=j` arrives as three words and the word to replace is `j`: the script passes the
/// line up to the cursor too, the binary joins the pieces back (see [`bash_words`]) and answers
/// with the part after the break. A single candidate ending in `/` or `:` (a directory,
/// `kernel:`) takes no space after it, so the word goes on.
const BASH_REGISTRATION: &str = r#"# bash completion for @BIN@: the candidates come from the binary itself (`@VAR@=bash @BIN@ -- WORDS`).
# Install as /usr/share/bash-completion/completions/@BIN@, or `source <(@VAR@=bash @BIN@)`.
_@NAME@() {
    local IFS=$'\n'
    mapfile -t COMPREPLY < <(_EBPFX_LINE="${COMP_LINE:0:COMP_POINT}" _EBPFX_INDEX="$COMP_CWORD" \
        @VAR@=bash @COMPLETER@ -- "${COMP_WORDS[@]}" 2>/dev/null)
    if [[ ${#COMPREPLY[@]} -eq 1 && "${COMPREPLY[0]}" == *[/:] ]]; then
        compopt -o nospace 2>/dev/null
    fi
    return 0
}
complete -F _@NAME@ @BIN@
"#;

/// The zsh registration. The binary prints one `value<TAB>description` line per candidate (see
/// `write_complete`); a value ending in `/` or `:` (a directory, `kernel:`) takes no space after
/// it, so the word goes on. Installed on `$fpath` the file is the body of `_ebpfx`, run at the first
/// TAB: it defines `_ebpfx` and completes that TAB. Sourced (after compinit), it registers `_ebpfx`.
const ZSH_REGISTRATION: &str = r#"#compdef @BIN@
# zsh completion for @BIN@: the candidates come from the binary itself (`@VAR@=zsh @BIN@ -- WORDS`).
# Install as _@BIN@ in a directory on $fpath, or `source <(@VAR@=zsh @BIN@)` after compinit.
_@NAME@() {
    local -a lines spaced unspaced
    local line value entry
    lines=("${(@f)$(_EBPFX_INDEX=$(( CURRENT - 1 )) @VAR@=zsh @COMPLETER@ -- "${words[@]}" 2>/dev/null)}")
    for line in "${lines[@]}"; do
        [[ -n "$line" ]] || continue
        value="${line%%$'\t'*}"
        # _describe reads `value:description`: `\` and `:` in the value are escaped.
        entry="${${value//\\/\\\\}//:/\\:}"
        [[ "$line" == *$'\t'* ]] && entry+=":${line#*$'\t'}"
        if [[ "$value" == */ || "$value" == *: ]]; then
            unspaced+=("$entry")
        else
            spaced+=("$entry")
        fi
    done
    (( ${#unspaced} )) && _describe -V values unspaced -S ''
    (( ${#spaced} )) && _describe -V values spaced
    return 0
}

if [[ "${funcstack[1]}" == _@NAME@ ]]; then
    _@NAME@ "$@"
else
    compdef _@NAME@ @BIN@
fi
"#;

impl EnvCompleter for Adapter {
    fn name(&self) -> &'static str {
        match self.0 {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }

    fn is(&self, name: &str) -> bool {
        name == self.name()
    }

    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn Write,
    ) -> Result<(), std::io::Error> {
        let template = match self.0 {
            Shell::Fish => return clap_complete::env::Fish.write_registration(var, name, bin, completer, buf),
            Shell::Bash => BASH_REGISTRATION,
            Shell::Zsh => ZSH_REGISTRATION,
        };
        let script = template
            .replace("@NAME@", &name.replace('-', "_"))
            .replace("@BIN@", bin)
            .replace("@VAR@", var)
            .replace("@COMPLETER@", &sh_quote(completer));
        buf.write_all(script.as_bytes())
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn Write,
    ) -> Result<(), std::io::Error> {
        // The words, the index of the one under the cursor, and (bash) the part of that word
        // before readline's word, which the answer leaves out.
        let (mut args, index, before) = match self.0 {
            Shell::Fish => {
                let index = args.len().saturating_sub(1);
                (args, index, String::new())
            }
            Shell::Zsh => {
                let index = std::env::var("_EBPFX_INDEX").ok().and_then(|i| i.parse().ok()).unwrap_or(0);
                (args, index, String::new())
            }
            Shell::Bash => {
                let index = std::env::var("_EBPFX_INDEX").ok().and_then(|i| i.parse().ok()).unwrap_or(0);
                let line = std::env::var("_EBPFX_LINE").unwrap_or_default();
                bash_words(&args, index, &line)
            }
        };
        while args.len() <= index {
            args.push(OsString::new());
        }
        let current = args[index].clone();
        let others: Vec<OsString> =
            args.iter().enumerate().filter(|(i, _)| *i != index).map(|(_, w)| w.clone()).collect();
        let _ = CONFIG_DIR.set(config_dir_in(&others));

        let mut candidates = clap_complete::engine::complete(cmd, args, index, current_dir)?;
        if !current.to_string_lossy().starts_with('-') {
            candidates.retain(|c| !c.get_value().to_string_lossy().starts_with('-'));
        }

        for c in &candidates {
            let value = c.get_value().to_string_lossy();
            match self.0 {
                // One word a line, without the part readline does not replace.
                Shell::Bash => {
                    if let Some(rest) = value.strip_prefix(before.as_str()) {
                        writeln!(buf, "{rest}")?;
                    }
                }
                // One `value<TAB>description` line each, for fish and our zsh script alike.
                Shell::Zsh | Shell::Fish => {
                    buf.write_all(value.as_bytes())?;
                    if let Some(help) = c.get_help() {
                        write!(buf, "\t{}", help.to_string().lines().next().unwrap_or(""))?;
                    }
                    writeln!(buf)?;
                }
            }
        }
        Ok(())
    }
}

/// The characters of COMP_WORDBREAKS that can split one of our words.
const BREAKS: [char; 2] = ['=', ':'];

/// bash's COMP_WORDS up to the cursor (word `index`), with the pieces readline split at `=` and
/// `:` joined back where the line shows no space between them (`--format`, `=`, `j` →
/// `--format=j`). Returns the words, the index of the word under the cursor, and the part of
/// that word before readline's own word (`--format=`): the candidates are answered without it.
fn bash_words(words: &[OsString], index: usize, line: &str) -> (Vec<OsString>, usize, String) {
    let mut out: Vec<String> = Vec::new();
    let mut offset = 0;
    let mut readline_word = String::new();
    let mut previous_is_break = false;
    for (i, word) in words.iter().enumerate().take(index + 1) {
        let word = word.to_string_lossy();
        // Where the word starts in the line. The word under the cursor is the rest of the line
        // after the last blank (the line ends at the cursor).
        let found = if i == index {
            let rest = line.get(offset..).unwrap_or("");
            Some(offset + rest.rfind(char::is_whitespace).map_or(0, |p| p + 1))
        } else {
            line.get(offset..).and_then(|rest| rest.find(word.as_ref())).map(|p| p + offset)
        };
        let (glued, text) = match found {
            Some(start) => {
                let end = if i == index { line.len() } else { start + word.len() };
                let glued = start == offset && !out.is_empty();
                offset = end;
                (glued, line[start..end].to_string())
            }
            None => (false, word.to_string()),
        };
        let is_break = !text.is_empty() && text.chars().all(|c| BREAKS.contains(&c));
        match out.last_mut() {
            Some(last) if glued && (is_break || previous_is_break) => last.push_str(&text),
            _ => out.push(text.clone()),
        }
        previous_is_break = is_break;
        if i == index {
            readline_word = if is_break { String::new() } else { text };
        }
    }
    let current = out.last().cloned().unwrap_or_default();
    let before = current[..current.len() - readline_word.len()].to_string();
    let index = out.len().saturating_sub(1);
    (out.into_iter().map(OsString::from).collect(), index, before)
}

/// `s` as one shell word: as is when it is plain, otherwise in single quotes.
fn sh_quote(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    fn joined(words: &[&str], line: &str) -> (Vec<String>, usize, String) {
        let words: Vec<OsString> = words.iter().map(OsString::from).collect();
        let (out, index, before) = bash_words(&words, words.len() - 1, line);
        (out.iter().map(|w| w.to_string_lossy().into_owned()).collect(), index, before)
    }

    #[test]
    fn bash_words_are_joined_where_readline_split_them() {
        let (w, i, before) = joined(&["ebpfx", "run", "--format", "=", "j"], "ebpfx run --format=j");
        assert_eq!((w, i, before.as_str()), (vec!["ebpfx".into(), "run".into(), "--format=j".into()], 2, "--format="));
        // The cursor right after the `=`: readline's word is empty.
        let (w, _, before) = joined(&["ebpfx", "run", "--format", "="], "ebpfx run --format=");
        assert_eq!((w[2].as_str(), before.as_str()), ("--format=", "--format="));
        let (w, _, before) =
            joined(&["ebpfx", "run", "--probe", "libc.so.6", ":", "mal"], "ebpfx run --probe libc.so.6:mal");
        assert_eq!((w[3].as_str(), before.as_str()), ("libc.so.6:mal", "libc.so.6:"));
        let (w, _, before) = joined(&["ebpfx", "run", "--probe", "libc.so.6", ":"], "ebpfx run --probe libc.so.6:");
        assert_eq!((w[3].as_str(), before.as_str()), ("libc.so.6:", "libc.so.6:"));
        // Blanks between the pieces: separate words, nothing joined (readline's word after a
        // lone `=` is still empty).
        let (w, i, before) = joined(&["ebpfx", "run", "--format", "="], "ebpfx run --format =");
        assert_eq!((w.len(), i, before.as_str()), (4, 3, "="));
        let (w, i, before) = joined(&["ebpfx", "run", "--format", ""], "ebpfx run --format ");
        assert_eq!((w.len(), i, w[3].as_str(), before.as_str()), (4, 3, "", ""));
        let (w, _, _) = joined(&["ebpfx", "--config-dir", "=", "/d", "run", "f"], "ebpfx --config-dir=/d run f");
        assert_eq!(w, ["ebpfx", "--config-dir=/d", "run", "f"]);
        // Without the line (an older script): the words as they came.
        let (w, _, before) = joined(&["ebpfx", "run", "b"], "");
        assert_eq!((w.len(), before.as_str()), (3, ""));
    }

    #[test]
    fn shell_words() {
        assert_eq!(sh_quote("ebpfx"), "ebpfx");
        assert_eq!(sh_quote("/usr/local/bin/ebpfx"), "/usr/local/bin/ebpfx");
        assert_eq!(sh_quote("/opt/my tools/it's"), r"'/opt/my tools/it'\''s'");
    }

    #[test]
    fn config_dir_in_every_spelling() {
        assert_eq!(config_dir_in(&words("ebpfx --config-dir /a run")), Some(PathBuf::from("/a")));
        assert_eq!(config_dir_in(&words("ebpfx run x --config-dir=/b")), Some(PathBuf::from("/b")));
        assert_eq!(config_dir_in(&words("ebpfx --config-dir = /c run")), Some(PathBuf::from("/c")));
        assert_eq!(config_dir_in(&words("ebpfx --config-dir /a run --config-dir /d")), Some(PathBuf::from("/d")));
        assert_eq!(config_dir_in(&words("ebpfx run --config-dir")), None);
        assert_eq!(config_dir_in(&words("ebpfx run biolatency")), None);
    }

    #[test]
    fn probe_offers_kernel_and_paths_then_functions() {
        let values = |s: &str| -> Vec<String> {
            probe_values(OsStr::new(s)).iter().map(|c| c.get_value().to_string_lossy().into_owned()).collect()
        };
        assert!(values("ker").contains(&"kernel:".to_string()));
        assert!(values("/usr/bi").contains(&"/usr/bin/".to_string()));
        assert!(values("/nonexistent/ebpfx-bin:ma").is_empty());
        assert!(values("kernel:").iter().all(|v| v.starts_with("kernel:")));
    }
}
