//! Shell completions and man pages, generated from the clap definition in [`crate::cli`].
//!
//! The generated files are committed (`completions/`, `man/`) so packagers need no Rust
//! toolchain; `tests/completions.rs` and `tests/manpages.rs` fail when they go stale. Regenerate
//! with [`REGENERATE_COMMAND`].
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory, ValueEnum};

use crate::cli::Cli;

/// The command that rewrites every generated file, for messages and docs.
pub const REGENERATE_COMMAND: &str = "cargo run -- generate all --out-dir .";

/// Directory (under the output directory) of the completion scripts.
pub const COMPLETIONS_DIR: &str = "completions";
/// Directory (under the output directory) of the man pages.
pub const MAN_DIR: &str = "man";

/// What `ebpfx generate` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// Shell completions: completions/ebpfx.bash, completions/_ebpfx, completions/ebpfx.fish.
    Completions,
    /// Man pages: man/ebpfx.1 and one per subcommand.
    Man,
    /// Both.
    All,
}

#[derive(Debug, Args, Clone)]
pub struct GenerateArgs {
    /// What to write.
    #[arg(value_enum, value_name = "WHAT")]
    pub what: What,

    /// Write into DIR/completions and DIR/man (the repository root keeps the committed copies).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out_dir: PathBuf,
}

/// One generated file: its path relative to the output directory, and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// `ebpfx generate`: write the files and name each on stdout.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let written = write(args.what, &args.out_dir)?;
    let mut text = String::new();
    for path in written {
        text.push_str(&format!("wrote {}\n", path.display()));
    }
    crate::output::print(&text)
}

/// `ebpfx list --names`: every config name, one per line, for the completions.
pub fn config_names(config_dir: Option<&Path>) -> anyhow::Result<String> {
    let catalog = crate::catalog::Catalog::new(config_dir)?;
    let mut text = String::new();
    for name in catalog.names() {
        text.push_str(name);
        text.push('\n');
    }
    Ok(text)
}

/// Every file `what` stands for, rendered in memory.
pub fn artefacts(what: What) -> anyhow::Result<Vec<Artefact>> {
    match what {
        What::Completions => completions(),
        What::Man => man_pages(),
        What::All => {
            let mut all = completions()?;
            all.extend(man_pages()?);
            Ok(all)
        }
    }
}

/// Renders `what` and writes it under `out_dir`, creating the directories. Returns the paths
/// written.
pub fn write(what: What, out_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let files = artefacts(what)?;
    let mut written = Vec::with_capacity(files.len());
    for file in &files {
        let path = out_dir.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating directory {}", parent.display()))?;
        }
        std::fs::write(&path, &file.contents).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Completion scripts for bash, zsh and fish: clap_complete's output, post-processed so that
/// every positional argument whose value name is `NAME` completes config names from
/// `ebpfx list --names [--config-dir DIR]` at completion time (DIR taken from the command line
/// being completed).
pub fn completions() -> anyhow::Result<Vec<Artefact>> {
    use clap_complete::Shell;
    let cmd = Cli::command();
    let slots = NameSlots::of(&cmd);
    let hidden = Hidden::of(&cmd);
    let render = |shell: Shell| -> anyhow::Result<String> {
        let mut cmd = Cli::command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, BIN, &mut buf);
        let script = String::from_utf8(buf).with_context(|| format!("clap_complete wrote non-UTF-8 {shell}"))?;
        hidden.remove_from(shell, &script)
    };
    Ok(vec![
        Artefact {
            path: Path::new(COMPLETIONS_DIR).join("ebpfx.bash"),
            contents: bash_script(&render(Shell::Bash)?, &slots)?.into_bytes(),
        },
        Artefact {
            path: Path::new(COMPLETIONS_DIR).join("_ebpfx"),
            contents: zsh_script(&render(Shell::Zsh)?, &slots)?.into_bytes(),
        },
        Artefact {
            path: Path::new(COMPLETIONS_DIR).join("ebpfx.fish"),
            contents: fish_script(&render(Shell::Fish)?, &slots)?.into_bytes(),
        },
    ])
}

