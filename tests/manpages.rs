//! The committed man pages: fresh (equal to what `cargo xtask man` writes now), free of groff
//! warnings, and documenting each subcommand's flags.
//!
//! Rendering needs groff (Debian package: groff-base, pulled in by man-db). Without it the
//! rendering test is skipped with a message; under `CI=true` that is a failure.
use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::CommandFactory;

// The generator `cargo xtask` runs; each test uses part of it.
#[allow(dead_code)]
#[path = "../examples/xtask/generated.rs"]
mod generated;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed pages, by file name.
fn pages() -> Vec<PathBuf> {
    let dir = repo().join(generated::MAN_DIR);
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    pages.sort();
    pages
}

fn groff_ready() -> bool {
    let ok = Command::new("groff")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    let msg = "man page test needs groff (Debian package: groff-base); it is not usable here";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: a missing tool is a failure)");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Renders a page as man(1) would for a UTF-8 terminal, with all warnings on; returns the plain
/// text (overstrike bold/underline removed, typographic hyphens and minus signs made ASCII).
fn render(page: &PathBuf) -> String {
    let out = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("running groff on {}: {e}", page.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "groff -man -Tutf8 -ww {} warned or failed ({}):\n{stderr}",
        page.display(),
        out.status
    );
    let raw = String::from_utf8_lossy(&out.stdout);
    let mut text = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '\u{8}' => {
                text.pop();
            }
            '\u{2010}' | '\u{2011}' | '\u{2212}' => text.push('-'),
            c => text.push(c),
        }
    }
    text
}

#[test]
fn man_pages_are_fresh() {
    let files = generated::man_pages().expect("generate man pages");
    let problems = generated::differences(&files, &repo()).expect("compare files");
    assert!(
        problems.is_empty(),
        "the committed man pages do not match src/cli.rs:\n  {}\nrun `{}` and commit the result",
        problems.join("\n  "),
        generated::REGENERATE_COMMAND
    );
}

#[test]
fn one_page_per_visible_subcommand() {
    let names: Vec<String> =
        pages().iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    assert!(names.iter().any(|n| n == "ebpfx.1"), "{names:?}");
    let cmd = ebpfx::cli::Cli::command();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let want = format!("ebpfx-{}.1", sub.get_name());
        assert!(names.contains(&want), "no {want} in man/: {names:?}");
    }
    assert!(!names.iter().any(|n| n == "ebpfx-generate.1"), "{names:?}");
}

/// A stale page is caught: the comparison the freshness test relies on sees a changed byte.
#[test]
fn a_stale_page_is_reported() {
    let files = generated::man_pages().expect("generate man pages");
    let tmp = tempfile::tempdir().expect("temp dir");
    generated::write(&files, tmp.path()).expect("write pages");
    assert!(generated::differences(&files, tmp.path()).expect("compare").is_empty());
    let run = tmp.path().join("man/ebpfx-run.1");
    let mut text = std::fs::read_to_string(&run).expect("read page");
    text.push_str(".\\\" edited by hand\n");
    std::fs::write(&run, text).expect("edit page");
    std::fs::write(tmp.path().join("man/ebpfx-generate.1"), "old\n").expect("leftover page");
    let problems = generated::differences(&files, tmp.path()).expect("compare");
    assert!(problems.iter().any(|p| p.contains("ebpfx-run.1") && p.contains("out of date")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("ebpfx-generate.1") && p.contains("delete")), "{problems:?}");
}

#[test]
fn examples_are_printed_line_for_line() {
    let roff = ".TH x 1\n.SH EXTRA\nExamples:\n  a \\-b\n.SH VERSION\nv1\n";
    let out = generated::examples_section(roff, "Examples:\n  a -b\n  .c\n").expect("section");
    assert_eq!(out, ".TH x 1\n.SH EXAMPLES\n.nf\na \\-b\n\\&.c\n.fi\n.SH VERSION\nv1\n");
    let out = generated::examples_section(".SH EXTRA\nsee x\n", "see x").expect("section");
    assert_eq!(out, ".SH NOTES\n.nf\nsee x\n.fi\n");
}

#[test]
fn pages_render_without_warnings_and_document_their_flags() {
    if !groff_ready() {
        return;
    }
    let mut cmd = ebpfx::cli::Cli::command();
    cmd.build();
    for page in pages() {
        let text = render(&page);
        let file = page.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let sub_name = file.strip_suffix(".1").and_then(|s| s.strip_prefix("ebpfx-"));
        let documented = match sub_name {
            Some(name) => {
                cmd.find_subcommand(name).unwrap_or_else(|| panic!("{file}: no subcommand {name:?} in src/cli.rs"))
            }
            None => &cmd,
        };
        for arg in documented.get_arguments().filter(|a| !a.is_hide_set()) {
            if let Some(long) = arg.get_long() {
                assert!(text.contains(&format!("--{long}")), "{file} does not mention --{long}:\n{text}");
            }
        }
    }
    let run = render(&repo().join("man/ebpfx-run.1"));
    for flag in ["--for", "--format", "--output", "--config-dir", "NAME"] {
        assert!(run.contains(flag), "ebpfx-run.1 does not mention {flag}");
    }
}
