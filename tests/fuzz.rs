//! Mutation tests (a `cargo fuzz`-free fuzz harness) over the three ways input from outside
//! reaches ebpfx without a kernel in between: `ebpfx render` of saved snapshots, config YAML
//! through `ebpfx check`, and BPF object bytes through `ebpfx check`.
//!
//! Each area mutates valid inputs (snapshots saved by a live run when root, plus hand-made
//! ones; the built-in and test configs; the compiled built-in and test objects) and runs the
//! real binary on every mutant, under a memory limit (RLIMIT_AS) and a time limit. A run
//! passes when it ends by itself within the limit, with exit code 0, 1 or 2, no panic, and on
//! failure a stderr that starts with `ebpfx:`; a `render` to Prometheus text that succeeds must
//! also be valid (legal metric and label names).
//!
//! Deterministic and bounded: case `i` of an area is generated from the seed and `i` alone.
//!
//! * `EBPFX_FUZZ_SEED` (default fixed): the seed; `EBPFX_FUZZ_CASES` (default 150): cases per
//!   area; `EBPFX_FUZZ_SECONDS` (default 25): an area stops early after this long (the test
//!   says how many cases ran); `EBPFX_FUZZ_CASE=i`: run case `i` only.
//! * A failing case keeps its input under `target/tmp/fuzz-failures/AREA-seedS-caseI/` with a
//!   `repro.sh`, and the failure message names the seed, the case and that directory.
//!
//! The `regression_*` tests are the fixed inputs of issue 9 items 13-16 that the first fuzz
//! runs found (crashes, unbounded reads, problems found only after the window).
mod common;
use common::*;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/// SplitMix64: tiny, fast, and good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

const DEFAULT_SEED: u64 = 0x00eb_bf00_5eed_2026;

fn seed() -> u64 {
    env_u64("EBPFX_FUZZ_SEED").unwrap_or(DEFAULT_SEED)
}

/// The seed of case `case` of `area`.
fn case_seed(area: &str, case: u64) -> u64 {
    let mut h = seed() ^ case.wrapping_mul(0x2545_f491_4f6c_dd1d);
    for b in area.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

// ---------------------------------------------------------------------------------------------
// Mutations

const INTERESTING_U64: [u64; 22] = [
    0,
    1,
    2,
    3,
    7,
    8,
    16,
    33,
    255,
    256,
    4096,
    65535,
    65536,
    (1 << 31) - 1,
    1 << 31,
    u32::MAX as u64,
    1 << 32,
    1 << 40,
    1 << 62,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

const INTERESTING_NUMBERS: [&str; 16] = [
    "0",
    "-1",
    "1",
    "-2",
    "0.5",
    "4294967296",
    "1099511627776",
    "9223372036854775808",
    "18446744073709551615",
    "100000000",
    "1e308",
    "-1e308",
    "1e-300",
    "340282366920938463463374607431768211456",
    ".nan",
    "-0",
];

fn interesting_strings() -> Vec<String> {
    vec![
        String::new(),
        "x".into(),
        "1bad-name".into(),
        "__reserved".into(),
        "with space".into(),
        "quote\"back\\slash".into(),
        "nul\u{0}byte".into(),
        "line\nbreak".into(),
        "tab\there".into(),
        "ünïcödé".into(),
        "\u{feff}bom".into(),
        "zz".into(),
        "f".into(),
        "ffff".into(),
        "../../../../etc/passwd".into(),
        "/dev/zero".into(),
        "a".repeat(5000),
        "{{}}[]:,#&*!|>'%@`".into(),
    ]
}

/// 1 to 4 byte-level mutations.
fn mutate_bytes(rng: &mut Rng, data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = d.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = rng.next() as u8;
            }
            2 if len >= 8 => {
                // An interesting number, 4 or 8 bytes wide, at a 4-aligned offset.
                let v = *rng.pick(&INTERESTING_U64);
                let wide = rng.chance(50);
                let n = if wide { 8 } else { 4 };
                let i = rng.below(len - n + 1) & !3;
                let bytes = if wide { v.to_le_bytes().to_vec() } else { (v as u32).to_le_bytes().to_vec() };
                d[i..i + n].copy_from_slice(&bytes);
            }
            3 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                d.drain(a..b);
            }
            4 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let piece: Vec<u8> = d[a..b].to_vec();
                let at = rng.below(len);
                d.splice(at..at, piece);
            }
            5 => {
                let at = rng.below(len + 1);
                let piece: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                d.splice(at..at, piece);
            }
            6 if len > 0 => d.truncate(rng.below(len)),
            7 if len > 0 => {
                let i = rng.below(len);
                d[i] = *rng.pick(&[0u8, 0xff, 0x7f, 0x80, b'"', b'\\', b'\n', b'{', b'}', b'-', b':']);
            }
            _ if len > 0 => {
                // A repeated slice: a cheap way to big sizes and deep nesting.
                let a = rng.below(len);
                let b = (a + 1 + rng.below(8)).min(len);
                let piece: Vec<u8> = d[a..b].repeat(1 + rng.below(200));
                d.splice(a..a, piece);
            }
            _ => d.push(rng.next() as u8),
        }
    }
    d
}