const BIN: &str = "ebpfx";

/// The value name that marks a positional argument as "a config name".
const NAME_VALUE: &str = "NAME";

/// Where config names are completed, read off the clap definition.
#[derive(Debug, Default)]
struct NameSlots {
    /// Top-level subcommands with a positional `NAME` argument (`run`, ...).
    subcommands: Vec<String>,
    /// The ids of those positionals (`names`), as they appear in the zsh specs.
    arg_ids: Vec<String>,
    /// Every option spelling that takes a value (`--for`, `-f`, ...), so the bash completion can
    /// tell a config name from an option's value.
    value_options: Vec<String>,
}

impl NameSlots {
    fn of(root: &clap::Command) -> NameSlots {
        let mut slots = NameSlots::default();
        slots.add_value_options(root);
        for sub in root.get_subcommands().filter(|s| !s.is_hide_set()) {
            slots.add_value_options(sub);
            for arg in sub.get_positionals() {
                let is_name = arg.get_value_names().is_some_and(|v| v.iter().any(|n| n.as_str() == NAME_VALUE));
                if is_name {
                    push_unique(&mut slots.subcommands, sub.get_name());
                    push_unique(&mut slots.arg_ids, arg.get_id().as_str());
                }
            }
        }
        slots
    }

    fn add_value_options(&mut self, cmd: &clap::Command) {
        for arg in cmd.get_opts() {
            if !arg.get_action().takes_values() {
                continue;
            }
            if let Some(long) = arg.get_long() {
                push_unique(&mut self.value_options, &format!("--{long}"));
            }
            if let Some(short) = arg.get_short() {
                push_unique(&mut self.value_options, &format!("-{short}"));
            }
        }
    }
}

/// Hidden subcommands and flags, which clap_complete's static scripts still offer: they are
/// maintainer plumbing (`generate`, `list --names`) and are taken out of the scripts.
#[derive(Debug, Default)]
struct Hidden {
    /// Top-level subcommand names.
    subcommands: Vec<String>,
    /// (subcommand or `None` for the top level, flag spellings such as `--names` and `-n`).
    flags: Vec<(Option<String>, Vec<String>)>,
}

impl Hidden {
    fn of(root: &clap::Command) -> Hidden {
        let mut hidden = Hidden::default();
        hidden.add_flags(None, root);
        for sub in root.get_subcommands() {
            if sub.is_hide_set() {
                hidden.subcommands.push(sub.get_name().to_string());
            } else {
                hidden.add_flags(Some(sub.get_name()), sub);
            }
        }
        hidden
    }

    fn add_flags(&mut self, sub: Option<&str>, cmd: &clap::Command) {
        for arg in cmd.get_arguments().filter(|a| a.is_hide_set()) {
            let mut spellings = Vec::new();
            if let Some(long) = arg.get_long() {
                spellings.push(format!("--{long}"));
            }
            if let Some(short) = arg.get_short() {
                spellings.push(format!("-{short}"));
            }
            if !spellings.is_empty() {
                self.flags.push((sub.map(str::to_string), spellings));
            }
        }
    }

