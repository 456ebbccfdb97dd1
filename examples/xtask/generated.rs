//! The files generated from the clap definition and committed: the completion registration
//! scripts under `completions/` and the man pages under `man/`.
//!
//! Shared by `cargo xtask` (which writes them) and `tests/completions.rs` / `tests/manpages.rs`
//! (which fail when the committed copies are stale), so both render exactly the same bytes.
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::CommandFactory;
use ebpfx::cli::Cli;

/// The command that rewrites every generated file, for messages and docs.
pub const REGENERATE_COMMAND: &str = "cargo xtask all";

/// Directory (under the repository root) of the completion registration scripts.
pub const COMPLETIONS_DIR: &str = "completions";
/// Directory (under the repository root) of the man pages.
pub const MAN_DIR: &str = "man";

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Completions,
    Man,
    All,
}

/// One generated file: its path relative to the repository root, and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artefact {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// Every file `what` stands for, rendered in memory.
pub fn artefacts(what: What) -> anyhow::Result<Vec<Artefact>> {
    let mut out = Vec::new();
    if what != What::Man {
        out.extend(completions()?);
    }
    if what != What::Completions {
        out.extend(man_pages()?);
    }
    Ok(out)
}

/// The registration scripts, as `EBPFX_COMPLETE=SHELL ebpfx` prints them with `ebpfx` on $PATH.
pub fn completions() -> anyhow::Result<Vec<Artefact>> {
    let mut out = Vec::new();
    for (shell, file) in ebpfx::complete::SCRIPTS {
        out.push(Artefact {
            path: Path::new(COMPLETIONS_DIR).join(file),
            contents: ebpfx::complete::registration(Cli::command, shell)?,
        });
    }
    Ok(out)
}

/// Man pages: `ebpfx.1` and `ebpfx-SUB.1` for every visible subcommand.
pub fn man_pages() -> anyhow::Result<Vec<Artefact>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let source = format!("{} {}", cmd.get_name(), cmd.get_version().unwrap_or_default());
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
/// example command lines. This renders it as an EXAMPLES section (or NOTES, when the text does
/// not start with "Examples:") printed line for line, in place of clap_mangen's section.
pub fn examples_section(roff: &str, after_help: &str) -> anyhow::Result<String> {
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

/// Writes `files` under `root`, creating the directories; returns the paths written.
pub fn write(files: &[Artefact], root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let path = root.join(&file.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating directory {}", parent.display()))?;
        }
        std::fs::write(&path, &file.contents).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Compares `files` with the copies under `root`. Returns one line per problem: a file that
/// differs, is missing, or is left over in one of their directories. Empty when all is fresh.
pub fn differences(files: &[Artefact], root: &Path) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut dirs: Vec<&Path> = Vec::new();
    for file in files {
        match std::fs::read(root.join(&file.path)) {
            Ok(old) if old == file.contents => {}
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
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", root.join(dir).display()))?;
            let path = dir.join(entry.file_name());
            if !files.iter().any(|f| f.path == path) {
                problems.push(format!("{} is not generated any more (delete it)", path.display()));
            }
        }
    }
    Ok(problems)
}