/// Every JSON pointer of `v`'s nodes.
fn json_pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m {
                json_pointers(child, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                json_pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn interesting_json(rng: &mut Rng) -> serde_json::Value {
    use serde_json::json;
    match rng.below(6) {
        0 | 1 => json!(*rng.pick(&INTERESTING_U64)),
        2 => json!(*rng.pick(&[-1i64, -2, i64::MIN, -4096])),
        3 => json!(*rng.pick(&[0.5f64, -0.5, 1e300, -1e300, 1e-300])),
        4 => json!(rng.pick(&interesting_strings()).clone()),
        _ => rng.pick(&[json!(null), json!(true), json!([]), json!({}), json!([[]]), json!([""])]).clone(),
    }
}

/// Structure-aware JSON mutations (1 to 3), or byte mutations of the text now and then.
fn mutate_json(rng: &mut Rng, text: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(text) else {
        return mutate_bytes(rng, text);
    };
    if rng.chance(15) {
        return mutate_bytes(rng, text);
    }
    for _ in 0..1 + rng.below(3) {
        let mut pointers = Vec::new();
        json_pointers(&v, String::new(), &mut pointers);
        let p = rng.pick(&pointers).clone();
        let replacement = interesting_json(rng);
        let op = rng.below(6);
        let Some(node) = v.pointer_mut(&p) else { continue };
        match (op, node) {
            // Numbers: another number of the same kind, or an interesting one.
            (0 | 1, n @ serde_json::Value::Number(_)) => {
                *n = serde_json::json!(*rng.pick(&INTERESTING_U64));
            }
            (2, serde_json::Value::String(s)) => {
                *s = rng.pick(&interesting_strings()).clone();
                if rng.chance(30) {
                    // Hex-looking text of another length (keys_hex).
                    *s = "0".repeat(rng.below(70));
                }
            }
            (3, serde_json::Value::Object(m)) if !m.is_empty() => {
                let key = m.keys().nth(rng.below(m.len())).cloned().unwrap_or_default();
                m.remove(&key);
            }
            (4, serde_json::Value::Array(a)) if !a.is_empty() => {
                let i = rng.below(a.len());
                if rng.chance(20) {
                    a.clear();
                } else if rng.chance(50) {
                    let copy = a[i].clone();
                    for _ in 0..1 + rng.below(3) {
                        a.push(copy.clone());
                    }
                } else {
                    a.remove(i);
                }
            }
            (_, node) => *node = replacement,
        }
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| text.to_vec())
}

/// A saved map's size fields set to an interesting number, its keys and values emptied half
/// the time so that they stay consistent with any size (the sizes themselves then reach the
/// decoder: item 13's key_size 2^63).
fn mutate_map_sizes(rng: &mut Rng, text: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(text) else {
        return mutate_bytes(rng, text);
    };
    let configs = v["configs"].as_array().map_or(0, Vec::len);
    let c = rng.below(configs);
    let maps = v["configs"][c]["maps"].as_array().map_or(0, Vec::len);
    let m = rng.below(maps);
    let value = *rng.pick(&INTERESTING_U64);
    let clear = rng.chance(50);
    if let Some(map) = v["configs"][c]["maps"].get_mut(m) {
        let field = *rng.pick(&["key_size", "slots", "max_entries"]);
        map[field] = serde_json::json!(value);
        if clear {
            map["keys_hex"] = serde_json::json!("");
            map["values"] = serde_json::json!([]);
        }
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| text.to_vec())
}

/// Line- and token-level YAML mutations (1 to 3), or byte mutations now and then.
fn mutate_yaml(rng: &mut Rng, text: &[u8]) -> Vec<u8> {
    let Ok(s) = std::str::from_utf8(text) else {
        return mutate_bytes(rng, text);
    };
    if rng.chance(15) {
        return mutate_bytes(rng, text);
    }
    let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        if lines.is_empty() {
            lines.push("metrics:".into());
        }
        let i = rng.below(lines.len());
        match rng.below(7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let j = rng.below(lines.len());
                lines.swap(i, j);
            }
            3 | 4 => {
                // A number on the line becomes an interesting one.
                let line = &lines[i];
                let digits: Vec<(usize, usize)> = {
                    let b = line.as_bytes();
                    let mut spans = Vec::new();
                    let mut k = 0;
                    while k < b.len() {
                        if b[k].is_ascii_digit() {
                            let start = k;
                            while k < b.len() && b[k].is_ascii_digit() {
                                k += 1;
                            }
                            spans.push((start, k));
                        } else {
                            k += 1;
                        }
                    }
                    spans
                };
                if let Some(&(a, b)) = (!digits.is_empty()).then(|| rng.pick(&digits)) {
                    let mut l = line.clone();
                    let number: &str = INTERESTING_NUMBERS[rng.below(INTERESTING_NUMBERS.len())];
                    l.replace_range(a..b, number);
                    lines[i] = l;
                } else if let Some(colon) = line.find(": ") {
                    lines[i] = format!("{}: {}", &line[..colon], rng.pick(&INTERESTING_NUMBERS));
                }
            }
            5 => {
                if let Some(colon) = lines[i].find(": ") {
                    let value = rng.pick(&interesting_strings()).clone();
                    let quoted = serde_json::to_string(&value).unwrap_or_default();
                    let v = if rng.chance(50) { quoted } else { value };
                    lines[i] = format!("{}: {v}", &lines[i][..colon]);
                }
            }
            _ => {
                let indent = rng.below(12);
                lines[i] = format!("{}{}", " ".repeat(indent), lines[i].trim_start());
            }
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Bounded runs and the rules every run must keep

/// Memory a run may map (RLIMIT_AS): a run past it fails to allocate (an abort is a failure).
const MEMORY_LIMIT: u64 = 1 << 30;
/// Time a run may take (a debug build on a busy machine).
const TIME_LIMIT: Duration = Duration::from_secs(30);
/// Output kept per stream.
const OUTPUT_LIMIT: u64 = 16 << 20;

struct Outcome {
    code: Option<i32>,
    signal: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

fn run_bounded(args: &[OsString]) -> Outcome {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("EBPFX_CONFIG_DIR")
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit, which
    // is async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: MEMORY_LIMIT, rlim_max: MEMORY_LIMIT };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn ebpfx");
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(OUTPUT_LIMIT).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = reader(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = reader(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let deadline = Instant::now() + TIME_LIMIT;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for the killed ebpfx");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for ebpfx: {e}"),
        }
    };
    Outcome {
        code: status.code(),
        signal: status.signal(),
        timed_out,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The rules every run keeps; `Err` says which one broke.
fn judge(o: &Outcome) -> Result<(), String> {
    if o.timed_out {
        return Err(format!("did not finish within {TIME_LIMIT:?}"));
    }
    if let Some(sig) = o.signal {
        return Err(format!("killed by signal {sig} (abort or crash); stderr: {}", tail(&o.stderr)));
    }
    if o.stderr.contains("panicked at") {
        return Err(format!("panicked: {}", tail(&o.stderr)));
    }
    match o.code {
        Some(0) => Ok(()),
        Some(1 | 2) if o.stderr.starts_with("ebpfx:") => Ok(()),
        Some(1 | 2) => Err(format!("failed without an `ebpfx:` error first on stderr: {}", tail(&o.stderr))),
        other => Err(format!("exit code {other:?}; stderr: {}", tail(&o.stderr))),
    }
}

fn tail(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let from = chars.len().saturating_sub(600);
    let s: String = chars[from..].iter().collect();
    s.trim().replace('\n', " | ")
}

fn legal_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn legal_label_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        && !n.starts_with("__")
}

/// Checks the names and label syntax of Prometheus text; `Err` names the first bad line.
fn check_prom_text(text: &str) -> Result<(), String> {
    for line in text.lines() {
        let bad = || Err(format!("invalid Prometheus line {line:?}"));
        if let Some(rest) = line.strip_prefix("# HELP ").or_else(|| line.strip_prefix("# TYPE ")) {
            if !legal_metric_name(rest.split(' ').next().unwrap_or("")) {
                return bad();
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        if !legal_metric_name(&line[..name_end]) {
            return bad();
        }
        let mut rest = &line[name_end..];
        if let Some(labels) = rest.strip_prefix('{') {
            let mut s = labels;
            loop {
                if let Some(after) = s.strip_prefix('}') {
                    rest = after;
                    break;
                }
                let Some(eq) = s.find("=\"") else { return bad() };
                if !legal_label_name(&s[..eq]) {
                    return bad();
                }
                // The quoted value: only \\, \" and \n escapes.
                let mut chars = s[eq + 2..].char_indices();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, '\\' | '"' | 'n')) => {}
                            _ => return bad(),
                        },
                        '"' => {
                            end = Some(eq + 2 + i + 1);
                            break;
                        }
                        '\n' => return bad(),
                        _ => {}
                    }
                }
                let Some(end) = end else { return bad() };
                s = &s[end..];
                s = s.strip_prefix(',').unwrap_or(s);
            }
        }
        let value = rest.trim_start().split(' ').next().unwrap_or("");
        let ok = matches!(value, "NaN" | "+Inf" | "-Inf") || value.parse::<f64>().is_ok();
        if !ok {
            return bad();
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Cases, failures and their reproduction

/// Where failing inputs are kept (not removed after the test).
fn failures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures")
}

/// Copies `dir` (the case's inputs) to the failures directory with a `repro.sh`; returns where.
fn keep_failure(area: &str, case: u64, dir: &Path, args: &[OsString]) -> PathBuf {
    let keep = failures_dir().join(format!("{area}-seed{}-case{case}", seed()));
    let _ = std::fs::remove_dir_all(&keep);
    let _ = std::fs::create_dir_all(&keep);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::copy(e.path(), keep.join(e.file_name()));
        }
    }
    let line: Vec<String> = args
        .iter()
        .map(|a| {
            let a = a.to_string_lossy().replace(&*dir.to_string_lossy(), &keep.to_string_lossy());
            format!("'{}'", a.replace('\'', "'\\''"))
        })
        .collect();
    let script = format!(
        "#!/bin/sh\n# seed {} case {case} of fuzz area {area}\nulimit -v {}\nexec timeout {} '{}' {}\n",
        seed(),
        MEMORY_LIMIT / 1024,
        TIME_LIMIT.as_secs(),
        bin(),
        line.join(" ")
    );
    let _ = std::fs::write(keep.join("repro.sh"), script);
    keep
}

/// Runs the cases of one area: `make(rng, dir)` writes the case's inputs into `dir` and returns
/// the arguments; `extra(outcome)` checks more than the common rules. Panics with every
/// failure (up to 10 reported) at the end.
fn fuzz_area(
    area: &str,
    mut make: impl FnMut(&mut Rng, &Path) -> Vec<OsString>,
    extra: impl Fn(&[OsString], &Outcome) -> Result<(), String>,
) {
    let cases = env_u64("EBPFX_FUZZ_CASES").unwrap_or(150);
    let budget = Duration::from_secs(env_u64("EBPFX_FUZZ_SECONDS").unwrap_or(25));
    let only = env_u64("EBPFX_FUZZ_CASE");
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut ran = 0;
    for case in 0..cases {
        if only.is_some_and(|o| o != case) {
            continue;
        }
        if only.is_none() && started.elapsed() > budget {
            break;
        }
        let scratch = Scratch::new(&format!("fuzz-{area}"));
        let mut rng = Rng::new(case_seed(area, case));
        let args = make(&mut rng, scratch.path());
        let outcome = run_bounded(&args);
        ran += 1;
        if let Err(why) = judge(&outcome).and_then(|()| extra(&args, &outcome)) {
            let kept = keep_failure(area, case, scratch.path(), &args);
            failures.push(format!(
                "seed {} case {case}: {why}\n    input kept in {} (its repro.sh reruns it exactly; EBPFX_FUZZ_SEED={} EBPFX_FUZZ_CASE={case} cargo test --test fuzz remakes it, the same unless it came from a live seed)",
                seed(),
                kept.display(),
                seed()
            ));
        }
    }
    eprintln!("fuzz {area}: {ran} cases in {:.1?}, {} failed (seed {})", started.elapsed(), failures.len(), seed());
    assert!(ran > 0 || only.is_some(), "fuzz {area}: no case ran");
    if !failures.is_empty() {
        let n = failures.len();
        failures.truncate(10);
        panic!("fuzz {area}: {n} of {ran} cases broke the rules:\n  {}", failures.join("\n  "));
    }
}

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// Seed inputs

/// A version-1 raw snapshot of one built-in config with one map of (key bytes, value) rows.
fn snapshot_json(config: &str, map: &str, key_size: usize, rows: &[(Vec<u8>, u64)]) -> serde_json::Value {
    let yaml =
        std::fs::read_to_string(manifest().join("configs").join(format!("{config}.yaml"))).expect("built-in config");
    let keys_hex: String = rows.iter().flat_map(|(k, _)| k.iter()).map(|b| format!("{b:02x}")).collect();
    serde_json::json!({
        "kind": "ebpfx-raw-snapshot",
        "version": 1,
        "window": {"start_unix_ns": 1_700_000_000_000_000_000u64, "end_unix_ns": 1_700_000_002_000_000_000u64, "length_ns": 2_000_000_000u64},
        "configs": [{
            "name": config,
            "origin": format!("configs/{config}.yaml (built-in)"),
            "yaml": yaml,
            "maps": [{
                "name": map, "key_size": key_size, "slots": 1, "per_cpu": false, "max_entries": 4096,
                "is_array": false, "keys_hex": keys_hex,
                "values": rows.iter().map(|r| r.1).collect::<Vec<u64>>(),
            }],
        }],
        "self_metrics": [
            {"name": "ebpfx_enabled_configs", "help": "The set of enabled configs", "kind": "gauge",
             "label_names": ["name"], "samples": [[[config], 1.0]]}
        ],
    })
}

/// A biosize snapshot: writes of 4 KiB, 0-byte flushes, a sum key.
fn biosize_snapshot() -> serde_json::Value {
    let key = |op: u8, bucket: u64| {
        let mut k = 0xfe00u32.to_ne_bytes().to_vec();
        k.extend_from_slice(&[op, 0, 0, 0]);
        k.extend_from_slice(&bucket.to_ne_bytes());
        k
    };
    let rows = vec![(key(1, 12), 1000), (key(1, 33), 4_096_000), (key(2, 0), 30), (key(2, 33), 0), (key(0, 9), 5)];
    snapshot_json("biosize", "bio_size_bytes", 16, &rows)
}

/// A syscalls snapshot: counts by syscall number.
fn syscalls_snapshot() -> serde_json::Value {
    let rows: Vec<(Vec<u8>, u64)> =
        [(0u64, 10u64), (1, 7), (39, 100), (1000, 1)].iter().map(|&(id, n)| (id.to_ne_bytes().to_vec(), n)).collect();
    snapshot_json("syscalls", "syscalls_total", 8, &rows)
}

/// Snapshots to mutate: hand-made ones, plus (as root) ones saved by short live runs of
/// built-ins with counters, histograms and stacks.
fn render_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> =
        [biosize_snapshot(), syscalls_snapshot()].iter().map(|v| v.to_string().into_bytes()).collect();
    if is_root() {
        let dir = Scratch::new("fuzz-seeds");
        let _lock = live_lock();
        for config in ["syscalls", "profile", "runqlat"] {
            let path = dir.path().join(format!("{config}.json"));
            let p = path.to_string_lossy().into_owned();
            let out = ebpfx(&["run", config, "--for", "300ms", "-q", "--save-raw", &p, "-o", "/dev/null"]);
            match std::fs::read(&path) {
                Ok(bytes) if out.status.success() => seeds.push(bytes),
                _ => eprintln!("fuzz: no live {config} seed ({:?}): {}", out.status, text(&out.stderr)),
            }
        }
    }
    seeds
}