    /// Hidden flags that apply in the block of `sub` (top-level flags apply everywhere, as clap
    /// propagates global ones).
    fn flags_of<'a>(&'a self, sub: Option<&'a str>) -> impl Iterator<Item = &'a str> + 'a {
        self.flags
            .iter()
            .filter(move |(owner, _)| owner.is_none() || owner.as_deref() == sub)
            .flat_map(|(_, spellings)| spellings.iter().map(String::as_str))
    }

    fn remove_from(&self, shell: clap_complete::Shell, script: &str) -> anyhow::Result<String> {
        use clap_complete::Shell;
        let (out, removed) = match shell {
            Shell::Bash => self.strip_bash(script),
            Shell::Zsh => self.strip_zsh(script),
            Shell::Fish => self.strip_fish(script),
            other => anyhow::bail!("no completion post-processing for {other}"),
        };
        let expected = self.subcommands.len() + self.flags.len();
        if removed < expected {
            anyhow::bail!(
                "post-processing the {shell} completion: found {removed} of the {expected} hidden \
                 subcommands and flags to take out of clap_complete's output (did clap_complete \
                 change its output?)"
            );
        }
        Ok(out)
    }

    /// bash: words in the `opts="..."` lines; blocks start with `        NAME)`.
    fn strip_bash(&self, script: &str) -> (String, usize) {
        let mut out = String::with_capacity(script.len());
        let mut removed = 0;
        let mut block = String::new();
        for line in script.split_inclusive('\n') {
            let trimmed = line.trim_end();
            if let Some(name) = trimmed.strip_prefix("        ").and_then(|l| l.strip_suffix(')')) {
                if !name.starts_with(' ') && !name.contains(',') {
                    block = name.to_string();
                }
            }
            let Some(words) = trimmed.strip_prefix("            opts=\"").and_then(|l| l.strip_suffix('"')) else {
                out.push_str(line);
                continue;
            };
            let sub = match block.strip_prefix("ebpfx__subcmd__") {
                Some(sub) if !sub.contains("__") => Some(sub),
                Some(_) => {
                    out.push_str(line);
                    continue;
                }
                None => None,
            };
            let lists_subcommands = block == BIN || block == "ebpfx__subcmd__help";
            let kept: Vec<&str> = words
                .split(' ')
                .filter(|w| {
                    let drop = (lists_subcommands && self.subcommands.iter().any(|h| h == w))
                        || self.flags_of(sub).any(|f| f == *w);
                    if drop {
                        removed += 1;
                    }
                    !drop
                })
                .collect();
            out.push_str(&format!("            opts=\"{}\"\n", kept.join(" ")));
        }
        (out, removed)
    }

    /// zsh: `'NAME:description' \` lines in the command lists, and option specs
    /// (`'--names[...]' \`, `'(-q --quiet)*-v[...]' \`) in each subcommand's `_arguments`.
    fn strip_zsh(&self, script: &str) -> (String, usize) {
        let mut out = String::with_capacity(script.len());
        let mut removed = 0;
        let mut sub: Option<String> = None;
        for line in script.split_inclusive('\n') {
            let trimmed = line.trim();
            if let Some(name) = trimmed.strip_prefix('(').and_then(|l| l.strip_suffix(')')) {
                if !name.contains(' ') {
                    sub = Some(name.to_string());
                }
            }
            let is_command_entry = self.subcommands.iter().any(|h| line.starts_with(&format!("'{h}:")));
            let is_hidden_flag =
                zsh_spec_flag(line).is_some_and(|flag| self.flags_of(sub.as_deref()).any(|f| f == flag));
            if is_command_entry || is_hidden_flag {
                removed += 1;
            } else {
                out.push_str(line);
            }
        }
        (out, removed)
    }

    /// fish: `complete` lines offering a hidden subcommand or a hidden flag.
    fn strip_fish(&self, script: &str) -> (String, usize) {
        let mut out = String::with_capacity(script.len());
        let mut removed = 0;
        for line in script.split_inclusive('\n') {
            let Some(rest) = line.strip_prefix("complete -c ebpfx -n \"") else {
                out.push_str(line);
                continue;
            };
            let condition = rest.split('"').next().unwrap_or_default();
            let lists_subcommands = condition == "__fish_ebpfx_needs_command"
                || condition.starts_with("__fish_ebpfx_using_subcommand help;");
            let offers_hidden_subcommand =
                lists_subcommands && self.subcommands.iter().any(|h| line.contains(&format!(" -a \"{h}\" ")));
            let sub = condition.strip_prefix("__fish_ebpfx_using_subcommand ").filter(|s| !s.contains(';'));
            let words: Vec<&str> = line.split_whitespace().collect();
            let offers_hidden_flag = words.windows(2).any(|w| {
                let spelling = match w[0] {
                    "-l" => format!("--{}", w[1]),
                    "-s" => format!("-{}", w[1]),
                    _ => return false,
                };
                self.flags_of(sub).any(|f| f == spelling)
            });
            if offers_hidden_subcommand || offers_hidden_flag {
                removed += 1;
            } else {
                out.push_str(line);
            }
        }
        (out, removed)
    }
}

