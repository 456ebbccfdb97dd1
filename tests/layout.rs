//! The data flow goes one way (docs/architecture.md): no top-level module of `src/` may use
//! another that uses it back, directly or through others. This test reads every `src/**/*.rs`,
//! collects the `crate::NAME` paths in its code (comments stripped, `use crate::{a, b::c}` groups
//! included), builds the graph of top-level modules (`src/loader/attach.rs` belongs to `loader`)
//! and fails on any cycle, printing it with one file that makes each step.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges of the module graph: from → to → one file that makes the edge.
type Graph = BTreeMap<String, BTreeMap<String, PathBuf>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(e) => panic!("reading {}: {e}", dir.display()),
    };
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to; `None` for the crate roots.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.strip_suffix(".rs") {
        Some("lib" | "main") => None,
        Some(stem) => Some(stem.to_string()),
        None => Some(first),
    }
}

/// The code of a file without comments and without the contents of string and char literals.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            // An escaped char literal ('\'', '\n', '\u{..}'): past the escaped char, to its quote.
            i += 3;
            while i < b.len() && b[i] != b'\'' {
                i += 1;
            }
            i += 1;
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') {
            // A plain char literal such as '"' (not a lifetime).
            i += 3;
        } else if b[i] == b'r'
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') || b[i - 1] == b'b')
            && matches!(b.get(i + 1), Some(b'#' | b'"'))
        {
            // A raw string r"..", r#".."#: up to the quote followed by as many hashes.
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            if b.get(i + 1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat(b'#').take(hashes)).collect();
            i += 2 + hashes;
            while i < b.len() && !b[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if b[i] == b'"' {
            // A string: skip its contents, escapes included.
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_at(s: &str) -> String {
    s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// Top-level module names a piece of code refers to as `crate::NAME` or `crate::{NAME, ...}`.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(pos) = rest.find("crate::") {
        let before_ok = pos == 0 || {
            let c = rest.as_bytes()[pos - 1];
            !(c.is_ascii_alphanumeric() || c == b'_')
        };
        let after = &rest[pos + "crate::".len()..];
        if before_ok {
            if let Some(group) = after.strip_prefix('{') {
                // Items of the group at depth 0, each starting with its module name.
                let mut depth = 0;
                let mut start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            start = true;
                            continue;
                        }
                        _ => {}
                    }
                    if start && !c.is_whitespace() {
                        start = false;
                        let name = ident_at(&group[i..]);
                        if !name.is_empty() && name != "self" {
                            refs.insert(name);
                        }
                    }
                }
            } else {
                let name = ident_at(after);
                if !name.is_empty() {
                    refs.insert(name);
                }
            }
        }
        rest = after;
    }
    refs
}

fn module_graph() -> (BTreeSet<String>, Graph) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    let mut graph = Graph::new();
    for file in &files {
        if let Some(m) = module_of(&src, file) {
            modules.insert(m);
        }
    }
    for file in &files {
        let Some(from) = module_of(&src, file) else { continue };
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for to in crate_refs(&strip(&text)) {
            if to != from && modules.contains(&to) {
                let rel = file.strip_prefix(&src).unwrap_or(file).to_path_buf();
                graph.entry(from.clone()).or_default().entry(to).or_insert(rel);
            }
        }
    }
    (modules, graph)
}

/// Every elementary cycle, each once, starting at its smallest module name.
fn cycles(modules: &BTreeSet<String>, graph: &Graph) -> Vec<Vec<String>> {
    fn walk(start: &str, node: &str, graph: &Graph, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
        let Some(next) = graph.get(node) else { return };
        for to in next.keys() {
            if to == start {
                found.push(path.clone());
            } else if to.as_str() > start && !path.contains(to) {
                path.push(to.clone());
                walk(start, to, graph, path, found);
                path.pop();
            }
        }
    }
    let mut found = Vec::new();
    for m in modules {
        walk(m, m, graph, &mut vec![m.clone()], &mut found);
    }
    found
}

#[test]
fn no_module_cycles() {
    let (modules, graph) = module_graph();
    assert!(graph.contains_key("commands"), "the scan found no crate:: paths in src/commands: {graph:?}");
    let found = cycles(&modules, &graph);
    if !found.is_empty() {
        let mut msg = format!("{} module cycle(s) in src/ (each step names one file that makes it):\n", found.len());
        for cycle in &found {
            let steps: Vec<String> = cycle
                .iter()
                .zip(cycle.iter().cycle().skip(1))
                .map(|(a, b)| format!("{a} -> {b} ({})", graph[a][b].display()))
                .collect();
            msg.push_str(&format!("  {}\n", steps.join(", ")));
        }
        panic!("{msg}");
    }
}

#[test]
fn crate_refs_reads_paths_and_groups() {
    let code = strip(
        "use crate::{a, b::{c, d}, self};\nuse crate::e::F;\nlet x = crate::g::h(); // crate::z\n\
         let s = \"crate::q\"; let c = '\"'; let r = r#\"crate::y\"#; fn f(_: my_crate::w) {}",
    );
    let got: Vec<String> = crate_refs(&code).into_iter().collect();
    assert_eq!(got, ["a", "b", "e", "g"]);
}

#[test]
fn cycles_are_found_once() {
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("b", "a"), ("c", "d")] {
        g.entry(a.into()).or_default().insert(b.into(), PathBuf::new());
    }
    let modules = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    assert_eq!(cycles(&modules, &g), vec![vec!["a", "b"], vec!["a", "b", "c"]]);
}