/// `(name, yaml path, object path)` of every config with a compiled object: the built-ins and
/// the test configs (`check_*` configs go with the `checkme` object).
fn config_pairs() -> Vec<(String, PathBuf, PathBuf)> {
    let mut pairs = Vec::new();
    let objects = object_dir();
    for (yaml_dir, obj_dir) in
        [(manifest().join("configs"), objects.clone()), (manifest().join("tests/configs"), objects.join("tests"))]
    {
        let Ok(entries) = std::fs::read_dir(&yaml_dir) else { continue };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".yaml")).map(str::to_string))
            .collect();
        names.sort();
        for name in names {
            let object = if name.starts_with("check_") { "checkme".to_string() } else { name.clone() };
            // Built-in objects come from build.rs; test objects are compiled on first use.
            let obj = if yaml_dir.ends_with("tests/configs") {
                if !manifest().join("tests/bpf").join(format!("{object}.bpf.c")).is_file() {
                    continue;
                }
                common::test_object(&object)
            } else {
                obj_dir.join(format!("{object}.bpf.o"))
            };
            if obj.is_file() {
                pairs.push((name.clone(), yaml_dir.join(format!("{name}.yaml")), obj));
            }
        }
    }
    assert!(pairs.len() > 10, "found only {} config/object pairs under {}", pairs.len(), objects.display());
    pairs
}