/// The flag a zsh `_arguments` option spec line describes: `'(-q --quiet)*-v[help]' \` → `-v`.
fn zsh_spec_flag(line: &str) -> Option<&str> {
    let spec = line.strip_prefix('\'')?;
    let spec = match spec.strip_prefix('(') {
        Some(rest) => rest.split_once(')')?.1,
        None => spec,
    };
    let spec = spec.strip_prefix('*').unwrap_or(spec);
    if !spec.starts_with('-') {
        return None;
    }
    let end = spec.find(['[', '=', '+'])?;
    Some(&spec[..end])
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// Fails generation (rather than writing a silently broken script) when clap_complete's output
/// no longer has the shape the post-processing expects.
fn replace_once(script: &str, from: &str, to: &str, shell: &str) -> anyhow::Result<String> {
    match script.matches(from).count() {
        1 => Ok(script.replacen(from, to, 1)),
        n => anyhow::bail!(
            "post-processing the {shell} completion: expected {from:?} once in clap_complete's \
             output, found it {n} times (did clap_complete change its output?)"
        ),
    }
}

/// bash: clap's function becomes `_ebpfx_clap`; `_ebpfx` calls it, then replaces the candidates
/// with config names when the word is a `NAME` of a subcommand that takes them.
fn bash_script(generated: &str, slots: &NameSlots) -> anyhow::Result<String> {
    let script =
        generated.strip_prefix("_ebpfx() {\n").map(|rest| format!("_ebpfx_clap() {{\n{rest}")).ok_or_else(|| {
            anyhow::anyhow!(
                "post-processing the bash completion: clap_complete's output does not start with \
                 `_ebpfx() {{` (did clap_complete change its output?)"
            )
        })?;
    let subcommands = slots.subcommands.join("|");
    let value_options = slots.value_options.join("|");
    let mut out = String::new();
    out.push_str(GENERATED_HEADER);
    out.push_str(&script);
    if slots.subcommands.is_empty() {
        return Ok(out);
    }
    out.push_str(&format!(
        r#"
# Added by `ebpfx generate`: config names come from `ebpfx list --names` at completion time.
_ebpfx_config_names() {{
    local dir="" i
    for (( i = 1; i < COMP_CWORD; i++ )); do
        case "${{COMP_WORDS[i]}}" in
            --config-dir)
                if [[ "${{COMP_WORDS[i+1]}}" == "=" ]]; then
                    dir="${{COMP_WORDS[i+2]}}"
                else
                    dir="${{COMP_WORDS[i+1]}}"
                fi
                ;;
            --config-dir=*)
                dir="${{COMP_WORDS[i]#--config-dir=}}"
                ;;
        esac
    done
    dir="${{dir/#\~/$HOME}}"
    if [[ -n "$dir" ]]; then
        command ebpfx list --names --config-dir "$dir" 2>/dev/null
    else
        command ebpfx list --names 2>/dev/null
    fi
}}

_ebpfx() {{
    _ebpfx_clap "$@"
    local status=$? cur="${{COMP_WORDS[COMP_CWORD]}}" sub="" word i
    [[ "$cur" == -* ]] && return $status
    for (( i = 1; i < COMP_CWORD; i++ )); do
        word="${{COMP_WORDS[i]}}"
        case "$word" in
            {value_options})
                (( i++ ))
                [[ "${{COMP_WORDS[i]}}" == "=" ]] && (( i++ ))
                ;;
            -*) ;;
            *)
                sub="$word"
                break
                ;;
        esac
    done
    (( i >= COMP_CWORD )) && return $status
    case "$sub" in
        {subcommands}) ;;
        *) return $status ;;
    esac
    case "${{COMP_WORDS[COMP_CWORD-1]}}" in
        {value_options}|=) return $status ;;
    esac
    local IFS=$'\n'
    COMPREPLY=( $(compgen -W "$(_ebpfx_config_names)" -- "$cur") )
    return 0
}}
"#
    ));
    Ok(out)
}

