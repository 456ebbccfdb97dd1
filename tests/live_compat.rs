//! Live compatibility tests: configs in ebpf_exporter's format (tests/configs/NAME.yaml) beside
//! objects compiled from tests/bpf/NAME.bpf.c, run with `ebpfx --config-dir DIR run NAME` on this
//! kernel while a workload fills the maps; the printed labels and values are checked exactly
//! where the workload makes them exact. Root only; under CI=true a skip is a failure.
mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

/// Runs `names` from `dir` for `window` with extra environment, calls `workload` once attached,
/// and returns the Prometheus text. The run must exit 0 without warnings, pass promtool and
/// count no decoder errors.
fn run_configs(dir: &Scratch, names: &[&str], window: &str, env: &[(&str, &str)], workload: impl FnOnce()) -> String {
    let d = dir.path().to_str().expect("utf-8 dir");
    let mut args = vec!["--config-dir", d, "run"];
    args.extend_from_slice(names);
    args.extend_from_slice(&["--for", window, "--format", "prom"]);
    let run = start_attached_env(&args, names.len(), env);
    workload();
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{names:?}: {err}\n{prom}");
    assert!(!err.contains("warning"), "{names:?}: unexpected warning: {err}");
    promtool_check(&prom);
    for name in names {
        assert_eq!(
            prom_get(&prom, "ebpfx_decoder_errors_total", &[("config", name)]),
            Some(0.0),
            "{name}: decoder errors\n{prom}\n{err}"
        );
    }
    prom
}

/// Address of `name` in /proc/kallsyms (a later line wins, as for `kaddrs`).
fn kallsyms_address(kallsyms: &str, name: &str) -> u64 {
    let mut found = None;
    for line in kallsyms.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() == 3 && parts[2] == name {
            found = u64::from_str_radix(parts[0], 16).ok();
        }
    }
    found.unwrap_or_else(|| panic!("{name} is not in /proc/kallsyms"))
}

/// The symbol `ksym` should print for `addr` (exact match, the last alias in the file), or the
/// symbol `kstack` should print (greatest address <= addr, the last alias) when `containing`.
fn kallsyms_symbol(kallsyms: &str, addr: u64, containing: bool) -> Option<String> {
    let mut best: Option<(u64, String)> = None;
    for line in kallsyms.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() < 3 {
            continue;
        }
        let Ok(a) = u64::from_str_radix(parts[0], 16) else { continue };
        let fits = if containing { a <= addr } else { a == addr };
        if fits && best.as_ref().map_or(true, |(b, _)| a >= *b) {
            best = Some((a, parts[2].to_string()));
        }
    }
    best.map(|(_, n)| n)
}

/// Names pci.ids gives vendor 8086, device 8086:100e, class 02 and subclass 02/00, or
/// `missing pci.ids db` four times without a database (docs/config-format.md#decoders).
fn expected_pci(home: &Path) -> [String; 4] {
    let candidates =
        [home.join(".cache/pci.ids"), "/usr/share/hwdata/pci.ids".into(), "/usr/share/misc/pci.ids".into()];
    let Some(db) = candidates.iter().find(|p| p.exists()) else {
        return std::array::from_fn(|_| "missing pci.ids db".to_string());
    };
    let text = String::from_utf8_lossy(&std::fs::read(db).expect("read pci.ids")).into_owned();
    let (mut vendor, mut device, mut class, mut subclass) = (None, None, None, None);
    let (mut in_8086, mut in_class_02) = (false, false);
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("C ") {
            in_8086 = false;
            in_class_02 = rest.starts_with("02  ");
            if in_class_02 {
                class = Some(rest["02  ".len()..].to_string());
            }
        } else if !line.starts_with('\t') {
            in_class_02 = false;
            in_8086 = line.starts_with("8086  ");
            if in_8086 {
                vendor = Some(line["8086  ".len()..].to_string());
            }
        } else if let Some(name) = line.strip_prefix("\t100e  ").filter(|_| in_8086) {
            device = Some(name.to_string());
        } else if let Some(name) = line.strip_prefix("\t00  ").filter(|_| in_class_02) {
            subclass = Some(name.to_string());
        }
    }
    [vendor, device, class, subclass].map(|n| n.expect("pci.ids has 8086, 8086:100e, class 02 and 02/00"))
}