// ---------------------------------------------------------------------------------------------
// The fuzz areas

#[test]
fn fuzz_render_of_mutated_snapshots() {
    let seeds = render_seeds();
    let formats = ["prom", "hist", "table", "json", "folded", "flamegraph"];
    fuzz_area(
        "render",
        |rng, dir| {
            let seed = rng.pick(&seeds).clone();
            let mutant = if rng.chance(25) { mutate_map_sizes(rng, &seed) } else { mutate_json(rng, &seed) };
            let path = dir.join("snapshot.json");
            std::fs::write(&path, mutant).expect("write mutant");
            let mut args = os(&["render", "--format", *rng.pick(&formats)]);
            args.push(path.into_os_string());
            args
        },
        |args, o| {
            if o.code == Some(0) && args.iter().any(|a| a == "prom") {
                check_prom_text(&o.stdout)?;
            }
            Ok(())
        },
    );
}

#[test]
fn fuzz_check_of_mutated_configs() {
    let pairs = config_pairs();
    fuzz_area(
        "config",
        |rng, dir| {
            let (name, yaml, obj) = rng.pick(&pairs);
            let text = std::fs::read(yaml).expect("read config");
            std::fs::write(dir.join(format!("{name}.yaml")), mutate_yaml(rng, &text)).expect("write mutant");
            std::fs::copy(obj, dir.join(format!("{name}.bpf.o"))).expect("copy object");
            let mut args = os(&["check", "--config-dir"]);
            args.push(dir.as_os_str().to_owned());
            args.push(name.into());
            args
        },
        |_, _| Ok(()),
    );
}