/// zsh: the `NAME` positionals' action becomes `_ebpfx_config_names`, which finds
/// `--config-dir` in the whole command line (saved before `_arguments` narrows `words` to the
/// subcommand).
fn zsh_script(generated: &str, slots: &NameSlots) -> anyhow::Result<String> {
    let mut script = replace_once(
        generated,
        "\n_ebpfx() {\n",
        "\n_ebpfx() {\n    local -a _ebpfx_words\n    _ebpfx_words=(\"${words[@]}\")\n",
        "zsh",
    )?;
    for id in &slots.arg_ids {
        let mut found = 0;
        let lines: Vec<String> = script
            .split_inclusive('\n')
            .map(|line| {
                let spec = line.starts_with(&format!("'*::{id} -- "))
                    || line.starts_with(&format!("':{id} -- "))
                    || line.starts_with(&format!("'::{id} -- "));
                match line.strip_suffix(":_default' \\\n") {
                    Some(head) if spec => {
                        found += 1;
                        format!("{head}:_ebpfx_config_names' \\\n")
                    }
                    _ => line.to_string(),
                }
            })
            .collect();
        if found == 0 {
            anyhow::bail!(
                "post-processing the zsh completion: no spec for the positional {id:?} ending in \
                 `:_default` in clap_complete's output (did clap_complete change its output?)"
            );
        }
        script = lines.concat();
    }
    let helper = r#"(( $+functions[_ebpfx_config_names] )) ||
_ebpfx_config_names() {
    # Added by `ebpfx generate`: config names come from `ebpfx list --names` at completion time.
    local -a names expl args
    local i dir=""
    for (( i = 1; i <= ${#_ebpfx_words[@]}; i++ )); do
        case "${_ebpfx_words[i]}" in
            --config-dir) dir="${_ebpfx_words[i+1]}" ;;
            --config-dir=*) dir="${_ebpfx_words[i]#--config-dir=}" ;;
        esac
    done
    dir="${(Q)dir}"
    dir="${dir/#\~/$HOME}"
    [[ -n "$dir" ]] && args=(--config-dir "$dir")
    names=( ${(f)"$(command ebpfx list --names "${args[@]}" 2>/dev/null)"} )
    _wanted config-names expl 'config name' compadd -a names
}

"#;
    let anchor = "if [ \"$funcstack[1]\" = \"_ebpfx\" ]; then\n";
    let script = replace_once(&script, anchor, &format!("{helper}{anchor}"), "zsh")?;
    Ok(insert_after_first_line(&script, GENERATED_HEADER))
}

/// fish: one more `complete` line per subcommand taking config names.
fn fish_script(generated: &str, slots: &NameSlots) -> anyhow::Result<String> {
    if !generated.contains("function __fish_ebpfx_using_subcommand\n") {
        anyhow::bail!(
            "post-processing the fish completion: no __fish_ebpfx_using_subcommand function in \
             clap_complete's output (did clap_complete change its output?)"
        );
    }
    let mut out = String::new();
    out.push_str(GENERATED_HEADER);
    out.push_str(generated);
    if slots.subcommands.is_empty() {
        return Ok(out);
    }
    out.push_str(
        r#"
# Added by `ebpfx generate`: config names come from `ebpfx list --names` at completion time.
function __fish_ebpfx_config_names
    set -l tokens (commandline -opc)
    set -l dir
    set -l i 1
    while test $i -le (count $tokens)
        switch $tokens[$i]
            case --config-dir
                set i (math $i + 1)
                set -q tokens[$i]; and set dir $tokens[$i]
            case '--config-dir=*'
                set dir (string replace -- --config-dir= '' $tokens[$i])
        end
        set i (math $i + 1)
    end
    set dir (string replace -r -- '^~' $HOME "$dir")
    if test -n "$dir"
        command ebpfx list --names --config-dir $dir 2>/dev/null
    else
        command ebpfx list --names 2>/dev/null
    end
end
"#,
    );
    for sub in &slots.subcommands {
        out.push_str(&format!(
            "complete -c ebpfx -n \"__fish_ebpfx_using_subcommand {sub}\" -f -a \"(__fish_ebpfx_config_names)\"\n"
        ));
    }
    Ok(out)
}

const GENERATED_HEADER: &str = "# Generated by `ebpfx generate completions` from src/cli.rs; do not edit.\n";

/// zsh reads `#compdef` only on the first line: the header goes after it.
fn insert_after_first_line(script: &str, text: &str) -> String {
    match script.split_once('\n') {
        Some((first, rest)) => format!("{first}\n{text}{rest}"),
        None => format!("{script}\n{text}"),
    }
}

/// Man pages: `ebpfx.1` and `ebpfx-SUB.1` for every visible subcommand.
pub fn man_pages() -> anyhow::Result<Vec<Artefact>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let source = format!("{BIN} {}", cmd.get_version().unwrap_or_default());
    let mut pages = vec![cmd.clone()];
    pages.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut out = Vec::with_capacity(pages.len());
    for page in pages {
        let after_help = page.get_after_help().map(|h| h.to_string());
        let man = clap_mangen::Man::new(page).source(source.clone());
        let file = man.get_filename();
        let mut buf = Vec::new();
        man.render(&mut buf).with_context(|| format!("rendering man page {file}"))?;
        let mut roff = String::from_utf8(buf).with_context(|| format!("clap_mangen wrote non-UTF-8 {file}"))?;
        if let Some(text) = after_help {
            roff = examples_section(&roff, &text).with_context(|| format!("rendering man page {file}"))?;
        }
        out.push(Artefact { path: Path::new(MAN_DIR).join(file), contents: roff.into_bytes() });
    }
    Ok(out)
}