/// Every decoder, fed by a uprobe on examples/probe_target.rs: each call of
/// `ebpfx_probe_hit(a, b, text)` writes one key per decoder family (tests/bpf/decoders.bpf.c).
#[test]
fn live_compat_every_decoder_via_uprobe() {
    if !require_root("live_compat_every_decoder_via_uprobe") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["decoders"]);
    let home = Scratch::new("home");
    let path = path_with_probe_target();
    let home_s = home.path().to_str().expect("utf-8");
    let prom = run_configs(&dir, &["decoders"], "2s", &[("PATH", &path), ("HOME", home_s)], || {
        run_probe_target(
            &[
                b"0x0102030405060708,1,3,keep-me",
                b"2,5,2,plain",
                b"3,100,1,drop-me",
                b"4,0,1,\x07example\x03com",
                b"5,7,1,two-groups",
            ],
            None,
        )
    });
    let m = |name: &str, labels: &[(&str, &str)]| prom_get(&prom, name, labels);

    // uint on 1, 2, 4 and 8 bytes of a = 0x0102030405060708 (host order).
    let uint = "ebpfx_uint_total";
    assert_eq!(
        m(uint, &[("u8", "8"), ("u16", "1800"), ("u32", "84281096"), ("u64", "72623859790382856")]),
        Some(3.0),
        "{prom}"
    );
    assert_eq!(m(uint, &[("u8", "2"), ("u16", "2"), ("u32", "2"), ("u64", "2")]), Some(2.0));
    assert_eq!(prom_rows(&prom, uint).len(), 5);

    // hex: the four low bytes of a as stored (little-endian).
    assert_eq!(m("ebpfx_hex_total", &[("bytes", "08070605")]), Some(3.0));
    assert_eq!(m("ebpfx_hex_total", &[("bytes", "02000000")]), Some(2.0));

    // string: bytes before the first NUL.
    let s = "ebpfx_string_total";
    for (text, n) in [("keep-me", 3.0), ("plain", 2.0), ("drop-me", 1.0), ("two-groups", 1.0)] {
        assert_eq!(m(s, &[("text", text)]), Some(n), "string {text}\n{prom}");
    }
    assert_eq!(prom_rows(&prom, s).len(), 4, "the dname input goes to dname_total only");

    // regexp: `^keep-(.*)$` captures "me"; `^(two)-(groups)$` has two groups and never yields;
    // `^pla` (no group) yields the matched part only; "drop-me" matches nothing and is skipped.
    let r = "ebpfx_regexp_total";
    assert_eq!(m(r, &[("text", "me")]), Some(3.0), "{prom}");
    assert_eq!(m(r, &[("text", "pla")]), Some(2.0), "{prom}");
    assert_eq!(prom_rows(&prom, r).len(), 2, "skipped rows must vanish: {:?}", prom_rows(&prom, r));

    // dname: wire format \x07example\x03com.
    assert_eq!(m("ebpfx_dname_total", &[("name", "example.com")]), Some(1.0), "{prom}");

    // static_map: mapped (strict: unknown:N), passthru (allow_unknown), nomap (no static_map key).
    let st = "ebpfx_static_map_total";
    assert_eq!(m(st, &[("mapped", "two"), ("passthru", "two"), ("nomap", "empty mapping")]), Some(2.0), "{prom}");
    assert_eq!(m(st, &[("mapped", "three"), ("passthru", "3"), ("nomap", "empty mapping")]), Some(1.0));
    assert_eq!(m(st, &[("mapped", "unknown:8"), ("passthru", "8"), ("nomap", "empty mapping")]), Some(3.0));

    // inet_ip: IPv4, IPv6 with `::`, IPv4-mapped IPv6 printed as a dotted quad.
    let ip = "ebpfx_inet_ip_total";
    assert_eq!(m(ip, &[("v4", "127.0.0.8"), ("v6", "2001:db8::8"), ("v4mapped", "10.1.2.8")]), Some(3.0), "{prom}");
    assert_eq!(m(ip, &[("v4", "127.0.0.2"), ("v6", "2001:db8::2"), ("v4mapped", "10.1.2.2")]), Some(2.0));

    // errno and syscall after uint (x86_64 table: 8 lseek, 2 open, 3 close, 4 stat, 5 fstat).
    let es = "ebpfx_errno_syscall_total";
    if cfg!(target_arch = "x86_64") {
        assert_eq!(m(es, &[("errno", "ENOEXEC"), ("syscall", "lseek")]), Some(3.0), "{prom}");
        assert_eq!(m(es, &[("errno", "ENOENT"), ("syscall", "open")]), Some(2.0));
        assert_eq!(m(es, &[("errno", "ESRCH"), ("syscall", "close")]), Some(1.0));
        assert_eq!(m(es, &[("errno", "EINTR"), ("syscall", "stat")]), Some(1.0));
        assert_eq!(m(es, &[("errno", "EIO"), ("syscall", "fstat")]), Some(1.0));
    }

    // ksym/kstack on addresses ebpfx injected from the config's kaddrs.
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("read /proc/kallsyms");
    let sched = kallsyms_address(&kallsyms, "schedule");
    let nanosleep = kallsyms_address(&kallsyms, "do_nanosleep");
    let function = kallsyms_symbol(&kallsyms, sched, false).expect("symbol at schedule");
    let inside =
        kallsyms_symbol(&kallsyms, sched + 1, false).unwrap_or_else(|| format!("unknown_addr:{:#x}", sched + 1));
    let stack = format!(
        "{}\n{}",
        kallsyms_symbol(&kallsyms, sched + 4, true).expect("frame 1"),
        kallsyms_symbol(&kallsyms, nanosleep + 8, true).expect("frame 2")
    );
    assert_eq!(function, "schedule");
    assert_eq!(
        m("ebpfx_ksym_total", &[("function", &function), ("inside", &inside), ("stack", &stack)]),
        Some(8.0),
        "{prom}"
    );
    assert!(prom.contains("stack=\"schedule\\ndo_nanosleep\""), "kstack frames joined by an escaped newline\n{prom}");

    // cgroup: the path of the directory whose inode is the id.
    let cg = prom_rows(&prom, "ebpfx_cgroup_total");
    assert!(!cg.is_empty(), "{prom}");
    for (labels, _) in &cg {
        let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).expect("label");
        let (path, id) = (get("cgroup"), get("cgroup_id"));
        assert!(path.starts_with("/sys/fs/cgroup"), "cgroup path {path}");
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(&path).map(|md| md.ino()).unwrap_or(0);
        assert_eq!(ino.to_string(), id, "inode of {path}");
    }
    assert_eq!(cg.iter().map(|(_, v)| v).sum::<f64>(), 8.0);

    // ifname (1 and an index no interface has) and majorminor (0xfe00 = 254:0).
    let lo_index = std::fs::read_to_string("/sys/class/net/lo/ifindex").expect("lo ifindex");
    let partitions = std::fs::read_to_string("/proc/partitions").expect("/proc/partitions");
    let disk = partitions
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 4 && f[0] == "254" && f[1] == "0")
        .map(|f| f[3].to_string())
        .unwrap_or_else(|| "unknown:254:0".to_string());
    if lo_index.trim() == "1" {
        assert_eq!(m("ebpfx_device_total", &[("interface", "lo"), ("device", &disk)]), Some(1.0), "{prom}");
    }
    assert_eq!(m("ebpfx_device_total", &[("interface", "unknown:60000"), ("device", &disk)]), Some(7.0), "{prom}");

    // pci_*: names from pci.ids, or `missing pci.ids db` without one.
    let [vendor, device, class, subclass] = expected_pci(home.path());
    assert_eq!(
        m("ebpfx_pci_total", &[("vendor", &vendor), ("device", &device), ("class", &class), ("subclass", &subclass)]),
        Some(8.0),
        "{prom}"
    );
}