#[test]
fn fuzz_check_of_mutated_objects() {
    let pairs = config_pairs();
    fuzz_area(
        "object",
        |rng, dir| {
            let (name, yaml, obj) = rng.pick(&pairs);
            let bytes = std::fs::read(obj).expect("read object");
            std::fs::copy(yaml, dir.join(format!("{name}.yaml"))).expect("copy config");
            std::fs::write(dir.join(format!("{name}.bpf.o")), mutate_bytes(rng, &bytes)).expect("write mutant");
            let mut args = os(&["check", "--config-dir"]);
            args.push(dir.as_os_str().to_owned());
            args.push(name.into());
            args
        },
        |_, _| Ok(()),
    );
}

#[test]
fn mutators_are_deterministic_and_change_their_input() {
    let seed = biosize_snapshot().to_string().into_bytes();
    for case in 0..50 {
        let a = mutate_json(&mut Rng::new(case_seed("t", case)), &seed);
        let b = mutate_json(&mut Rng::new(case_seed("t", case)), &seed);
        assert_eq!(a, b, "case {case}: same seed, different mutant");
    }
    let changed = (0..50).filter(|&c| mutate_bytes(&mut Rng::new(case_seed("b", c)), &seed) != seed).count();
    assert!(changed > 40, "only {changed} of 50 byte mutants differ");
    assert!(check_prom_text("# HELP a_b x\n# TYPE a_b counter\na_b{x=\"1\\\"\",y=\"\"} 3\n").is_ok());
    assert!(check_prom_text("1bad 3\n").is_err());
    assert!(check_prom_text("ok{la bel=\"1\"} 3\n").is_err());
    assert!(check_prom_text("ok{l=\"a\\tb\"} 3\n").is_err());
}