/// clap_mangen puts `after_help` in a filled "EXTRA" section, which reflows and hyphenates the
/// example command lines. Replace it with an EXAMPLES section (or NOTES, when the text does not
/// start with "Examples:") printed line for line.
fn examples_section(roff: &str, after_help: &str) -> anyhow::Result<String> {
    const EXTRA: &str = ".SH EXTRA\n";
    let start = roff.find(EXTRA).ok_or_else(|| anyhow::anyhow!("no EXTRA section in clap_mangen's output"))?;
    let end = roff[start + EXTRA.len()..].find("\n.SH ").map_or(roff.len(), |i| start + EXTRA.len() + i + 1);
    let (title, body) = match after_help.strip_prefix("Examples:\n") {
        Some(body) => ("EXAMPLES", body),
        None => ("NOTES", after_help),
    };
    let mut section = format!(".SH {title}\n.nf\n");
    for line in body.lines() {
        let line = line.strip_prefix("  ").unwrap_or(line);
        let escaped = line.replace('\\', "\\e").replace('-', "\\-");
        if escaped.starts_with('.') || escaped.starts_with('\'') {
            section.push_str("\\&");
        }
        section.push_str(&escaped);
        section.push('\n');
    }
    section.push_str(".fi\n");
    Ok(format!("{}{section}{}", &roff[..start], &roff[end..]))
}