/// exp2, exp2zero, linear (multiplier 0.5), fixed, and exp2 with a label and a multiplier, fed
/// the values 1 (x3), 5 (x2), 100 and 0 by the uprobe (tests/bpf/buckets.bpf.c).
#[test]
fn live_compat_every_bucket_type() {
    if !require_root("live_compat_every_bucket_type") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["buckets"]);
    let path = path_with_probe_target();
    let prom = run_configs(&dir, &["buckets"], "2s", &[("PATH", &path)], || {
        run_probe_target(&[b"1,1,3", b"2,5,2", b"3,100,1", b"4,0,1"], None)
    });
    // Buckets as (le, cumulative count), then sum and count.
    let check = |name: &str, labels: &[(&str, &str)], buckets: &[(&str, f64)], sum: f64, count: f64| {
        let got: Vec<(String, f64)> = prom_rows(&prom, &format!("{name}_bucket"))
            .into_iter()
            .filter(|(l, _)| labels.iter().all(|(k, v)| l.iter().any(|(n, x)| n == k && x == v)))
            .map(|(l, v)| (l.into_iter().find(|(n, _)| n == "le").map(|(_, v)| v).unwrap_or_default(), v))
            .collect();
        let want: Vec<(String, f64)> = buckets.iter().map(|(le, v)| (le.to_string(), *v)).collect();
        assert_eq!(got, want, "{name} {labels:?}\n{prom}");
        assert_eq!(prom_get(&prom, &format!("{name}_sum"), labels), Some(sum), "{name} sum");
        assert_eq!(prom_get(&prom, &format!("{name}_count"), labels), Some(count), "{name} count");
    };
    // exp2: slot ceil(log2 v): 0 and 1 -> le 1, 5 -> le 8, 100 -> le 128.
    check(
        "ebpfx_exp2_values",
        &[],
        &[
            ("1", 4.0),
            ("2", 4.0),
            ("4", 4.0),
            ("8", 6.0),
            ("16", 6.0),
            ("32", 6.0),
            ("64", 6.0),
            ("128", 7.0),
            ("256", 7.0),
            ("512", 7.0),
            ("1024", 7.0),
            ("+Inf", 7.0),
        ],
        113.0,
        7.0,
    );
    // exp2zero: 0 alone in le 0, then le 2^(i-1).
    check(
        "ebpfx_exp2zero_values",
        &[],
        &[
            ("0", 1.0),
            ("1", 4.0),
            ("2", 4.0),
            ("4", 4.0),
            ("8", 6.0),
            ("16", 6.0),
            ("32", 6.0),
            ("64", 6.0),
            ("128", 7.0),
            ("256", 7.0),
            ("512", 7.0),
            ("+Inf", 7.0),
        ],
        113.0,
        7.0,
    );
    // linear, multiplier 0.5: slot = min(v, 10), le = slot x 0.5; the sum is scaled too.
    check(
        "ebpfx_linear_values",
        &[],
        &[
            ("0", 1.0),
            ("0.5", 4.0),
            ("1", 4.0),
            ("1.5", 4.0),
            ("2", 4.0),
            ("2.5", 6.0),
            ("3", 6.0),
            ("3.5", 6.0),
            ("4", 6.0),
            ("4.5", 6.0),
            ("5", 7.0),
            ("+Inf", 7.0),
        ],
        56.5,
        7.0,
    );
    // fixed [1, 5, 100]: the value 0 is in no configured key, so it is not counted; the sum is
    // raw[last key + 1].
    check("ebpfx_fixed_values", &[], &[("1", 3.0), ("5", 5.0), ("100", 6.0), ("+Inf", 6.0)], 113.0, 6.0);
    // exp2 with a label and multiplier 0.001: two label sets.
    let le = ["0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128", "0.256", "0.512", "1.024"];
    let small: Vec<(&str, f64)> =
        le.iter().enumerate().map(|(i, l)| (*l, if i < 3 { 4.0 } else { 6.0 })).chain([("+Inf", 6.0)]).collect();
    check("ebpfx_exp2_sized_seconds", &[("size", "small")], &small, 0.013000000000000001, 6.0);
    let large: Vec<(&str, f64)> =
        le.iter().enumerate().map(|(i, l)| (*l, if i < 7 { 0.0 } else { 1.0 })).chain([("+Inf", 1.0)]).collect();
    check("ebpfx_exp2_sized_seconds", &[("size", "large")], &large, 0.1, 1.0);
}