// ---------------------------------------------------------------------------------------------
// Fixed regression inputs: issue 9 items 13-16

/// Runs `render FILE --format FORMAT` on a snapshot edited by `edit`.
fn render_edited(format: &str, edit: impl FnOnce(&mut serde_json::Value)) -> (Outcome, Scratch) {
    let dir = Scratch::new("fuzz-regression");
    let mut snap = biosize_snapshot();
    edit(&mut snap);
    let path = dir.path().join("s.json");
    std::fs::write(&path, snap.to_string()).expect("write snapshot");
    let mut args = os(&["render", "--format", format]);
    args.push(path.into_os_string());
    (run_bounded(&args), dir)
}

fn assert_usage_error(what: &str, o: &Outcome) {
    if let Err(why) = judge(o) {
        panic!("{what}: {why}");
    }
    assert_eq!(o.code, Some(2), "{what}: want exit 2 (bad input), stderr: {}", o.stderr);
}

#[test]
fn regression_item13_render_key_size_2_pow_63_is_refused() {
    // No keys, so that the key and value counts agree and the size itself is what is used.
    let (o, _d) = render_edited("prom", |s| {
        let map = &mut s["configs"][0]["maps"][0];
        map["key_size"] = serde_json::json!(1u64 << 63);
        map["keys_hex"] = serde_json::json!("");
        map["values"] = serde_json::json!([]);
    });
    assert_usage_error("key_size 2^63", &o);
}