/// Compares the files `what` generates under `generated` with the copies under `committed`
/// (both roots holding `completions/` and `man/`). Returns one line per problem: a file that
/// differs, is missing, or is left over from an old definition. Empty when all is fresh.
pub fn differences(what: What, generated: &Path, committed: &Path) -> anyhow::Result<Vec<String>> {
    let files = artefacts(what)?;
    let mut problems = Vec::new();
    let mut dirs: Vec<&Path> = Vec::new();
    for file in &files {
        let fresh = std::fs::read(generated.join(&file.path))
            .with_context(|| format!("reading {}", generated.join(&file.path).display()))?;
        match std::fs::read(committed.join(&file.path)) {
            Ok(old) if old == fresh => {}
            Ok(_) => problems.push(format!("{} is out of date", file.path.display())),
            Err(e) => problems.push(format!("{} is missing ({e})", file.path.display())),
        }
        if let Some(dir) = file.path.parent() {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(committed.join(dir)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", committed.join(dir).display()))?;
            let path = dir.join(entry.file_name());
            if !files.iter().any(|f| f.path == path) {
                problems.push(format!("{} is not generated any more (delete it)", path.display()));
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_takes_config_names() {
        let slots = NameSlots::of(&Cli::command());
        assert!(slots.subcommands.iter().any(|s| s == "run"), "{slots:?}");
        assert!(slots.value_options.iter().any(|s| s == "--config-dir"));
        assert!(slots.value_options.iter().any(|s| s == "-f"));
        assert!(!slots.value_options.iter().any(|s| s == "--strict"));
    }

    #[test]
    fn hidden_plumbing_is_found() {
        let hidden = Hidden::of(&Cli::command());
        assert_eq!(hidden.subcommands, ["generate"]);
        assert!(hidden.flags_of(Some("list")).any(|f| f == "--names"));
        assert!(!hidden.flags_of(Some("run")).any(|f| f == "--names"));
    }

    #[test]
    fn zsh_option_specs() {
        assert_eq!(zsh_spec_flag("'--names[Print]' \\\n"), Some("--names"));
        assert_eq!(zsh_spec_flag("'(-q --quiet)*-v[Show]' \\\n"), Some("-v"));
        assert_eq!(zsh_spec_flag("'-f+[Output]:FORMAT:(a b)' \\\n"), Some("-f"));
        assert_eq!(zsh_spec_flag("'--for=[How]:DURATION:_default' \\\n"), Some("--for"));
        assert_eq!(zsh_spec_flag("'*::names -- Config:_default' \\\n"), None);
        assert_eq!(zsh_spec_flag("'run:Attach' \\\n"), None);
    }

    #[test]
    fn every_script_and_page_renders() {
        let files = artefacts(What::All).expect("generation succeeds");
        for name in ["completions/ebpfx.bash", "completions/_ebpfx", "completions/ebpfx.fish"] {
            let file =
                files.iter().find(|f| f.path == Path::new(name)).unwrap_or_else(|| panic!("{name} not generated"));
            let text = String::from_utf8_lossy(&file.contents);
            assert!(text.contains("ebpfx list --names"), "{name}: {text}");
        }
        for name in ["man/ebpfx.1", "man/ebpfx-run.1", "man/ebpfx-list.1"] {
            assert!(files.iter().any(|f| f.path == Path::new(name)), "{name}");
        }
        assert!(!files.iter().any(|f| f.path == Path::new("man/ebpfx-generate.1")));
    }

    #[test]
    fn examples_are_printed_line_for_line() {
        let roff = ".TH x 1\n.SH EXTRA\nExamples:\n  a \\-b\n.SH VERSION\nv1\n";
        let out = examples_section(roff, "Examples:\n  a -b\n  .c\n").expect("section");
        assert_eq!(out, ".TH x 1\n.SH EXAMPLES\n.nf\na \\-b\n\\&.c\n.fi\n.SH VERSION\nv1\n");
        let out = examples_section(".SH EXTRA\nsee x\n", "see x").expect("section");
        assert_eq!(out, ".SH NOTES\n.nf\nsee x\n.fi\n");
    }

    #[test]
    fn zsh_keeps_compdef_first() {
        let files = completions().expect("generation succeeds");
        let zsh = files.iter().find(|f| f.path == Path::new("completions/_ebpfx")).expect("zsh script");
        assert!(zsh.contents.starts_with(b"#compdef ebpfx\n"));
    }
}