fn possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("possible CPUs");
    text.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().expect("cpu") - a.parse::<usize>().expect("cpu") + 1,
            None => 1,
        })
        .sum()
}

fn online(cpu: usize) -> bool {
    cpu == 0
        || std::fs::read_to_string(format!("/sys/devices/system/cpu/cpu{cpu}/online"))
            .map(|s| s.trim() == "1")
            .unwrap_or(false)
}

/// Per-CPU arrays with the `cpu` label (one row per slot and possible CPU, zeros included),
/// without it (summed), with only `cpu`, a per-CPU hash with `cpu`, and label-less counters (no braces), fed by uprobe calls
/// pinned to CPU 0 and CPU 1 (tests/bpf/percpu.bpf.c).
#[test]
fn live_compat_percpu_maps_and_no_label_counters() {
    if !require_root("live_compat_percpu_maps_and_no_label_counters") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["percpu"]);
    let path = path_with_probe_target();
    let ncpus = possible_cpus();
    let second = if ncpus > 1 && online(1) { Some(1) } else { None };
    let prom = run_configs(&dir, &["percpu"], "2s", &[("PATH", &path)], || {
        run_probe_target(&[b"1,0,5"], Some(0));
        if let Some(cpu) = second {
            run_probe_target(&[b"1,0,7", b"2,0,1"], Some(cpu));
        }
    });
    let (c1, c2) = if second.is_some() { (7.0, 1.0) } else { (0.0, 0.0) };
    let total = 5.0 + c1 + c2;

    let rows = prom_rows(&prom, "ebpfx_percpu_slot_cpu_total");
    assert_eq!(rows.len(), 4 * ncpus, "one row per slot and possible CPU, zeros included\n{prom}");
    let cpu_slot =
        |cpu: &str, slot: &str| prom_get(&prom, "ebpfx_percpu_slot_cpu_total", &[("cpu", cpu), ("slot", slot)]);
    assert_eq!(cpu_slot("0", "1"), Some(5.0), "{prom}");
    assert_eq!(cpu_slot("0", "0"), Some(0.0));
    assert_eq!(cpu_slot("0", "2"), Some(0.0));
    if second.is_some() {
        assert_eq!(cpu_slot("1", "1"), Some(7.0), "{prom}");
        assert_eq!(cpu_slot("1", "2"), Some(1.0));
        assert_eq!(cpu_slot("1", "3"), Some(0.0));
    }
    // Labels are printed sorted by name: cpu before slot.
    assert!(prom.contains("ebpfx_percpu_slot_cpu_total{cpu=\"0\",slot=\"1\"} 5\n"), "{prom}");

    let summed = |slot: &str| prom_get(&prom, "ebpfx_percpu_slot_total", &[("slot", slot)]);
    assert_eq!(prom_rows(&prom, "ebpfx_percpu_slot_total").len(), 4);
    assert_eq!(summed("1"), Some(5.0 + c1), "{prom}");
    assert_eq!(summed("2"), Some(c2));
    assert_eq!(summed("0"), Some(0.0));

    assert_eq!(prom_rows(&prom, "ebpfx_percpu_only_cpu_total").len(), ncpus, "{prom}");
    assert_eq!(prom_get(&prom, "ebpfx_percpu_only_cpu_total", &[("cpu", "0")]), Some(5.0));
    if second.is_some() {
        assert_eq!(prom_get(&prom, "ebpfx_percpu_only_cpu_total", &[("cpu", "1")]), Some(c1 + c2));
    }

    // A per-CPU hash: only the keys written, each with every possible CPU.
    let hash = |cpu: &str, slot: &str| prom_get(&prom, "ebpfx_percpu_hash_cpu_total", &[("cpu", cpu), ("slot", slot)]);
    let keys = if second.is_some() { 2 } else { 1 };
    assert_eq!(prom_rows(&prom, "ebpfx_percpu_hash_cpu_total").len(), keys * ncpus, "{prom}");
    assert_eq!(hash("0", "1"), Some(5.0), "{prom}");
    if second.is_some() {
        assert_eq!(hash("1", "1"), Some(7.0), "{prom}");
        assert_eq!(hash("0", "2"), Some(0.0), "{prom}");
        assert_eq!(hash("1", "2"), Some(1.0), "{prom}");
    }

    assert!(prom.contains(&format!("\nebpfx_percpu_nolabel_total {total}\n")), "{prom}");
    assert!(prom.contains(&format!("\nebpfx_nolabel_total {total}\n")), "{prom}");
}