#[test]
fn regression_item13_render_key_size_2_pow_40_is_refused() {
    // No keys, so that the key and value counts agree and the size itself is what is used.
    let (o, _d) = render_edited("prom", |s| {
        let map = &mut s["configs"][0]["maps"][0];
        map["key_size"] = serde_json::json!(1u64 << 40);
        map["keys_hex"] = serde_json::json!("");
        map["values"] = serde_json::json!([]);
    });
    assert_usage_error("key_size 2^40", &o);
}

#[test]
fn regression_item13_run_for_500000000000y_does_not_panic() {
    if !require_root("regression_item13_run_for_500000000000y_does_not_panic") {
        return;
    }
    let _lock = live_lock();
    let o =
        run_bounded(&os(&["run", "syscalls", "--for", "500000000000y", "-i", "100ms", "-c", "1", "-o", "/dev/null"]));
    if let Err(why) = judge(&o) {
        panic!("run --for 500000000000y: {why}");
    }
}

#[test]
fn regression_item14_render_self_metrics_with_bad_names_stays_valid_prom() {
    let (o, _d) = render_edited("prom", |s| {
        s["self_metrics"] = serde_json::json!([
            {"name": "1bad-name", "help": "x", "kind": "counter", "label_names": ["ok"], "samples": [[["a"], 1.0]]},
            {"name": "good_name", "help": "x", "kind": "gauge", "label_names": ["la bel"], "samples": [[["a"], 1.0]]}
        ]);
    });
    if let Err(why) = judge(&o) {
        panic!("bad self_metrics names: {why}");
    }
    if o.code == Some(0) {
        if let Err(why) = check_prom_text(&o.stdout) {
            panic!("bad self_metrics names: render wrote invalid Prometheus text: {why}");
        }
    }
}

#[test]
fn regression_item14_render_dev_zero_is_bounded() {
    let o = run_bounded(&os(&["render", "/dev/zero"]));
    assert_usage_error("render /dev/zero", &o);
    // Under the 1 GiB limit an unbounded reader dies of it; a bounded one stops first.
    assert!(!o.stderr.contains("out of memory"), "render /dev/zero read until memory ran out: {}", o.stderr);
}

#[test]
fn regression_item14_malformed_keys_hex_is_a_usage_error() {
    for bad in ["zz", "0", "0g00"] {
        let (o, _d) = render_edited("prom", |s| s["configs"][0]["maps"][0]["keys_hex"] = serde_json::json!(bad));
        assert_usage_error(&format!("keys_hex {bad:?}"), &o);
    }
}

/// Compiles a small BPF object (no headers needed) into `dir/NAME.bpf.o`.
fn compile_bpf(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.bpf.c"));
    let obj = dir.join(format!("{name}.bpf.o"));
    std::fs::write(&src, source).expect("write BPF source");
    let out = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .output()
        .expect("run clang (make deps installs it)");
    assert!(out.status.success(), "clang failed: {}", text(&out.stderr));
    obj
}

