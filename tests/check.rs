//! `ebpfx check`: configs in ebpf_exporter's format against the object compiled from
//! tests/bpf/checkme.bpf.c (maps `requests_total` with a 16-byte struct key, `narrow_total` with
//! 4-byte values, `by_id_total` with a u64 key). A clean config prints `NAME: ok` and exits 0;
//! each kind of mismatch is reported (exit 2) with every problem listed. Without `--attach`
//! nothing touches the kernel, so these run as any user.
mod common;
use common::*;

/// `ebpfx --config-dir DIR check NAMES...` over tests/configs/NAME.yaml + checkme.bpf.o:
/// (exit code, stdout, stderr).
fn check(names: &[&str], extra: &[&str]) -> (Option<i32>, String, String) {
    let dir = Scratch::new("check");
    for name in names {
        add_test_config(&dir, name, name, "checkme");
    }
    let d = dir.path().to_str().expect("utf-8 dir");
    let mut args = vec!["--config-dir", d, "check"];
    args.extend_from_slice(names);
    args.extend_from_slice(extra);
    let out = ebpfx(&args);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Problem lines (`  - ...`) printed for one config, with their continuation lines.
fn problems(stdout: &str, name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut inside = false;
    for line in stdout.lines() {
        if !line.starts_with(' ') {
            inside = line.starts_with(&format!("{name}: "));
            continue;
        }
        if !inside {
            continue;
        }
        match line.strip_prefix("  - ") {
            Some(p) => out.push(p.to_string()),
            None => {
                if let Some(last) = out.last_mut() {
                    last.push('\n');
                    last.push_str(line.trim());
                }
            }
        }
    }
    out
}

const MISSING: &str = "config check_missing_map: metric absent_total: the BPF object has no map named \"absent_total\"";
const VALUE: &str = "metric narrow_total: value size of map \"narrow_total\" is 4 bytes, expected 8 (u64)";
const MISALIGNED: [&str; 3] = [
    "label \"device\" has size 2 but member dev is 4 bytes",
    "label \"operation\" starts at byte 2, where no member of struct t_check_key starts",
    "key struct t_check_key (16 bytes)",
];

#[test]
fn check_clean_config_is_ok() {
    let (code, out, err) = check(&["check_clean"], &[]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out, "check_clean: ok\n");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn check_every_live_test_config_is_ok() {
    // The configs of tests/live_compat.rs, each against its own object.
    let names = ["decoders", "buckets", "percpu", "usdt", "perf_sampling", "xdp_lo", "fentry_mixed"];
    let dir = test_config_dir(&names);
    let d = dir.path().to_str().expect("utf-8 dir");
    let mut args = vec!["--config-dir", d, "check"];
    args.extend_from_slice(&names);
    let out = ebpfx(&args);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let want: String = names.iter().map(|n| format!("{n}: ok\n")).collect();
    assert_eq!(stdout, want);
}

#[test]
fn check_reports_a_missing_map_with_the_maps_there_are() {
    let (code, out, err) = check(&["check_missing_map"], &[]);
    assert_eq!(code, Some(2), "{out}{err}");
    let p = problems(&out, "check_missing_map");
    assert_eq!(p.len(), 1, "{out}");
    assert!(p[0].starts_with(MISSING), "{out}");
    assert!(p[0].contains("maps in the object: requests_total, narrow_total, by_id_total"), "{out}");
    assert!(out.starts_with("check_missing_map: 1 problem(s)\n"), "{out}");
    assert!(err.contains("check failed for check_missing_map"), "{err}");
}

#[test]
fn check_reports_a_value_size_other_than_8() {
    let (code, out, err) = check(&["check_value_size"], &[]);
    assert_eq!(code, Some(2), "{out}{err}");
    let p = problems(&out, "check_value_size");
    assert_eq!(p, vec![format!("config check_value_size: {VALUE}")], "{out}");
}

#[test]
fn check_reports_a_key_size_other_than_the_labels() {
    let (code, out, err) = check(&["check_key_size"], &[]);
    assert_eq!(code, Some(2), "{out}{err}");
    let p = problems(&out, "check_key_size");
    assert_eq!(p.len(), 1, "{out}");
    assert!(
        p[0].starts_with(
            "config check_key_size: metric requests_total: map key is 16 bytes but the labels' sizes and paddings add up to 8"
        ),
        "{out}"
    );
}

#[test]
fn check_reports_labels_misaligned_with_the_key_struct() {
    let (code, out, err) = check(&["check_misaligned"], &[]);
    assert_eq!(code, Some(2), "{out}{err}");
    let p = problems(&out, "check_misaligned");
    assert_eq!(p.len(), 1, "the labels add up to the key size, only the layout is wrong: {out}");
    assert!(p[0].starts_with("config check_misaligned: metric requests_total: labels do not line up"), "{out}");
    for needle in MISALIGNED {
        assert!(p[0].contains(needle), "{needle:?} missing:\n{out}");
    }
    // The key struct's members as BTF describes them, beside the labels.
    for member in ["0..4   dev (4 bytes)", "4..5   op (1 bytes)", "8..16  bucket (8 bytes)"] {
        assert!(p[0].contains(member), "{member:?} missing:\n{out}");
    }
}

#[test]
fn check_lists_every_problem_of_a_config() {
    let (code, out, err) = check(&["check_all", "check_clean"], &[]);
    assert_eq!(code, Some(2), "{out}{err}");
    let p = problems(&out, "check_all");
    assert_eq!(p.len(), 4, "{out}");
    assert!(out.starts_with("check_all: 4 problem(s)\n"), "{out}");
    assert!(p.iter().any(|l| l.contains("no map named \"absent_total\"")), "{out}");
    assert!(p.iter().any(|l| l.contains(VALUE)), "{out}");
    assert!(
        p.iter().any(
            |l| l.contains("metric by_id_total: map key is 8 bytes but the labels' sizes and paddings add up to 4")
        ),
        "{out}"
    );
    assert!(p.iter().any(|l| l.contains("metric requests_total") && MISALIGNED.iter().all(|m| l.contains(m))), "{out}");
    // The clean config given alongside is still reported clean.
    assert!(out.contains("\ncheck_clean: ok\n"), "{out}");
    assert!(err.contains("check failed for check_all") && !err.contains("check_clean"), "{err}");
}

#[test]
fn run_refuses_a_mismatched_config_before_loading() {
    // `run` validates the same way before anything is loaded (exit 2, no root needed).
    let dir = Scratch::new("check-run");
    add_test_config(&dir, "check_all", "check_all", "checkme");
    let d = dir.path().to_str().expect("utf-8 dir");
    let out = ebpfx(&["--config-dir", d, "run", "check_all", "--for", "1s"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(out.stdout.is_empty());
    assert!(err.contains("no map named \"absent_total\"") && err.contains(VALUE), "{err}");
}

#[test]
fn check_attach_names_a_program_that_cannot_load() {
    if !require_root("check_attach_names_a_program_that_cannot_load") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["fentry_mixed"]);
    add_test_config(&dir, "check_clean", "check_clean", "checkme");
    let d = dir.path().to_str().expect("utf-8 dir");
    let out = ebpfx(&["--config-dir", d, "check", "--attach", "fentry_mixed", "check_clean"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}{}", text(&out.stderr));
    let p = problems(&stdout, "fentry_mixed");
    assert_eq!(p.len(), 1, "{stdout}");
    assert!(p[0].contains("program mixed_nanosleep_fentry (fentry/do_nanosleep) cannot be used"), "{stdout}");
    assert!(stdout.contains("\ncheck_clean: ok\n"), "{stdout}");
}