/// A USDT probe of Debian's /usr/bin/python3 (`usdt/python3:python:import__find__load__start`,
/// `python3` resolved through $PATH at attach time): module names as labels.
#[test]
fn live_compat_usdt_python_imports() {
    if !require_root("live_compat_usdt_python_imports") {
        return;
    }
    let python = Path::new("/usr/bin/python3");
    let notes = std::process::Command::new("readelf").args(["-n", "/usr/bin/python3"]).output();
    let has_probe = notes.map(|o| text(&o.stdout).contains("import__find__load__start")).unwrap_or(false);
    if !python.exists() || !has_probe {
        assert!(
            std::env::var("CI").map(|v| v != "true").unwrap_or(true),
            "CI=true: /usr/bin/python3 with USDT notes is required"
        );
        eprintln!("SKIPPED live_compat_usdt_python_imports: /usr/bin/python3 without USDT probes");
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["usdt"]);
    let prom = run_configs(&dir, &["usdt"], "2s", &[("PATH", "/usr/bin:/bin")], || {
        let st = std::process::Command::new(python)
            .args(["-c", "import json, decimal, email.parser"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .status()
            .expect("run python3");
        assert!(st.success());
    });
    let rows = prom_rows(&prom, "ebpfx_python_imports_total");
    let modules: Vec<&str> = rows.iter().flat_map(|(l, _)| l.iter().map(|(_, v)| v.as_str())).collect();
    for m in ["json", "decimal", "email.parser"] {
        assert!(modules.contains(&m), "module {m} not seen: {modules:?}");
    }
    assert!(rows.len() >= 10, "python imports dozens of modules: {modules:?}");
    assert!(rows.iter().all(|(l, v)| l.len() == 1 && l[0].0 == "module" && *v >= 1.0), "{rows:?}");
}

/// A `perf_event/type=1,config=0,frequency=99` program (software cpu-clock, one event per
/// online CPU) samples a thread named ebpfx-burn that spins for a second.
#[test]
fn live_compat_perf_event_cpu_clock() {
    if !require_root("live_compat_perf_event_cpu_clock") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["perf_sampling"]);
    // A name of its own: another test run on the machine may burn CPU at the same time.
    let burn = unique_comm("ebpfx-burn");
    let prom = run_configs(&dir, &["perf_sampling"], "2s", &[], || {
        let burner = std::thread::Builder::new()
            .name(burn.clone())
            .spawn(|| {
                let start = std::time::Instant::now();
                let mut x = 1u64;
                while start.elapsed() < Duration::from_millis(1000) {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            })
            .expect("spawn burner");
        burner.join().expect("burner");
    });
    // 99 Hz for 1 s of CPU time is ~99 samples; other load on the machine may take some of it.
    let n = prom_get(&prom, "ebpfx_cpu_samples_total", &[("comm", &burn)]).unwrap_or(0.0);
    assert!((10.0..=250.0).contains(&n), "{burn} sampled {n} times\n{prom}");
}

/// An `xdp/lo` program counts 100 UDP datagrams to 127.0.0.1:9 and the ICMP port-unreachable
/// replies it sends back.
#[test]
fn live_compat_xdp_lo() {
    if !require_root("live_compat_xdp_lo") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["xdp_lo"]);
    let prom = run_configs(&dir, &["xdp_lo"], "2s", &[], || {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        for _ in 0..100 {
            // Port 9 (discard) is closed here: each datagram draws an ICMP error, which a
            // connectionless socket does not report, so sends succeed.
            let _ = sock.send_to(b"ebpfx", "127.0.0.1:9");
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let udp = prom_get(&prom, "ebpfx_xdp_packets_total", &[("ip", "ipv4"), ("protocol", "udp"), ("dst_port", "9")]);
    assert!(udp.unwrap_or(0.0) >= 100.0, "udp to port 9: {udp:?}\n{prom}");
    let icmp = prom_get(&prom, "ebpfx_xdp_packets_total", &[("ip", "ipv4"), ("protocol", "icmp"), ("dst_port", "0")]);
    assert!(icmp.unwrap_or(0.0) >= 1.0, "ICMP port unreachable replies: {icmp:?}\n{prom}");
}

const FENTRY: &str = "mixed_nanosleep_fentry";

/// An object with an fentry program (which this kernel cannot load) beside a tp_btf one: the run
/// warns, naming the fentry program, and still prints the tp_btf program's metric (exit 0).
#[test]
fn live_compat_unloadable_fentry_is_left_out_with_a_warning() {
    if !require_root("live_compat_unloadable_fentry_is_left_out_with_a_warning") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["fentry_mixed"]);
    let d = dir.path().to_str().expect("utf-8");
    let run = start_attached(&["--config-dir", d, "run", "fentry_mixed", "--for", "1s", "--format", "prom"], 1);
    getpid_calls(5000);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    let warning = err.lines().find(|l| l.contains("warning")).unwrap_or_default();
    assert!(
        warning.contains(FENTRY) && warning.contains("fentry/do_nanosleep"),
        "the warning must name the program and its section: {err}"
    );
    assert!(err.contains("1 of 2 programs attached"), "{err}");
    if cfg!(target_arch = "x86_64") {
        let getpid = prom_get(&prom, "ebpfx_mixed_syscalls_total", &[("syscall", "getpid")]).unwrap_or(0.0);
        assert!(getpid >= 5000.0, "getpid calls seen by the tp_btf program: {getpid}\n{prom}");
    }
    // The fentry program's map exists (an array) but nothing fills it.
    assert_eq!(prom_get(&prom, "ebpfx_mixed_nanosleeps_total", &[]), Some(0.0), "{prom}");
    promtool_check(&prom);
}

/// The same object with --strict: the run fails (exit 1) before printing anything.
#[test]
fn live_compat_unloadable_fentry_fails_with_strict() {
    if !require_root("live_compat_unloadable_fentry_fails_with_strict") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["fentry_mixed"]);
    let d = dir.path().to_str().expect("utf-8");
    let out = ebpfx(&["--config-dir", d, "run", "fentry_mixed", "--strict", "--for", "1s", "--format", "prom"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "nothing printed: {}", text(&out.stdout));
    assert!(err.contains("fentry_mixed"), "the error names the config: {err}");
}

/// With --strict, the error must say which program could not be loaded.
#[test]
fn live_compat_strict_error_names_the_fentry_program() {
    if !require_root("live_compat_strict_error_names_the_fentry_program") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["fentry_mixed"]);
    let d = dir.path().to_str().expect("utf-8");
    let out = ebpfx(&["--config-dir", d, "run", "fentry_mixed", "--strict", "--for", "1s", "--format", "prom"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(FENTRY) && err.contains("fentry/do_nanosleep"), "{err}");
}

/// A system call number no kernel defines, which tests/bpf/perf_events.bpf.c records besides
/// getpid: only the test makes it.
const PRIVATE_SYSCALL: i64 = 7_340_999;

/// A `perf_event_array` counter: every record the program emits is counted by its bytes.
#[test]
fn live_compat_perf_event_array_counts_records() {
    if !require_root("live_compat_perf_event_array_counts_records") {
        return;
    }
    let _l = live_lock();
    let dir = test_config_dir(&["perf_events"]);
    let prom = run_configs(&dir, &["perf_events"], "2s", &[], || {
        getpid_calls(3000);
        for _ in 0..1000 {
            // SAFETY: an undefined system call number only returns ENOSYS.
            unsafe {
                libc::syscall(PRIVATE_SYSCALL);
            }
        }
    });
    let getpid = prom_value(&prom, "ebpfx_syscall_events_total{syscall=\"getpid\"}").unwrap_or(0.0);
    let private =
        prom_value(&prom, &format!("ebpfx_syscall_events_total{{syscall=\"unknown_syscall:{PRIVATE_SYSCALL}\"}}"))
            .unwrap_or(0.0);
    assert!(getpid >= 3000.0, "getpid records {getpid}\n{prom}");
    // Nothing else on the machine makes this call: exactly the test's records.
    assert_eq!(private, 1000.0, "records of syscall {PRIVATE_SYSCALL}\n{prom}");
}

/// `cgroup_id_map`: only cgroups whose path matches the regexps are counted.
#[test]
fn live_compat_cgroup_id_map_selects_cgroups() {
    if !require_root("live_compat_cgroup_id_map_selects_cgroups") {
        return;
    }
    let _l = live_lock();
    let v2 = cgroup_v2_root();
    let cg = format!("{v2}/ebpfx-cgtest-{}", std::process::id());
    std::fs::create_dir(&cg).expect("create test cgroup");
    let dir = test_config_dir(&["cgroup_filter"]);
    let prom = run_configs(&dir, &["cgroup_filter"], "2s", &[], || {
        let script = format!(
            "echo $$ > {cg}/cgroup.procs && exec /usr/bin/python3 -c 'import os\nfor _ in range(2000): os.getpid()'"
        );
        let st = std::process::Command::new("sh").args(["-c", &script]).status().expect("child");
        assert!(st.success());
        getpid_calls(5000); // from the test's own cgroup: must not be counted
    });
    let _ = std::fs::remove_dir(&cg);
    let samples = prom_samples(&prom, "ebpfx_filtered_getpid_total");
    assert_eq!(samples.len(), 1, "only the selected cgroup is counted: {samples:?}");
    let (labels, value) = &samples[0];
    assert!(labels.contains(&format!("ebpfx-cgtest-{}", std::process::id())), "{labels}");
    assert!((2000.0..2100.0).contains(value), "getpid calls in the cgroup: {value}");
}

/// A program that loads but cannot attach (a kprobe on a kernel without kprobes): left out with a
/// warning by default; with --strict the run fails and nothing stays attached, including the
/// program that attached before the failure.
#[test]
fn live_compat_unattachable_kprobe_left_out_or_strict_failure_detaches_everything() {
    if !require_root("live_compat_unattachable_kprobe_left_out_or_strict_failure_detaches_everything") {
        return;
    }
    let _l = live_lock();
    // The kprobe PMU exists exactly when the kernel has kprobes (CONFIG_KPROBES).
    if std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists() {
        eprintln!("this kernel has kprobes: the attach failure this test needs cannot happen here");
        return;
    }
    let dir = test_config_dir(&["kprobe_mixed"]);
    let d = dir.path().to_str().expect("utf-8");
    let run = start_attached(&["--config-dir", d, "run", "kprobe_mixed", "--for", "1s", "--format", "prom"], 1);
    getpid_calls(2000);
    let (code, prom, err) = run.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("kmixed_nanosleep (kprobe/do_nanosleep) left out"), "{err}");
    assert!(err.contains("kprobe support"), "the warning says why: {err}");
    let getpid = prom_get(&prom, "ebpfx_kmixed_syscalls_total", &[("syscall", "getpid")]).unwrap_or(0.0);
    assert!(getpid >= 2000.0, "{prom}");

    let out = ebpfx(&["--config-dir", d, "run", "kprobe_mixed", "--strict", "--for", "1s", "--format", "prom"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("kmixed_nanosleep") && err.contains("failed to attach"), "{err}");
    assert!(out.stdout.is_empty());
    // Nothing of this object may remain loaded (the kernel frees programs asynchronously).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = libbpf_rs::query::ProgInfoIter::default()
            .map(|p| p.name.to_string_lossy().into_owned())
            .filter(|n| n.starts_with("kmixed_"))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still loaded after a --strict failure: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