#[test]
fn regression_item15_check_refuses_absurd_max_entries() {
    let dir = Scratch::new("fuzz-huge-map");
    // A per-CPU array of 2^31 u64 values: ~16 GiB per CPU if the kernel were asked for it.
    let source = r#"
#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name
struct {
    __uint(type, 6); /* BPF_MAP_TYPE_PERCPU_ARRAY */
    __uint(max_entries, 1u << 31);
    __type(key, unsigned int);
    __type(value, unsigned long long);
} huge_total SEC(".maps");
SEC("raw_tp/sys_enter")
int count(void *ctx) { return 0; }
char LICENSE[] SEC("license") = "GPL";
"#;
    compile_bpf(dir.path(), "hugemap", source);
    dir.write(
        "hugemap.yaml",
        "metrics:\n  counters:\n    - name: huge_total\n      help: h\n      labels:\n        - name: cpu\n          size: 4\n          decoders: [{name: uint}]\n",
    );
    let mut args = os(&["check", "--config-dir"]);
    args.push(dir.path().as_os_str().to_owned());
    args.push("hugemap".into());
    let o = run_bounded(&args);
    if let Err(why) = judge(&o) {
        panic!("check of a 2^31-entry per-CPU map: {why}");
    }
    let all = format!("{}{}", o.stdout, o.stderr);
    assert_eq!(o.code, Some(2), "check passed a 2^31-entry per-CPU array map: {all}");
    assert!(all.contains("huge_total"), "the problem does not name the map: {all}");
}

/// `run syscalls` with `args` as root, `-v`: must fail before attaching, with an error.
fn fails_before_attaching(what: &str, args: &[&str]) {
    let mut all = vec!["-v", "run", "syscalls", "--for", "2s"];
    all.extend_from_slice(args);
    let o = run_bounded(&os(&all));
    if let Err(why) = judge(&o) {
        panic!("{what}: {why}");
    }
    assert_ne!(o.code, Some(0), "{what}: the run succeeded: {}", o.stderr);
    assert!(
        !o.stderr.contains("programs attached"),
        "{what}: the problem was found only after attaching: {}",
        o.stderr
    );
}

#[test]
fn regression_item16_unwritable_outputs_fail_before_the_window() {
    if !require_root("regression_item16_unwritable_outputs_fail_before_the_window") {
        return;
    }
    let _lock = live_lock();
    let dir = Scratch::new("fuzz-outputs");
    let slash = format!("{}/", dir.path().join("out.prom").display());
    fails_before_attaching("--output into /proc", &["--output", "/proc/ebpfx-fuzz.prom"]);
    fails_before_attaching("--output into /sys", &["--output", "/sys/ebpfx-fuzz.prom"]);
    fails_before_attaching("--output ending in /", &["--output", &slash]);
    fails_before_attaching("--save-raw into /proc", &["--save-raw", "/proc/ebpfx-fuzz.json", "-o", "/dev/null"]);
}

#[test]
fn regression_item16_btf_that_is_not_btf_names_the_flag() {
    if !require_root("regression_item16_btf_that_is_not_btf_names_the_flag") {
        return;
    }
    let _lock = live_lock();
    // biolatency's tp_btf programs need the BTF for CO-RE (syscalls' raw_tp ones do not).
    let o = run_bounded(&os(&["run", "biolatency", "--for", "1s", "--btf", "/etc/passwd", "-o", "/dev/null"]));
    if let Err(why) = judge(&o) {
        panic!("--btf /etc/passwd: {why}");
    }
    let all = format!("{}{}", o.stdout, o.stderr);
    assert_ne!(o.code, Some(0), "--btf /etc/passwd passed: {all}");
    assert!(all.contains("--btf") && !all.contains("Unknown error 4001"), "error does not name --btf: {all}");
}

/// `check` of the biosize object with its config edited by `edit`.
fn check_biosize_with(edit: impl FnOnce(String) -> String) -> Outcome {
    let dir = Scratch::new("fuzz-config");
    let yaml = std::fs::read_to_string(manifest().join("configs/biosize.yaml")).expect("biosize.yaml");
    dir.write("biosize.yaml", &edit(yaml));
    std::fs::copy(object_dir().join("biosize.bpf.o"), dir.path().join("biosize.bpf.o")).expect("copy object");
    let mut args = os(&["check", "--config-dir"]);
    args.push(dir.path().as_os_str().to_owned());
    args.push("biosize".into());
    run_bounded(&args)
}

#[test]
fn regression_item16_linear_histogram_with_1e8_buckets_is_refused_at_load() {
    let o = check_biosize_with(|y| {
        y.replace("bucket_type: exp2", "bucket_type: linear").replace("bucket_max: 32", "bucket_max: 100000000")
    });
    assert_usage_error("linear histogram with 10^8 buckets", &o);
}

#[test]
fn regression_item16_label_sizes_that_overflow_are_refused_at_load() {
    let o = check_biosize_with(|y| y.replacen("size: 4", "size: 18446744073709551615", 1));
    assert_usage_error("label sizes overflowing", &o);
}
