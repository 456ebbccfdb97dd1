//! End-to-end decode tests: ebpf_exporter's worked examples, per-CPU shapes, aggregation, every
//! system-dependent decoder against fixture files, malformed input, and a 100k-entry map.
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::*;
use crate::config::{DecoderSpec, HistogramSpec};
use crate::model::{BucketType, HistogramSeries, Sample};

fn dec(name: &str) -> DecoderSpec {
    DecoderSpec { name: name.to_string(), static_map: None, allow_unknown: false, regexps: None }
}

fn smap(pairs: &[(&str, &str)], allow_unknown: bool) -> DecoderSpec {
    let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    DecoderSpec { name: "static_map".into(), static_map: Some(map), allow_unknown, regexps: None }
}

fn re(patterns: &[&str]) -> DecoderSpec {
    DecoderSpec {
        name: "regexp".into(),
        static_map: None,
        allow_unknown: false,
        regexps: Some(patterns.iter().map(|p| p.to_string()).collect()),
    }
}

fn label(name: &str, size: usize, padding: usize, decoders: Vec<DecoderSpec>) -> Label {
    Label { name: name.to_string(), size, padding, decoders }
}

fn uint(name: &str, size: usize) -> Label {
    label(name, size, 0, vec![dec("uint")])
}

fn counter(name: &str, labels: Vec<Label>) -> MetricConfig {
    MetricConfig {
        name: name.into(),
        help: "help".into(),
        labels,
        kind: MetricKind::Counter { perf_event_array: false },
    }
}

fn histogram(name: &str, labels: Vec<Label>, h: HistogramSpec) -> MetricConfig {
    MetricConfig { name: name.into(), help: "help".into(), labels, kind: MetricKind::Histogram(h) }
}

fn raw(key_size: usize, slots: usize, per_cpu: bool, entries: &[(Vec<u8>, Vec<u64>)]) -> RawMap {
    let mut m = RawMap { name: "m".into(), key_size, slots, per_cpu, ..Default::default() };
    for (k, v) in entries {
        m.push(k, v);
    }
    m
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// A temp dir with kallsyms, partitions, a cgroup tree, pci.ids and a net class directory.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        std::fs::write(p.join("kallsyms"), KALLSYMS).expect("kallsyms");
        std::fs::write(p.join("partitions"), PARTITIONS).expect("partitions");
        std::fs::create_dir_all(p.join("cgroup/system.slice/ssh.service")).expect("cgroup");
        std::fs::create_dir_all(p.join("cgroup/user.slice")).expect("cgroup");
        std::fs::write(p.join("pci.ids"), super::pci::tests::PCI_IDS).expect("pci");
        for (n, i) in [("lo", 1), ("eth0", 4)] {
            std::fs::create_dir_all(p.join("net").join(n)).expect("net");
            std::fs::write(p.join("net").join(n).join("ifindex"), format!("{i}\n")).expect("ifindex");
        }
        Fixture { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self) -> Env {
        let p = self.path();
        Env {
            kallsyms: p.join("kallsyms"),
            partitions: p.join("partitions"),
            cgroup_root: p.join("cgroup"),
            pci_ids: vec![p.join("missing.ids"), p.join("pci.ids")],
            net_class: p.join("net"),
            arch: Arch::X86_64,
        }
    }

    fn decoders(&self) -> Decoders {
        Decoders::new(self.env())
    }
}

const KALLSYMS: &str = "ffffffff81000000 T _stext\n\
ffffffff81000000 T startup_64\n\
ffffffff814203c0 t process_timeout\n\
ffffffff81420400 T schedule\n\
ffffffffc0000000 t commit_timeout\t[jbd2]\n";

const PARTITIONS: &str = "major minor  #blocks  name\n\n 254        0   52428800 vda\n 254        1   52427759 vda1\n";

fn counter_samples(m: &Metric) -> Vec<(Vec<String>, f64)> {
    match &m.values {
        MetricValues::Counter(s) | MetricValues::Gauge(s) => s.iter().map(|s| (s.labels.to_vec(), s.value)).collect(),
        MetricValues::Histogram(_) => panic!("not a counter"),
    }
}

/// Decoded samples are marked as being in Prometheus order; rendering checks the mark (a debug
/// assertion in the prom renderer) and a copy without the mark renders the same text.
fn assert_prom_order(m: &Metric) {
    let (MetricValues::Counter(samples) | MetricValues::Gauge(samples)) = &m.values else { return };
    assert!(samples.in_name_order());
    let snap = |m: Metric| crate::model::Snapshot::of(vec![m]);
    let opts = crate::render::Options { prefix: "t_".into(), ..Default::default() };
    let marked = crate::render::render(crate::render::Format::Prom, &snap(m.clone()), &opts);
    let plain_values = match &m.values {
        MetricValues::Gauge(_) => MetricValues::Gauge(samples.to_vec().into()),
        _ => MetricValues::Counter(samples.to_vec().into()),
    };
    let plain = Metric { values: plain_values, ..m.clone() };
    assert_eq!(marked, crate::render::render(crate::render::Format::Prom, &snap(plain), &opts));
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn one_label(d: &mut Decoders, l: Label, field: &[u8]) -> Result<Option<String>, LabelError> {
    d.decode_label(&l, field)
}

fn biolatency() -> MetricConfig {
    histogram(
        "bio_latency_seconds",
        vec![
            label("device", 4, 0, vec![dec("majorminor")]),
            label(
                "operation",
                4,
                0,
                vec![dec("uint"), smap(&[("0", "read"), ("1", "write"), ("2", "flush"), ("3", "discard")], true)],
            ),
            uint("bucket", 8),
        ],
        HistogramSpec {
            bucket_type: BucketType::Exp2,
            bucket_min: 0,
            bucket_max: 27,
            multiplier: 0.000001,
            bucket_keys: vec![],
        },
    )
}

#[test]
fn spec_17_1_biolatency_histogram() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let rows: &[(&str, u64)] = &[
        ("00fe0000 01000000 0400000000000000", 52),
        ("00fe0000 01000000 0500000000000000", 428),
        ("00fe0000 01000000 0600000000000000", 9),
        ("00fe0000 01000000 0700000000000000", 8),
        ("00fe0000 01000000 0800000000000000", 3),
        ("00fe0000 01000000 0a00000000000000", 1),
        ("00fe0000 01000000 1c00000000000000", 11249),
        ("00fe0000 00000000 0500000000000000", 492),
        ("00fe0000 03000000 1c00000000000000", 1231),
        // Outside bucket_min ..= bucket_max + 1: ignored.
        ("00fe0000 01000000 1d00000000000000", 999),
    ];
    let entries: Vec<_> = rows.iter().map(|(k, v)| (hex(k), vec![*v])).collect();
    let m = d.metric_only("biolatency", &biolatency(), &raw(16, 1, false, &entries)).expect("decodes");
    assert_eq!(m.label_names, strs(&["device", "operation"]));
    let MetricValues::Histogram(h) = &m.values else { panic!("histogram") };
    assert_eq!((h.bucket_type, h.multiplier), (BucketType::Exp2, 0.000001));
    let labels: Vec<_> = h.series.iter().map(|s| s.labels.clone()).collect();
    assert_eq!(labels, [strs(&["vda", "discard"]), strs(&["vda", "read"]), strs(&["vda", "write"])]);
    let write = &h.series[2];
    assert_eq!(write.buckets.len(), 28);
    let expected_cum = [
        0, 0, 0, 0, 52, 480, 489, 497, 500, 500, 501, 501, 501, 501, 501, 501, 501, 501, 501, 501, 501, 501, 501, 501,
        501, 501, 501, 501,
    ];
    assert_eq!(write.buckets.iter().map(|b| b.cumulative).collect::<Vec<_>>(), expected_cum);
    for (i, b) in write.buckets.iter().enumerate() {
        assert_eq!(b.le, (1u64 << i) as f64 * 0.000001, "le of bucket {i}");
    }
    assert_eq!(write.buckets[27].le, 134.217728);
    assert_eq!(write.buckets[4].le, 1.6e-05);
    assert_eq!(write.count, 501);
    assert_eq!(write.sum, Some(11249.0 * 0.000001));
    assert_eq!(write.sum, Some(0.011249));
    let (discard, read) = (&h.series[0], &h.series[1]);
    assert_eq!((discard.count, discard.sum), (0, Some(1231.0 * 0.000001)));
    assert_eq!((read.count, read.sum), (492, None));
    assert_eq!(read.buckets[4].cumulative, 0);
    assert_eq!(read.buckets[5].cumulative, 492);
}

#[test]
fn spec_17_2_four_u16_fields() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let spec = counter(
        "kfree_skb_total",
        vec![
            label("eth_proto", 2, 0, vec![dec("uint"), smap(&[("2048", "ipv4"), ("34525", "ipv6")], false)]),
            label("ip_proto", 2, 0, vec![dec("uint"), smap(&[("1", "icmp"), ("6", "tcp"), ("17", "udp")], false)]),
            uint("port", 2),
            label("reason", 2, 0, vec![dec("uint"), smap(&[("3", "SKB_DROP_REASON_NO_SOCKET")], false)]),
        ],
    );
    let m =
        d.metric_only("kfree_skb", &spec, &raw(8, 1, false, &[(hex("0008 1100 0900 0300"), vec![100])])).expect("ok");
    assert_eq!(counter_samples(&m), [(strs(&["ipv4", "udp", "9", "SKB_DROP_REASON_NO_SOCKET"]), 100.0)]);
}

#[test]
fn spec_17_4_trailing_padding() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let good = counter(
        "frags",
        vec![label("interface", 4, 0, vec![dec("ifname")]), label("ip_version", 1, 3, vec![dec("uint")])],
    );
    let map = raw(8, 1, false, &[(hex("04000000 04 000000"), vec![3]), (hex("07000000 06 ffffff"), vec![1])]);
    let m = d.metric_only("inet-frags", &good, &map).expect("ok");
    assert_eq!(counter_samples(&m), [(strs(&["eth0", "4"]), 3.0), (strs(&["unknown:7", "6"]), 1.0)]);
    let bad = counter("frags", vec![label("interface", 4, 0, vec![dec("ifname")]), uint("ip_version", 1)]);
    let e = d.metric_only("inet-frags", &bad, &map).expect_err("sizes add up to 5");
    assert!(e.counts_as_decoder_error());
    assert!(e.detail.contains("is 8 bytes, but we have labels to decode 5"), "{e}");
}

fn softirq_labels(with_cpu: bool) -> Vec<Label> {
    let names = [
        "HI_SOFTIRQ",
        "TIMER_SOFTIRQ",
        "NET_TX_SOFTIRQ",
        "NET_RX_SOFTIRQ",
        "BLOCK_SOFTIRQ",
        "IRQ_POLL_SOFTIRQ",
        "TASKLET_SOFTIRQ",
        "SCHED_SOFTIRQ",
        "HRTIMER_SOFTIRQ",
        "RCU_SOFTIRQ",
    ];
    let keys: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let pairs: Vec<(&str, &str)> = keys.iter().map(String::as_str).zip(names).collect();
    let mut l = vec![label("vec", 4, 0, vec![dec("uint"), smap(&pairs, false)])];
    if with_cpu {
        l.push(uint("cpu", 2));
    }
    l
}

fn softirq_map() -> RawMap {
    let mut entries = Vec::new();
    for v in 0u32..10 {
        let vals = match v {
            1 => vec![22, 13],
            7 => vec![54, 64],
            9 => vec![16, 18],
            _ => vec![0, 0],
        };
        entries.push((v.to_ne_bytes().to_vec(), vals));
    }
    raw(4, 2, true, &entries)
}

#[test]
fn spec_17_5_per_cpu_with_and_without_cpu_label() {
    let f = Fixture::new();
    let mut d = f.decoders();
    // Labels stay in config order (vec, cpu); samples are sorted in label-name order (cpu, then
    // vec), the order Prometheus prints them in.
    let m =
        d.metric_only("percpu-softirq", &counter("softirqs_total", softirq_labels(true)), &softirq_map()).expect("ok");
    let s = counter_samples(&m);
    assert_eq!(s.len(), 20);
    assert_eq!(s[0], (strs(&["BLOCK_SOFTIRQ", "0"]), 0.0));
    let find = |v: &str, c: &str| s.iter().find(|(l, _)| l == &strs(&[v, c])).map(|x| x.1);
    assert_eq!(find("SCHED_SOFTIRQ", "0"), Some(54.0));
    assert_eq!(find("SCHED_SOFTIRQ", "1"), Some(64.0));
    assert_eq!(find("TIMER_SOFTIRQ", "1"), Some(13.0));
    assert_eq!(find("RCU_SOFTIRQ", "0"), Some(16.0));
    // Sorted element-wise in label-name order: cpu, then vec.
    let order: Vec<_> = s.iter().take(4).map(|(l, _)| l.clone()).collect();
    assert_eq!(
        order,
        [
            strs(&["BLOCK_SOFTIRQ", "0"]),
            strs(&["HI_SOFTIRQ", "0"]),
            strs(&["HRTIMER_SOFTIRQ", "0"]),
            strs(&["IRQ_POLL_SOFTIRQ", "0"])
        ]
    );

    let m =
        d.metric_only("percpu-softirq", &counter("softirqs_total", softirq_labels(false)), &softirq_map()).expect("ok");
    let s = counter_samples(&m);
    assert_eq!(s.len(), 10);
    let find = |v: &str| s.iter().find(|(l, _)| l == &strs(&[v])).map(|x| x.1);
    assert_eq!(find("SCHED_SOFTIRQ"), Some(118.0));
    assert_eq!(find("TIMER_SOFTIRQ"), Some(35.0));
    assert_eq!(find("RCU_SOFTIRQ"), Some(34.0));
    assert_eq!(find("HI_SOFTIRQ"), Some(0.0));
}

#[test]
fn spec_17_6_per_cpu_only_cpu_label() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let m = d
        .metric_only("c", &counter("x", vec![uint("cpu", 2)]), &raw(4, 2, true, &[(vec![0; 4], vec![5, 6])]))
        .expect("ok");
    assert_eq!(counter_samples(&m), [(strs(&["0"]), 5.0), (strs(&["1"]), 6.0)]);
    // A non-zero key keeps its 4 bytes: 6 ≠ 2 → a size error for each of its rows, which are
    // dropped and counted; the zero key's rows stay.
    let map = raw(4, 2, true, &[(vec![0; 4], vec![5, 6]), (vec![1, 0, 0, 0], vec![7, 8])]);
    let got = d.metric("c", &counter("x", vec![uint("cpu", 2)]), &map).expect("rows dropped, not the metric");
    assert_eq!(counter_samples(&got.metric), [(strs(&["0"]), 5.0), (strs(&["1"]), 6.0)]);
    assert_eq!(got.row_errors.rows, 2);
    let first = got.row_errors.first.unwrap_or_default();
    assert!(first.contains("total size of key []byte{0x1, 0x0, 0x0, 0x0, 0x0, 0x0} is 6 bytes"), "{first}");
}

#[test]
fn spec_17_7_counter_without_labels() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let spec = counter("softirq_raised_total", vec![]);
    let m = d.metric_only("c", &spec, &raw(4, 2, true, &[(vec![0; 4], vec![700, 534])])).expect("ok");
    assert_eq!(m.label_names, Vec::<String>::new());
    assert_eq!(counter_samples(&m), [(vec![], 1234.0)]);
    let two = raw(4, 1, false, &[(vec![0; 4], vec![1]), (vec![1, 0, 0, 0], vec![2])]);
    let got = d.metric("c", &spec, &two).expect("key 01000000 dropped, not the metric");
    assert_eq!(counter_samples(&got.metric), [(vec![], 1.0)]);
    assert_eq!(got.row_errors.rows, 1);
    assert!(got.row_errors.first.unwrap_or_default().contains("but we have labels to decode 0"));
}

#[test]
fn spec_17_8_syscalls_and_errno() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let spec = counter("syscalls_total", vec![label("syscall", 8, 0, vec![dec("uint"), dec("syscall")])]);
    let map = raw(
        8,
        1,
        false,
        &[
            (hex("2700000000000000"), vec![100003]),
            (1000u64.to_ne_bytes().to_vec(), vec![1]),
            (0u64.to_ne_bytes().to_vec(), vec![1234567]),
            (1u64.to_ne_bytes().to_vec(), vec![12]),
        ],
    );
    let m = d.metric_only("syscalls", &spec, &map).expect("ok");
    let names: Vec<_> = counter_samples(&m).into_iter().map(|(l, v)| (l[0].clone(), v)).collect();
    assert_eq!(
        names,
        [
            ("getpid".to_string(), 100003.0),
            ("read".to_string(), 1234567.0),
            ("unknown_syscall:1000".to_string(), 1.0),
            ("write".to_string(), 12.0)
        ]
    );
    let spec = counter("syscall_errors_total", vec![label("errno", 8, 0, vec![dec("uint"), dec("errno")])]);
    let map = raw(8, 1, false, &[(hex("0200000000000000"), vec![1]), (hex("5f00000000000000"), vec![2])]);
    let m = d.metric_only("syscalls", &spec, &map).expect("ok");
    assert_eq!(counter_samples(&m), [(strs(&["ENOENT"]), 1.0), (strs(&["ENOTSUP"]), 2.0)]);
}

#[test]
fn spec_17_10_regexp_first_submatch_and_skip() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let map = raw(
        16,
        1,
        false,
        &[(hex("6b73776170643000 0000000000000000"), vec![3]), (hex("7368000000000000 0000000000000000"), vec![4])],
    );
    let spec =
        counter("x", vec![label("comm", 16, 0, vec![dec("string"), re(&["^(kswapd).*$", "^(systemd.*)$", "^.*$"])])]);
    let m = d.metric_only("regexp", &spec, &map).expect("ok");
    assert_eq!(counter_samples(&m), [(strs(&["kswapd"]), 3.0), (strs(&["sh"]), 4.0)]);
    let only_first = counter("x", vec![label("comm", 16, 0, vec![dec("string"), re(&["^(kswapd).*$"])])]);
    let m = d.metric_only("regexp", &only_first, &map).expect("skip is not an error");
    assert_eq!(counter_samples(&m), [(strs(&["kswapd"]), 3.0)]);
}

#[test]
fn spec_17_12_cgroup() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let root = f.path().join("cgroup");
    let ino = |p: &Path| std::fs::metadata(p).expect("meta").ino();
    let ssh = root.join("system.slice/ssh.service");
    let spec = counter("x", vec![label("cgroup", 8, 0, vec![dec("uint"), dec("cgroup")])]);
    let map =
        raw(8, 1, false, &[(ino(&root).to_ne_bytes().to_vec(), vec![1]), (ino(&ssh).to_ne_bytes().to_vec(), vec![2])]);
    let m = d.metric_only("cg", &spec, &map).expect("ok");
    let mut got: Vec<_> = counter_samples(&m).into_iter().map(|(l, v)| (l[0].clone(), v)).collect();
    got.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert_eq!(got, [(root.to_string_lossy().into_owned(), 1.0), (ssh.to_string_lossy().into_owned(), 2.0)]);
    // A cgroup created after the first walk is found by the re-walk on a miss.
    let late = root.join("user.slice/late.scope");
    std::fs::create_dir(&late).expect("mkdir");
    let l = label("cgroup", 8, 0, vec![dec("uint"), dec("cgroup")]);
    assert_eq!(one_label(&mut d, l.clone(), &ino(&late).to_ne_bytes()), Ok(Some(late.to_string_lossy().into_owned())));
    let missing = 1u64 << 60;
    assert_eq!(one_label(&mut d, l, &missing.to_ne_bytes()), Ok(Some(format!("unknown_cgroup_id:{missing}"))));
    let text = label("cgroup", 3, 0, vec![dec("string"), dec("cgroup")]);
    assert!(one_label(&mut d, text, b"abc").is_err());
}

#[test]
fn spec_17_14_bad_key_hides_metric() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let spec = counter("x", vec![uint("id", 4)]);
    let map = raw(8, 1, false, &[(vec![1, 0, 0, 0, 0, 0, 0, 0], vec![1]), (vec![2, 0, 0, 0, 0, 0, 0, 0], vec![1])]);
    let e = d.metric_only("cfg", &spec, &map).expect_err("hidden");
    assert!(e.counts_as_decoder_error());
    assert_eq!(
        e.to_string(),
        "config cfg: metric x: error decoding labels: total size of key []byte{0x1, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0} \
         is 8 bytes, but we have labels to decode 4"
    );
    let _: &dyn std::error::Error = &e;
}

#[test]
fn aggregation_is_element_wise() {
    let f = Fixture::new();
    let mut d = f.decoders();
    // Two keys mapping to the same label value are summed.
    let spec = counter("x", vec![label("op", 1, 0, vec![dec("uint"), smap(&[("1", "same"), ("2", "same")], false)])]);
    let m = d
        .metric_only("c", &spec, &raw(1, 1, false, &[(vec![1], vec![3]), (vec![2], vec![4]), (vec![3], vec![5])]))
        .expect("ok");
    assert_eq!(counter_samples(&m), [(strs(&["same"]), 7.0), (strs(&["unknown:3"]), 5.0)]);
    // ("a|b", "c") and ("a", "b|c") stay apart (docs/config-format.md#reading-maps).
    let spec = counter("y", vec![label("p", 3, 0, vec![dec("string")]), label("q", 3, 0, vec![dec("string")])]);
    let map = raw(6, 1, false, &[(b"a|bc\0\0".to_vec(), vec![1]), (b"a\0\0b|c".to_vec(), vec![2])]);
    let m = d.metric_only("c", &spec, &map).expect("ok");
    assert_eq!(counter_samples(&m), [(strs(&["a", "b|c"]), 2.0), (strs(&["a|b", "c"]), 1.0)]);
    // Saturating u64 sums.
    let spec = counter("z", vec![uint("k", 1)]);
    let m = d.metric_only("c", &spec, &raw(1, 2, true, &[(vec![1], vec![u64::MAX, 5])])).expect("ok");
    assert_eq!(counter_samples(&m), [(strs(&["1"]), u64::MAX as f64)]);
}

#[test]
fn sort_and_merge_when_prefixes_tie() {
    // Values of at most 8 bytes without a NUL are ordered and merged by their prefix alone; a
    // NUL or a longer value makes rows whose prefixes tie compare the whole strings.
    let f = Fixture::new();
    let mut d = f.decoders();
    // Labels v (a key mapped to a name) and n (a number); entries (v key, n, count).
    let mut named = |names: &[(&str, &str)], entries: &[(u8, u8, u64)]| {
        let spec = counter(
            "x",
            vec![label("v", 1, 0, vec![dec("uint"), smap(names, false)]), label("n", 1, 0, vec![dec("uint")])],
        );
        let entries: Vec<_> = entries.iter().map(|&(v, n, c)| (vec![v, n], vec![c])).collect();
        let m = d.metric_only("c", &spec, &raw(2, 1, false, &entries)).expect("ok");
        assert_prom_order(&m);
        counter_samples(&m)
    };
    let names = [("1", "ab"), ("2", "ab\0"), ("3", "abc"), ("4", "aaaaaaaa1"), ("5", "aaaaaaaa0"), ("6", "ab")];
    assert_eq!(
        named(&names, &[(1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 0, 4), (5, 0, 5), (6, 0, 6), (1, 1, 7)]),
        [
            (strs(&["aaaaaaaa0", "0"]), 5.0),
            (strs(&["aaaaaaaa1", "0"]), 4.0),
            (strs(&["ab", "0"]), 7.0),
            (strs(&["ab\0", "0"]), 2.0),
            (strs(&["abc", "0"]), 3.0),
            (strs(&["ab", "1"]), 7.0),
        ]
    );
    // Longer values sharing a prefix: the keys past it decide, and equal ones merge.
    let names = [("1", "kworker/u8:10"), ("2", "kworker/u8:9"), ("3", "kworker/u8:"), ("4", "kworker/u8:10")];
    assert_eq!(
        named(&names, &[(1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 0, 4), (2, 1, 5)]),
        [
            (strs(&["kworker/u8:", "0"]), 3.0),
            (strs(&["kworker/u8:10", "0"]), 5.0),
            (strs(&["kworker/u8:9", "0"]), 2.0),
            (strs(&["kworker/u8:9", "1"]), 5.0),
        ]
    );
    // Short values holding NULs, past a long shared prefix: told apart and ordered by length.
    let names = [("1", "long-prefix-x\0"), ("2", "long-prefix-x"), ("3", "long-prefix-x\0\0"), ("4", "long-prefix-x")];
    let spec = counter("u", vec![label("v", 1, 0, vec![dec("uint"), smap(&names, false)])]);
    let entries: Vec<_> = [(1, 1), (2, 2), (3, 3), (4, 4)].iter().map(|&(v, c)| (vec![v], vec![c])).collect();
    let m = d.metric_only("c", &spec, &raw(1, 1, false, &entries)).expect("ok");
    assert_prom_order(&m);
    assert_eq!(
        counter_samples(&m),
        [(strs(&["long-prefix-x"]), 6.0), (strs(&["long-prefix-x\0"]), 1.0), (strs(&["long-prefix-x\0\0"]), 3.0),]
    );
    // A NUL in a suffix of 8 bytes: neither key form is exact, whole values are compared.
    let names = [("1", "zzB\0cdefgh"), ("2", "zzAbcdefgh"), ("3", "zzB\0cdefgh")];
    let spec = counter("t", vec![label("v", 1, 0, vec![dec("uint"), smap(&names, false)])]);
    let entries: Vec<_> = [(1, 1), (2, 2), (3, 3)].iter().map(|&(v, c)| (vec![v], vec![c])).collect();
    let m = d.metric_only("c", &spec, &raw(1, 1, false, &entries)).expect("ok");
    assert_prom_order(&m);
    assert_eq!(counter_samples(&m), [(strs(&["zzAbcdefgh"]), 2.0), (strs(&["zzB\0cdefgh"]), 4.0)]);
    // All short: the prefixes alone decide, with one and with three labels.
    let spec =
        counter("y", vec![label("v", 1, 0, vec![dec("uint"), smap(&[("1", "b"), ("2", "a"), ("3", "b")], false)])]);
    let entries: Vec<_> = [(1, 1), (2, 2), (3, 4)].iter().map(|&(v, c)| (vec![v], vec![c])).collect();
    let m = d.metric_only("c", &spec, &raw(1, 1, false, &entries)).expect("ok");
    assert_prom_order(&m);
    assert_eq!(counter_samples(&m), [(strs(&["a"]), 2.0), (strs(&["b"]), 5.0)]);
    let spec = counter("z", vec![uint("c", 1), uint("b", 1), uint("a", 1)]);
    let entries: Vec<_> = [[1, 2, 3], [1, 2, 3], [3, 2, 1], [2, 2, 1]].iter().map(|k| (k.to_vec(), vec![1])).collect();
    let m = d.metric_only("c", &spec, &raw(3, 1, false, &entries)).expect("ok");
    assert_prom_order(&m);
    assert_eq!(
        counter_samples(&m),
        [(strs(&["2", "2", "1"]), 1.0), (strs(&["3", "2", "1"]), 1.0), (strs(&["1", "2", "3"]), 2.0)]
    );
}

#[test]
fn direct_keys_give_the_same_samples_as_decoding() {
    // Pseudo-random maps through both ways: keys read straight off the fields, and every label
    // decoded, sorted and merged the general way.
    let f = Fixture::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let string = |name: &str, size: usize| label(name, size, 0, vec![dec("string")]);
    let layouts: Vec<(Vec<Label>, usize)> = vec![
        (vec![uint("pid", 4), string("comm", 16)], 20),
        (vec![string("comm", 8)], 8),
        (vec![uint("id", 8)], 8),
        (vec![label("a", 2, 2, vec![dec("uint")]), uint("b", 1)], 5),
        (vec![uint("pid", 4), string("name", 24)], 28),
    ];
    for (labels, key_size) in layouts {
        for long_every in [0u64, 3, 97] {
            let spec = counter("x_total", labels.clone());
            let mut entries = Vec::new();
            for i in 0..500u64 {
                let mut key: Vec<u8> = (0..key_size).map(|_| (next() % 7) as u8).collect();
                // Text fields: short names, now and then a long one (not a direct key).
                for (l, offset) in labels.iter().scan(0, |o, l| {
                    let at = *o;
                    *o += l.size + l.padding;
                    Some((l, at))
                }) {
                    if l.decoders[0].name == "string" {
                        let long = long_every > 0 && i % long_every == 0;
                        let text = if long {
                            format!("a-long-name-of-{}-bytes", next() % 5)
                        } else {
                            format!("p{}", next() % 9)
                        };
                        let field = &mut key[offset..offset + l.size];
                        field.fill(0);
                        let n = text.len().min(l.size);
                        field[..n].copy_from_slice(&text.as_bytes()[..n]);
                    }
                }
                entries.push((key, vec![next() % 1000]));
            }
            let map = raw(key_size, 1, false, &entries);
            let mut direct = f.decoders();
            let mut general = f.decoders();
            general.set_direct_keys(false);
            let a = direct.metric_only("c", &spec, &map).expect("direct");
            let b = general.metric_only("c", &spec, &map).expect("general");
            assert_eq!(
                a,
                b,
                "labels {:?}, long every {long_every}",
                labels.iter().map(|l| &l.name).collect::<Vec<_>>()
            );
            assert_prom_order(&a);
        }
    }
}

#[test]
fn packed_keys_order_and_round_trip_like_pairs() {
    let key = |s: &str| {
        let mut b = [0u8; 16];
        b[..s.len()].copy_from_slice(s.as_bytes());
        u128::from_be_bytes(b)
    };
    let keys = [
        (key("proc-1"), key("12")),
        (key("proc-123"), key("9")),
        (key("proc-12"), key("99999")),
        (key("proc-1"), key("1")),
        (key("proc-9"), key("123456789")),
    ];
    let exact: Vec<_> = keys.iter().map(|&(a, b)| (a, b, 0)).collect();
    let p = super::fast::Packing::of(&exact).expect("fits in 16 bytes");
    let short = super::fast::Packing::of(&exact[..4]).expect("fits in 8 bytes");
    assert!(short.bits() <= 64 && p.bits() > 64);
    for p in [&p, &short] {
        let keys = if p.bits() <= 64 { &keys[..4] } else { &keys[..] };
        for &(a, b) in keys {
            assert_eq!(p.unpack(p.pack(a, b)), (a, b));
            for &(c, d) in keys {
                assert_eq!(p.pack(a, b).cmp(&p.pack(c, d)), (a, b).cmp(&(c, d)));
            }
        }
    }
    // All the same, or one key of all 16 bytes: still exact.
    let same = super::fast::Packing::of(&[(5, 7, 0), (5, 7, 1)]).expect("nothing differs");
    assert_eq!(same.unpack(same.pack(5, 7)), (5, 7));
    let wide = [(1u128 << 120, 0, 0), (1, 0, 0)];
    let p = super::fast::Packing::of(&wide).expect("one key of 16 bytes");
    assert_eq!(p.unpack(p.pack(1, 0)), (1, 0));
    // Spans of 9 and 8 bytes do not fit.
    assert!(super::fast::Packing::of(&[(0, 0, 0), (1 | 1 << 64, 1 | 1 << 56, 0)]).is_none());
}

#[test]
fn common_prefix_lengths() {
    for (a, b, n) in [
        (&b""[..], &b"abc"[..], 0),
        (b"abc", b"abd", 2),
        (b"kworker/u8:1", b"kworker/u8:2", 11),
        (b"0123456789abcdefXY", b"0123456789abcdefXZ", 17),
        (b"01234567", b"01234567", 8),
        (b"0123456", b"01234567", 7),
    ] {
        assert_eq!(super::fast::common_prefix(a, b), n, "{a:?} {b:?}");
        assert_eq!(super::fast::common_prefix(b, a), n);
    }
}

#[test]
fn long_names_beside_pids_sort_and_sum_like_a_reference() {
    // Task names up to 15 bytes that share no prefix, beside pids: the key pair does not pack
    // into one number, so the names are ranked (few distinct) or compared whole (many).
    let f = Fixture::new();
    let bases = ["systemd-journal", "kworker/u8:", "nginx: worker", "postgres: walwr", "java", "irq/12"];
    for distinct_names in [60u32, 5000] {
        let spec = counter("x_total", vec![uint("pid", 4), label("comm", 16, 0, vec![dec("string")])]);
        let mut entries = Vec::new();
        let mut expected: BTreeMap<(String, String), f64> = BTreeMap::new();
        for i in 0..6000u32 {
            let pid = (i * 7919) % 4001;
            let n = i % distinct_names;
            let name = format!("{}{}", bases[(n % 6) as usize], n / 6);
            let name = &name[..name.len().min(15)];
            let mut key = vec![0u8; 20];
            key[..4].copy_from_slice(&pid.to_ne_bytes());
            key[4..4 + name.len()].copy_from_slice(name.as_bytes());
            entries.push((key, vec![u64::from(i % 3 + 1)]));
            // Label-name order: comm, then pid, each as text.
            *expected.entry((name.to_string(), pid.to_string())).or_default() += f64::from(i % 3 + 1);
        }
        let map = raw(20, 1, false, &entries);
        let want: Vec<_> = expected.into_iter().map(|((comm, pid), v)| (vec![pid, comm], v)).collect();
        for direct in [true, false] {
            let mut d = f.decoders();
            d.set_direct_keys(direct);
            let m = d.metric_only("c", &spec, &map).expect("decodes");
            assert_prom_order(&m);
            assert_eq!(counter_samples(&m), want, "{distinct_names} names, direct keys {direct}");
        }
    }
}

#[test]
fn samples_sort_as_byte_strings() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let keys = [10u32, 9, 100, 2, 1_000_000_000, 123_456_789];
    let entries: Vec<_> = keys.iter().map(|k| (k.to_ne_bytes().to_vec(), vec![1])).collect();
    let m = d.metric_only("c", &counter("x", vec![uint("pid", 4)]), &raw(4, 1, false, &entries)).expect("ok");
    assert_prom_order(&m);
    let order: Vec<_> = counter_samples(&m).into_iter().map(|(l, _)| l[0].clone()).collect();
    assert_eq!(order, strs(&["10", "100", "1000000000", "123456789", "2", "9"]));
}

#[test]
fn gauges_and_perf_event_arrays_and_empty_maps() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let mut spec = counter("g", vec![uint("k", 4)]);
    spec.kind = MetricKind::Gauge;
    let m = d.metric_only("c", &spec, &raw(4, 1, false, &[(vec![1, 0, 0, 0], vec![9])])).expect("ok");
    assert_eq!(m.values, MetricValues::Gauge(vec![Sample { labels: strs(&["1"]), value: 9.0 }].into()));
    spec.kind = MetricKind::Counter { perf_event_array: true };
    let m = d.metric_only("c", &spec, &RawMap::default()).expect("ok");
    assert_eq!(m.values, MetricValues::Counter(Samples::new(1)));
    spec.kind = MetricKind::Counter { perf_event_array: false };
    let m = d.metric_only("c", &spec, &raw(4, 1, false, &[])).expect("ok");
    assert_eq!(m.values, MetricValues::Counter(Samples::new(1)));
    assert_eq!((m.config.as_str(), m.name.as_str(), m.help.as_str()), ("c", "g", "help"));
}

#[test]
fn malformed_raw_maps_are_errors() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let spec = counter("x", vec![uint("k", 4)]);
    let mut m = raw(4, 1, false, &[(vec![1, 0, 0, 0], vec![1])]);
    m.values.push(3);
    let e = d.metric_only("c", &spec, &m).expect_err("values");
    assert_eq!(e.kind, DecodeErrorKind::RawMap);
    let mut m = raw(4, 1, false, &[]);
    m.keys.extend_from_slice(&[1, 2, 3]);
    assert!(d.metric_only("c", &spec, &m).is_err());
    let m = RawMap { key_size: 4, slots: 0, keys: vec![0; 4], ..Default::default() };
    assert!(d.metric_only("c", &spec, &m).is_err());
}

#[test]
fn label_errors_have_spec_wording() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let map = raw(4, 1, false, &[(vec![1, 0, 0, 0], vec![1])]);
    let e = d.metric_only("c", &counter("x", vec![label("k", 4, 0, vec![dec("nope")])]), &map).expect_err("unknown");
    assert_eq!(e.detail, "unknown decoder \"nope\"");
    let e = d.metric_only("c", &counter("x", vec![label("k", 4, 0, vec![])]), &map).expect_err("none");
    assert_eq!(e.detail, "error decoding label \"k\": no decoders set");
    let e = d
        .metric_only("c", &counter("x", vec![label("z", 0, 0, vec![dec("uint")]), uint("k", 4)]), &map)
        .expect_err("zero");
    assert_eq!(e.detail, "error decoding label \"z\": size is zero or not set");
    // Errors that depend on the key bytes drop the row (counted), not the metric.
    let row_error = |d: &mut Decoders, spec: &MetricConfig, map: &RawMap| {
        let got = d.metric("c", spec, map).expect("row dropped, not the metric");
        assert_eq!(got.metric.values, MetricValues::Counter(Samples::new(spec.labels.len())), "{spec:?}");
        assert_eq!(got.row_errors.rows, 1, "{spec:?}");
        got.row_errors.first.unwrap_or_default()
    };
    let e = row_error(&mut d, &counter("x", vec![uint("a", 3), uint("b", 1)]), &map);
    assert!(e.starts_with("error decoding label \"a\": error decoding with decoder \"uint\": "), "{e}");
    let letters = raw(4, 1, false, &[(vec![0xab, 0, 0, 0], vec![1])]);
    let e = row_error(&mut d, &counter("x", vec![label("k", 4, 0, vec![dec("hex"), dec("errno")])]), &letters);
    assert!(e.contains("decoder \"errno\""), "{e}");
    let no_re = DecoderSpec { name: "regexp".into(), static_map: None, allow_unknown: false, regexps: None };
    row_error(&mut d, &counter("x", vec![label("k", 4, 0, vec![no_re])]), &map);
    let bad_re = counter("x", vec![label("k", 4, 0, vec![dec("hex"), re(&["("])])]);
    row_error(&mut d, &bad_re, &map);
}

#[test]
fn invalid_utf8_label_bytes_are_escaped_and_keep_their_row() {
    let f = Fixture::new();
    let mut d = f.decoders();
    // A task named "\xff\xfe..." beside ordinary ones: every row stays, the bad bytes escaped.
    let comm = |b: &[u8]| {
        let mut k = vec![0u8; 16];
        k[..b.len()].copy_from_slice(b);
        k
    };
    let entries = [
        (comm(b"\xff\xfebad"), vec![3]),
        (comm(b"bash"), vec![1]),
        (comm("caf\u{e9}".as_bytes()), vec![2]),
        (comm(b"x\xe9y\\"), vec![4]),
        (comm(b"\xff\xfebad\xc3"), vec![5]),
    ];
    let map = raw(16, 1, false, &entries);
    let want = [
        (strs(&["\\xff\\xfebad"]), 3.0),
        (strs(&["\\xff\\xfebad\\xc3"]), 5.0),
        (strs(&["bash"]), 1.0),
        (strs(&["caf\u{e9}"]), 2.0),
        (strs(&["x\\xe9y\\"]), 4.0),
    ];
    for (direct, pid) in [(true, false), (false, false), (true, true)] {
        d.set_direct_keys(direct);
        let mut labels = vec![label("comm", 16, 0, vec![dec("string")])];
        let mut map = map.clone();
        if pid {
            // A second label (and a longer key) takes the general path.
            labels.insert(0, uint("pid", 4));
            map = raw(
                20,
                1,
                false,
                &entries.iter().map(|(k, v)| ([&[7, 0, 0, 0], &k[..]].concat(), v.clone())).collect::<Vec<_>>(),
            );
        }
        let got = d.metric("c", &counter("x", labels), &map).expect("decodes");
        assert_eq!(got.row_errors, RowErrors::default());
        let mut samples = counter_samples(&got.metric);
        if pid {
            samples.iter_mut().for_each(|s| assert_eq!(s.0.remove(0), "7"));
        }
        assert_eq!(samples, want, "direct {direct} pid {pid}");
        assert_prom_order(&got.metric);
    }
    // Through the perf_event_array path and one label on its own, the same rule.
    let spec = counter("x", vec![label("comm", 4, 0, vec![dec("string")])]);
    assert_eq!(d.decode_key("c", &spec, b"\xffab\0").expect("decodes"), Some(strs(&["\\xffab"])));
    let l = label("comm", 4, 0, vec![dec("string")]);
    assert_eq!(one_label(&mut d, l, b"a\x80\0\0"), Ok(Some("a\\x80".to_string())));
}

#[test]
fn ksym_exact_module_unknown_and_reload() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let l = || label("function", 8, 0, vec![dec("ksym")]);
    let addr = |a: u64| a.to_ne_bytes();
    assert_eq!(one_label(&mut d, l(), &addr(0xffffffff814203c0)), Ok(Some("process_timeout".into())));
    assert_eq!(one_label(&mut d, l(), &addr(0xffffffff814203c4)), Ok(Some("unknown_addr:0xffffffff814203c4".into())));
    assert_eq!(one_label(&mut d, l(), &addr(0xffffffff81000000)), Ok(Some("startup_64".into())));
    assert_eq!(one_label(&mut d, l(), &addr(0xffffffffc0000000)), Ok(Some("commit_timeout\t[jbd2]".into())));
    // Extra bytes are ignored; fewer than 8 are an error.
    let mut long = addr(0xffffffff81420400).to_vec();
    long.extend_from_slice(&[9; 8]);
    assert_eq!(one_label(&mut d, label("f", 16, 0, vec![dec("ksym")]), &long), Ok(Some("schedule".into())));
    assert!(one_label(&mut d, label("f", 4, 0, vec![dec("ksym")]), &[1, 2, 3, 4]).is_err());
    // A symbol that appears later (a module loaded) is found by the re-read on a miss.
    let mut text = KALLSYMS.to_string();
    text.push_str("ffffffffc0001000 t late_sym\t[late]\n");
    std::fs::write(&f.env().kallsyms, text).expect("rewrite");
    assert_eq!(one_label(&mut d, l(), &addr(0xffffffffc0001000)), Ok(Some("late_sym\t[late]".into())));
    // Unreadable kallsyms is an error.
    let mut env = f.env();
    env.kallsyms = f.path().join("nope");
    assert!(Decoders::new(env).decode_label(&l(), &addr(1)).is_err());
}

#[test]
fn kstack_frames() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let frames = |addrs: &[u64]| addrs.iter().flat_map(|a| a.to_ne_bytes()).collect::<Vec<u8>>();
    let l = |n: usize| label("kstack", n, 0, vec![dec("kstack")]);
    let b = frames(&[0xffffffff814203c8, 0xffffffff81420400, 0x10, 0, 0xffffffff81420400]);
    assert_eq!(one_label(&mut d, l(40), &b), Ok(Some("process_timeout\nschedule\n??".into())));
    assert_eq!(one_label(&mut d, l(16), &frames(&[0, 5])), Ok(Some(String::new())));
    let mut ragged = frames(&[0xffffffff81420400]);
    ragged.extend_from_slice(&[1, 2, 3]);
    assert!(one_label(&mut d, l(11), &ragged).is_err());
    let mut ok_ragged = frames(&[0xffffffff81420400, 0]);
    ok_ragged.extend_from_slice(&[1, 2, 3]);
    assert_eq!(one_label(&mut d, l(19), &ok_ragged), Ok(Some("schedule".into())));
}

#[test]
fn zeroed_kallsyms_gives_raw_addresses_and_a_warning() {
    // What a reader without CAP_SYSLOG sees (issue 9 item 12): every frame used to become the
    // file's last symbol.
    let f = Fixture::new();
    let zeroed: String = KALLSYMS.lines().map(|l| format!("0000000000000000{}\n", &l[16..])).collect();
    std::fs::write(&f.env().kallsyms, zeroed).expect("rewrite");
    let mut d = f.decoders();
    assert!(d.warnings().is_empty());
    let frames: Vec<u8> = [0xffffffff814203c8u64, 0xffffffff81420400].iter().flat_map(|a| a.to_ne_bytes()).collect();
    let kstack = label("kstack", 16, 0, vec![dec("kstack")]);
    assert_eq!(one_label(&mut d, kstack, &frames), Ok(Some("0xffffffff814203c8\n0xffffffff81420400".into())));
    let ksym = label("function", 8, 0, vec![dec("ksym")]);
    let addr = 0xffffffff81420400u64.to_ne_bytes();
    assert_eq!(one_label(&mut d, ksym, &addr), Ok(Some("unknown_addr:0xffffffff81420400".into())));
    let warnings = d.warnings();
    assert!(warnings.len() == 1 && warnings[0].contains("CAP_SYSLOG"), "{warnings:?}");
}

#[test]
fn majorminor_and_ifname() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let mm = |n: usize| label("device", n, 0, vec![dec("majorminor")]);
    assert_eq!(one_label(&mut d, mm(4), &hex("00fe0000")), Ok(Some("vda".into())));
    assert_eq!(one_label(&mut d, mm(4), &hex("01fe0000")), Ok(Some("vda1".into())));
    assert_eq!(one_label(&mut d, mm(4), &hex("00080000")), Ok(Some("unknown:8:0".into())));
    assert_eq!(one_label(&mut d, mm(8), &hex("00fe0000 ffffffff")), Ok(Some("vda".into())));
    assert!(one_label(&mut d, mm(2), &hex("00fe")).is_err());
    let mut env = f.env();
    env.partitions = f.path().join("nope");
    assert!(Decoders::new(env).decode_label(&mm(4), &hex("00fe0000")).is_err());

    let ifn = |n: usize| label("interface", n, 0, vec![dec("ifname")]);
    assert_eq!(one_label(&mut d, ifn(4), &1u32.to_ne_bytes()), Ok(Some("lo".into())));
    assert_eq!(one_label(&mut d, ifn(4), &9u32.to_ne_bytes()), Ok(Some("unknown:9".into())));
    assert!(one_label(&mut d, ifn(3), &[1, 0, 0]).is_err());
    // An interface that appears later is found by the re-scan on a miss.
    std::fs::create_dir(f.path().join("net/wg0")).expect("mkdir");
    std::fs::write(f.path().join("net/wg0/ifindex"), "9\n").expect("write");
    assert_eq!(one_label(&mut d, ifn(4), &9u32.to_ne_bytes()), Ok(Some("wg0".into())));
}

#[test]
fn pci_decoders() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let l = |name: &str| label("p", 4, 0, vec![dec("uint"), dec(name)]);
    assert_eq!(one_label(&mut d, l("pci_vendor"), &0x8086u32.to_ne_bytes()), Ok(Some("Intel Corporation".into())));
    assert_eq!(
        one_label(&mut d, l("pci_device"), &0x8086_1237u32.to_ne_bytes()),
        Ok(Some("440FX - 82441FX PMC [Natoma]".into()))
    );
    assert_eq!(one_label(&mut d, l("pci_class"), &2u32.to_ne_bytes()), Ok(Some("Network controller".into())));
    assert_eq!(one_label(&mut d, l("pci_subclass"), &0x0106u32.to_ne_bytes()), Ok(Some("SATA controller".into())));
    assert!(one_label(&mut d, label("p", 2, 0, vec![dec("hex"), dec("pci_vendor")]), &[0xab, 0xcd]).is_err());

    let mut env = f.env();
    env.pci_ids = vec![f.path().join("none")];
    let mut d = Decoders::new(env);
    let text = label("p", 2, 0, vec![dec("string"), dec("pci_vendor")]);
    assert_eq!(d.decode_label(&text, b"zz"), Ok(Some("missing pci.ids db".into())));
}

#[test]
fn a_last_decoder_appends_after_the_labels_before_it() {
    // The last decoder of a chain writes straight after the row's earlier labels: a malformed
    // dname (kept as its input bytes) must not disturb them.
    let f = Fixture::new();
    let mut d = f.decoders();
    let spec = counter("x", vec![label("first", 2, 0, vec![dec("string")]), label("name", 4, 0, vec![dec("dname")])]);
    let m = d.metric_only("c", &spec, &raw(6, 1, false, &[(b"ab\x05com".to_vec(), vec![1])])).expect("ok");
    assert_eq!(counter_samples(&m), [(strs(&["ab", "\x05com"]), 1.0)]);
}

#[test]
fn simple_decoders_through_the_chain() {
    let f = Fixture::new();
    let mut d = f.decoders();
    assert_eq!(one_label(&mut d, label("a", 4, 0, vec![dec("inet_ip")]), &[10, 0, 0, 1]), Ok(Some("10.0.0.1".into())));
    assert_eq!(one_label(&mut d, label("a", 3, 0, vec![dec("hex")]), &[1, 0xab, 0]), Ok(Some("01ab00".into())));
    assert_eq!(
        one_label(&mut d, label("a", 13, 0, vec![dec("string"), dec("dname")]), b"\x07example\x03com\0"),
        Ok(Some("example.com".into()))
    );
    let sm = DecoderSpec { name: "static_map".into(), static_map: None, allow_unknown: true, regexps: None };
    assert_eq!(one_label(&mut d, label("a", 1, 0, vec![dec("uint"), sm]), &[1]), Ok(Some("empty mapping".into())));
    assert_eq!(one_label(&mut d, label("a", 2, 0, vec![dec("string"), re(&["^x$"])]), b"y\0"), Ok(None));
    let mut env = f.env();
    env.arch = Arch::Aarch64;
    let mut d = Decoders::new(env);
    assert_eq!(
        d.decode_label(&label("s", 2, 0, vec![dec("uint"), dec("syscall")]), &172u16.to_ne_bytes()),
        Ok(Some("getpid".into()))
    );
}

fn hist(t: BucketType, min: i64, max: i64, m: f64, keys: &[f64]) -> MetricConfig {
    histogram(
        "h",
        vec![label("op", 1, 0, vec![dec("string")]), uint("bucket", 1)],
        HistogramSpec { bucket_type: t, bucket_min: min, bucket_max: max, multiplier: m, bucket_keys: keys.to_vec() },
    )
}

fn series_of(m: &Metric) -> &[HistogramSeries] {
    match &m.values {
        MetricValues::Histogram(h) => &h.series,
        _ => panic!("histogram"),
    }
}

#[test]
fn histogram_kinds_through_metric() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let map = raw(
        2,
        1,
        false,
        &[
            (b"a\x00".to_vec(), vec![2]),
            (b"a\x03".to_vec(), vec![1]),
            (b"a\x05".to_vec(), vec![6]),
            (b"b\x01".to_vec(), vec![4]),
        ],
    );
    let m = d.metric_only("c", &hist(BucketType::Exp2Zero, 0, 3, 1.0, &[]), &map).expect("ok");
    assert_eq!(m.label_names, strs(&["op"]));
    let s = series_of(&m);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].labels, strs(&["a"]));
    assert_eq!(
        s[0].buckets.iter().map(|b| (b.le, b.cumulative)).collect::<Vec<_>>(),
        [(0.0, 2), (1.0, 2), (2.0, 2), (4.0, 3)]
    );
    assert_eq!((s[0].count, s[0].sum), (3, None));
    assert_eq!((s[1].count, s[1].buckets[1].cumulative), (4, 4));

    let m = d.metric_only("c", &hist(BucketType::Linear, 0, 4, 10.0, &[]), &map).expect("ok");
    let s = series_of(&m);
    assert_eq!(s[0].buckets.iter().map(|b| b.le).collect::<Vec<_>>(), [0.0, 10.0, 20.0, 30.0, 40.0]);
    assert_eq!((s[0].count, s[0].sum), (3, Some(60.0)));

    // Fixed keys in config order (docs/config-format.md#histograms); sum at last key + 1.
    let m = d.metric_only("c", &hist(BucketType::Fixed, 0, 0, 1.0, &[3.0, 0.0, 1.0, 4.0]), &map).expect("ok");
    let s = series_of(&m);
    assert_eq!(
        s[0].buckets.iter().map(|b| (b.le, b.cumulative)).collect::<Vec<_>>(),
        [(3.0, 1), (0.0, 3), (1.0, 3), (4.0, 3)]
    );
    assert_eq!(s[0].sum, Some(6.0));
}

#[test]
fn histogram_bucket_label_must_be_unsigned() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let spec = histogram(
        "h",
        vec![label("bucket", 2, 0, vec![dec("string")])],
        HistogramSpec {
            bucket_type: BucketType::Exp2,
            bucket_min: 0,
            bucket_max: 3,
            multiplier: 1.0,
            bucket_keys: vec![],
        },
    );
    let m = d
        .metric_only("c", &spec, &raw(2, 1, false, &[(b"0x".to_vec(), vec![1]), (b"01".to_vec(), vec![2])]))
        .expect_err("0x is not a number");
    assert_eq!(m.kind, DecodeErrorKind::HistogramBucket);
    assert!(!m.counts_as_decoder_error());
    // Only the bucket label: one series with no labels; "0x1" parses Go-style.
    let m = d
        .metric_only("c", &spec, &raw(2, 1, false, &[(b"1\0".to_vec(), vec![1]), (b"02".to_vec(), vec![2])]))
        .expect("ok");
    let s = series_of(&m);
    assert_eq!(s.len(), 1);
    assert!(s[0].labels.is_empty());
    assert_eq!(s[0].buckets.iter().map(|b| b.cumulative).collect::<Vec<_>>(), [0, 1, 3, 3]);
}

#[test]
fn caches_survive_reads_and_follow_label_changes() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let map = raw(4, 1, false, &[(vec![1, 0, 0, 0], vec![1])]);
    let a = d.metric_only("c", &counter("x", vec![uint("k", 4)]), &map).expect("ok");
    assert_eq!(d.metric_only("c", &counter("x", vec![uint("k", 4)]), &map).expect("ok"), a);
    let hexed = d.metric_only("c", &counter("x", vec![label("k", 4, 0, vec![dec("hex")])]), &map).expect("ok");
    assert_eq!(counter_samples(&hexed), [(strs(&["01000000"]), 1.0)]);
    let key = d.decode_key("c", &counter("x", vec![uint("k", 4)]), &[7, 0, 0, 0]).expect("ok");
    assert_eq!(key, Some(strs(&["7"])));
    assert!(d.decode_key("c", &counter("x", vec![uint("k", 4)]), &[7, 0]).is_err());
}

/// 100,000 entries of (u32 pid, 16-byte comm): exercised here; timed with
/// `cargo test --release --lib decode::tests::large_map -- --nocapture`.
#[test]
fn large_map_100k() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let spec = counter("x", vec![uint("pid", 4), label("comm", 16, 0, vec![dec("string")])]);
    let mut map = raw(20, 1, false, &[]);
    for i in 0u32..100_000 {
        let mut key = [0u8; 20];
        key[..4].copy_from_slice(&(i + 1).to_ne_bytes());
        let comm = format!("proc-{}", i % 500);
        key[4..4 + comm.len()].copy_from_slice(comm.as_bytes());
        map.push(&key, &[u64::from(i)]);
    }
    let mut kept = f.decoders();
    kept.keep_decoded_keys(true);
    for round in 0..10 {
        let keep = round >= 5;
        let d = if keep { &mut kept } else { &mut d };
        let (start, cpu) = (std::time::Instant::now(), thread_cpu());
        let m = d.metric_only("c", &spec, &map).expect("ok");
        let (took, cpu) = (start.elapsed(), thread_cpu() - cpu);
        eprintln!("decode of 100k entries, round {round} (kept keys: {keep}): {took:?} wall, {cpu:?} thread CPU");
        let MetricValues::Counter(s) = &m.values else { panic!("counter") };
        assert_eq!(s.len(), 100_000);
        if round == 0 || round == 5 {
            assert_prom_order(&m);
        }
        // Sorted in label-name order: comm, then pid.
        let s = s.to_vec();
        assert_eq!(s[0].labels, strs(&["1", "proc-0"]));
        let name_order = |x: &Sample| (x.labels[1].clone(), x.labels[0].clone());
        assert!(s.windows(2).all(|w| name_order(&w[0]) < name_order(&w[1])));
    }
}

fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[test]
fn environment_results_are_frozen_at_first_sight() {
    let f = Fixture::new();
    let mut d = f.decoders();
    let spec = counter("x", vec![label("interface", 4, 0, vec![dec("ifname")])]);
    let map = raw(4, 1, false, &[(4u32.to_ne_bytes().to_vec(), vec![1])]);
    let first = d.metric_only("c", &spec, &map).expect("ok");
    assert_eq!(counter_samples(&first), [(strs(&["eth0"]), 1.0)]);
    std::fs::rename(f.path().join("net/eth0"), f.path().join("net/ens3")).expect("rename");
    assert_eq!(d.metric_only("c", &spec, &map).expect("ok"), first);
    // A fresh Decoders sees the new name.
    assert_eq!(counter_samples(&f.decoders().metric_only("c", &spec, &map).expect("ok")), [(strs(&["ens3"]), 1.0)]);
    // Skips are not cached and not errors through decode_key either.
    let re_spec = counter("y", vec![label("comm", 2, 0, vec![dec("string"), re(&["^a$"])])]);
    assert_eq!(d.decode_key("c", &re_spec, b"b\0"), Ok(None));
    assert_eq!(d.decode_key("c", &re_spec, b"a\0"), Ok(Some(strs(&["a"]))));
}

/// The scrape text of one decoded metric (config `c`), its decoder errors included.
fn prom_text(d: &Result<Decoded, DecodeError>) -> String {
    let at = std::time::SystemTime::UNIX_EPOCH;
    let snapshot = crate::model::Snapshot {
        window: crate::model::Window { start: at, end: at, length: std::time::Duration::ZERO },
        metrics: d.iter().map(|d| d.metric.clone()).collect(),
        decoder_errors: vec![("c".into(), d.as_ref().map_or(1, |d| d.row_errors.rows))],
        warnings: vec![],
        self_metrics: vec![],
    };
    crate::render::render(crate::render::Format::Prom, &snapshot, &crate::render::Options::default())
}

/// Up to 3 random labels named from `names` (starting at `case`), names distinct.
fn random_labels(r: &mut Random, names: &[&str], case: usize) -> Vec<Label> {
    let width = r.below(4) as usize;
    let mut labels: Vec<Label> = (0..width).map(|i| random_label(r, names[(i + case) % names.len()])).collect();
    // Label names must differ within a metric.
    labels.dedup_by(|x, y| x.name == y.name);
    labels
}

/// The key size of random labels: their fields, less a per-CPU map's `cpu` label (2 bytes the
/// key does not have), 4 bytes for no labels.
fn random_key_size(labels: &[Label], per_cpu: bool) -> usize {
    let cpu_label = per_cpu && labels.last().is_some_and(|l| l.name == "cpu");
    if labels.is_empty() {
        4
    } else {
        labels.iter().map(|l| l.size + l.padding).sum::<usize>().saturating_sub(if cpu_label { 2 } else { 0 }).max(1)
    }
}

/// A small xorshift generator: the property tests below are reproducible from their seed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// One random label: a decoder chain of the kinds the fast paths treat differently (direct
/// `uint` and `string` keys, short and long text, values holding NULs, bytes that are not
/// UTF-8, cached chains, chains that skip rows or fail on some keys).
fn random_label(r: &mut Random, name: &str) -> Label {
    match r.below(10) {
        // Raw key bytes, NULs included, as the label value.
        8 => label(name, 1 + r.below(20) as usize, 0, vec![smap(&[("ab", "AB")], true)]),
        9 => label(name, 1 + r.below(8) as usize, 0, vec![dec("dname")]),
        0 => uint(name, [1, 2, 4, 8][r.below(4) as usize]),
        1 | 2 => label(name, 1 + r.below(24) as usize, r.below(3) as usize, vec![dec("string")]),
        3 => label(name, 1 + r.below(6) as usize, 0, vec![dec("hex")]),
        4 => label(name, 1, 0, vec![dec("uint"), smap(&[("0", "zero"), ("1", "one")], r.below(2) == 0)]),
        // errno of text that is not a number fails for that row only.
        5 => label(name, 2, 0, vec![dec("string"), dec("errno")]),
        6 => label(name, 4, 0, vec![dec("string"), re(&["^a(.*)$", "^[b-e]"])]),
        _ => label(name, 16, 0, vec![dec("hex"), dec("string")]),
    }
}

/// Key bytes: from a small alphabet (so rows repeat and merge), now and then NULs, bytes that
/// are not UTF-8, or digits.
fn random_key(r: &mut Random, size: usize) -> Vec<u8> {
    const BYTES: &[u8] = b"\0\0\0abcde0123\xff\xfe\xc3\xa9";
    let mode = r.below(4);
    (0..size)
        .map(|_| match mode {
            0 => BYTES[r.below(BYTES.len() as u64) as usize],
            1 => b"0123456789"[r.below(10) as usize],
            2 => b"ab\0"[r.below(3) as usize],
            _ => r.below(4) as u8,
        })
        .collect()
}

#[test]
fn fast_paths_and_the_general_path_give_identical_metrics_on_random_maps() {
    let f = Fixture::new();
    let mut r = Random(0x9e37_79b9_7f4a_7c15);
    let names = ["pid", "comm", "cpu", "a", "zeta", "b_1"];
    for case in 0..400 {
        let mut labels = random_labels(&mut r, &names, case);
        let per_cpu = r.below(3) == 0;
        if per_cpu && r.below(2) == 0 {
            labels.push(label("cpu", 2, 0, vec![dec("uint")]));
            labels.dedup_by(|x, y| x.name == y.name);
        }
        let key_size = random_key_size(&labels, per_cpu);
        let slots = if per_cpu { 1 + r.below(4) as usize } else { 1 };
        let pool: Vec<Vec<u8>> = (0..1 + r.below(40)).map(|_| random_key(&mut r, key_size)).collect();
        let entries: Vec<(Vec<u8>, Vec<u64>)> = (0..r.below(300))
            .map(|_| {
                let key =
                    if labels.is_empty() { vec![0u8; 4] } else { pool[r.below(pool.len() as u64) as usize].clone() };
                (key, (0..slots).map(|_| r.below(1000)).collect())
            })
            .collect();
        let map = raw(key_size, slots, per_cpu, &entries);
        let spec = if r.below(4) == 0 {
            MetricConfig { kind: MetricKind::Gauge, ..counter("g", labels.clone()) }
        } else {
            counter("c_total", labels.clone())
        };
        let mut results = Vec::new();
        for (fast, direct) in [(true, true), (true, false), (false, false)] {
            let mut d = f.decoders();
            d.set_fast(fast);
            d.set_direct_keys(direct);
            let got = d.metric("c", &spec, &map);
            if let Ok(got) = &got {
                assert_prom_order(&got.metric);
            }
            results.push(got);
        }
        let what = format!("case {case}: labels {labels:?}, per_cpu {per_cpu}, {} entries", entries.len());
        assert_eq!(results[0], results[2], "fast vs general, {what}");
        assert_eq!(results[1], results[2], "fast without direct keys vs general, {what}");
    }
}

/// Stack ids (4-byte kstack labels) decode to the frames of the raw map's stack table, the same
/// text an inline stack gives; a failed capture prints `[lost stack]` and is warned about; the
/// general and fast paths agree.
#[test]
fn stack_ids_decode_like_inline_stacks_and_lost_ones_are_counted() {
    let f = Fixture::new();
    let ids = counter("samples_total", vec![uint("pid", 4), label("kstack", 4, 4, vec![dec("kstack")])]);
    let inline = counter("samples_total", vec![uint("pid", 4), label("kstack", 16, 4, vec![dec("kstack")])]);
    let key = |pid: u32, id: i32| {
        let mut k = pid.to_ne_bytes().to_vec();
        k.extend_from_slice(&id.to_ne_bytes());
        k.extend_from_slice(&[0; 4]);
        k
    };
    let mut stacked = raw(12, 1, false, &[(key(1, 5), vec![3]), (key(2, -libc::EFAULT), vec![1])]);
    stacked.stack_traces = Some(std::sync::Arc::new(crate::raw::StackTraces {
        name: "stacks".into(),
        depth: 3,
        ids: vec![5],
        frames: vec![0xffffffff81420410, 0xffffffff814203c8, 0],
    }));
    let mut frames = 0xffffffff81420410u64.to_ne_bytes().to_vec();
    frames.extend_from_slice(&0xffffffff814203c8u64.to_ne_bytes());
    let mut k1 = 1u32.to_ne_bytes().to_vec();
    k1.extend_from_slice(&frames);
    k1.extend_from_slice(&[0; 4]);
    let mut k2 = 2u32.to_ne_bytes().to_vec();
    k2.extend_from_slice(&[0; 20]);
    let flat = raw(24, 1, false, &[(k1, vec![3]), (k2, vec![1])]);
    let mut d = f.decoders();
    let want = counter_samples(&d.metric_only("c", &inline, &flat).expect("inline"));
    assert!(want.contains(&(vec!["1".to_string(), "schedule\nprocess_timeout".to_string()], 3.0)), "{want:?}");
    assert!(want.contains(&(vec!["2".to_string(), String::new()], 1.0)), "{want:?}");
    for fast in [true, false] {
        d.set_fast(fast);
        let got = counter_samples(&d.metric_only("c", &ids, &stacked).expect("ids"));
        assert_eq!(got, want, "fast path {fast}");
    }
    assert!(d.warnings().is_empty());

    let mut lost = stacked.clone();
    lost.push(&key(3, -libc::EEXIST), &[4]);
    let got = counter_samples(&d.metric_only("c", &ids, &lost).expect("ids"));
    assert!(got.contains(&(vec!["3".to_string(), "[lost stack]".to_string()], 4.0)), "{got:?}");
    let warnings = d.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("1 map entries (value 4 of 8)") && warnings[0].contains("EEXIST"), "{warnings:?}");
    // The next read without lost stacks clears the warning.
    d.metric_only("c", &ids, &stacked).expect("ids");
    assert!(d.warnings().is_empty());
    // Without a stack table, an id cannot be decoded: the row is dropped and counted.
    let mut bare = stacked.clone();
    bare.stack_traces = None;
    let decoded = d.metric("c2", &ids, &bare).expect("metric");
    assert_eq!(decoded.row_errors.rows, 1, "{:?}", decoded.row_errors);
    assert!(decoded.row_errors.first.as_deref().unwrap_or("").contains("BPF_MAP_TYPE_STACK_TRACE"));
}

/// serve's kept keys (`keycache.rs`): for metrics of every shape, reads through the cache
/// (twice the same map, keys appearing and disappearing, failing and skipped keys, the same map
/// again) give exactly what fresh uncached decoders give, row errors included; and the cache
/// holds only the latest read's keys.
#[test]
fn kept_keys_decode_exactly_as_uncached() {
    let f = Fixture::new();
    let pid_comm = counter("pc", vec![uint("pid", 4), label("comm", 16, 0, vec![dec("string")])]);
    let mapped = counter(
        "op",
        vec![label("op", 4, 0, vec![dec("uint"), smap(&[("1", "read"), ("2", "write"), ("3", "read")], false)])],
    );
    let skipping = counter("sk", vec![uint("pid", 4), label("comm", 16, 0, vec![dec("string"), re(&["^p"])])]);
    let mut gauge = pid_comm.clone();
    gauge.name = "g".into();
    gauge.kind = MetricKind::Gauge;
    let none = counter("none", vec![]);
    let cpus = counter("cpu", vec![uint("pid", 4), uint("cpu", 2)]);
    let h = histogram(
        "lat",
        vec![uint("pid", 4), uint("bucket", 4)],
        HistogramSpec {
            bucket_type: BucketType::Exp2,
            bucket_min: 0,
            bucket_max: 3,
            multiplier: 1.0,
            bucket_keys: vec![],
        },
    );
    let pc_key = |pid: u32, comm: &str| {
        let mut k = [0u8; 20];
        k[..4].copy_from_slice(&pid.to_ne_bytes());
        k[4..4 + comm.len()].copy_from_slice(comm.as_bytes());
        k.to_vec()
    };
    let pc_maps = |extra: &[(u32, &str)], gone: u32| {
        let mut m = raw(20, 1, false, &[]);
        for i in 0..50u32 {
            if i != gone {
                m.push(&pc_key(i, &format!("p{}", i % 7)), &[u64::from(i)]);
            }
        }
        m.push(&pc_key(7, "x\u{e9}"), &[5]);
        m.push(&pc_key(8, "q"), &[0]);
        for (pid, comm) in extra {
            m.push(&pc_key(*pid, comm), &[1]);
        }
        m
    };
    let u32_map = |keys: &[u32]| {
        let mut m = raw(4, 1, false, &[]);
        for &k in keys {
            m.push(&k.to_ne_bytes(), &[u64::from(k) + 1]);
        }
        m
    };
    let hist_map = |gone: u32| {
        let mut m = raw(8, 1, false, &[]);
        for pid in 1..4u32 {
            for b in 0..4u32 {
                if pid * 10 + b != gone {
                    let mut k = pid.to_ne_bytes().to_vec();
                    k.extend_from_slice(&b.to_ne_bytes());
                    m.push(&k, &[u64::from(pid + b)]);
                }
            }
        }
        m
    };
    let cpu_map = |n: u32| {
        let mut m = raw(4, 3, true, &[]);
        for pid in 0..n {
            m.push(&pid.to_ne_bytes(), &[1, 2, u64::from(pid)]);
        }
        m
    };
    let mut none_map = raw(4, 1, false, &[]);
    none_map.push(&[0, 0, 0, 0], &[9]);
    let mut none_bad = none_map.clone();
    none_bad.push(&[1, 0, 0, 0], &[1]);
    let cases: Vec<(&MetricConfig, Vec<RawMap>)> = vec![
        (&pid_comm, vec![pc_maps(&[], 99), pc_maps(&[], 99), pc_maps(&[(60, "new")], 3), pc_maps(&[], 99)]),
        (&gauge, vec![pc_maps(&[], 99), pc_maps(&[(61, "p1")], 4), pc_maps(&[], 99)]),
        (&skipping, vec![pc_maps(&[], 99), pc_maps(&[(62, "zz"), (63, "pp")], 5), pc_maps(&[], 99)]),
        (&mapped, vec![u32_map(&[1, 2, 3, 9]), u32_map(&[1, 2, 3, 9]), u32_map(&[3, 2]), u32_map(&[9, 1, 4])]),
        (&none, vec![none_map.clone(), none_bad.clone(), none_map]),
        (&cpus, vec![cpu_map(5), cpu_map(5), cpu_map(3), cpu_map(6)]),
        (&h, vec![hist_map(0), hist_map(0), hist_map(21), hist_map(12)]),
    ];
    for (spec, maps) in cases {
        let mut kept = f.decoders();
        kept.keep_decoded_keys(true);
        for (i, map) in maps.iter().enumerate() {
            let want = f.decoders().metric("c", spec, map);
            let got = kept.metric("c", spec, map);
            assert_eq!(got, want, "metric {}, read {i}", spec.name);
            // And so the scrape text, byte for byte.
            assert_eq!(prom_text(&got), prom_text(&want), "metric {}, read {i}", spec.name);
            let state = kept.metrics.get(&("c".to_string(), spec.name.clone())).expect("state");
            let cache = state.key_cache.as_ref().expect("kept keys");
            let rows = if map.per_cpu { map.len() * map.slots } else { map.len() };
            assert_eq!(cache.keys(), rows, "metric {}, read {i}: keys kept", spec.name);
            assert!(cache.series() <= rows, "metric {}, read {i}: series kept", spec.name);
        }
    }
}

/// serve's kept keys against uncached decoders on random maps (`keycache.rs`): every kind of
/// label of `random_label` (failing, skipping and merging rows), counters, gauges and
/// histograms, per-CPU rows; a sequence of reads of one metric where keys are removed, added,
/// re-added after being gone, rows come in another order or exactly the last read's, some
/// keys repeat within a read. Each read through the cache (the first one fills it) gives the
/// same rows, the same decoder error count and first error, and byte for byte the same text as
/// fresh uncached decoders.
#[test]
fn kept_keys_match_uncached_on_random_read_sequences() {
    kept_keys_match_uncached(false);
}

/// The same with serve's order: a read without kept keys yet decodes uncached, and its keys are
/// kept after it (`fill_kept_keys`, once the scrape is answered).
#[test]
fn kept_keys_filled_after_the_read_match_uncached() {
    kept_keys_match_uncached(true);
}

/// serve's start: the first scrape finds the map empty, a later one full. The read whose keys
/// are mostly new decodes uncached, as a one-shot read does, and its keys are kept after it;
/// every read decodes as the uncached decoders do.
#[test]
fn kept_keys_of_a_read_mostly_new_are_filled_after_it() {
    let f = Fixture::new();
    let spec = counter("x", vec![uint("pid", 4), label("comm", 16, 0, vec![dec("string")])]);
    let map = |n: u32, add: u64| {
        let mut m = raw(20, 1, false, &[]);
        for i in 0..n {
            let mut key = [0u8; 20];
            key[..4].copy_from_slice(&(i + 1).to_ne_bytes());
            let comm = format!("p{}", i % 7);
            key[4..4 + comm.len()].copy_from_slice(comm.as_bytes());
            m.push(&key, &[u64::from(i) + add]);
        }
        m
    };
    let mut kept = f.decoders();
    kept.keep_decoded_keys(true);
    kept.fill_kept_keys_later(true);
    let kept_keys = |d: &Decoders| {
        d.metrics.get(&("c".to_string(), "x".to_string())).and_then(|s| s.key_cache.as_ref()).map(|c| c.keys())
    };
    for (n, add, before, after) in
        [(0, 0, None, Some(0)), (3000, 1, Some(0), Some(3000)), (3000, 2, Some(3000), Some(3000))]
    {
        let m = map(n, add);
        assert_eq!(kept.metric("c", &spec, &m), f.decoders().metric("c", &spec, &m), "{n} keys");
        assert_eq!(kept_keys(&kept), before, "kept keys after the read of {n}");
        kept.fill_kept_keys();
        assert_eq!(kept_keys(&kept), after, "kept keys after the fill of {n}");
    }
    // A held read overtaken by a read through the kept keys is not filled in after it: the kept
    // keys stay those of the latest read.
    let (big, small) = (map(10_000, 3), map(3000, 4));
    assert_eq!(kept.metric("c", &spec, &big), f.decoders().metric("c", &spec, &big));
    assert_eq!(kept.metric("c", &spec, &small), f.decoders().metric("c", &spec, &small));
    kept.fill_kept_keys();
    assert_eq!(kept_keys(&kept), Some(3000));
}

fn kept_keys_match_uncached(later: bool) {
    let f = Fixture::new();
    let mut r = Random(0x2545_f491_4f6c_dd1d);
    let names = ["pid", "comm", "a", "zeta", "b_1"];
    let (mut kept_cases, mut errors_seen, mut histograms) = (0, 0, 0);
    for case in 0..300 {
        let mut labels = random_labels(&mut r, &names, case);
        let hist = r.below(4) == 0;
        let per_cpu = !hist && r.below(3) == 0;
        if hist {
            labels.push(uint("bucket", 1));
        } else if per_cpu && r.below(2) == 0 {
            labels.push(label("cpu", 2, 0, vec![dec("uint")]));
        }
        let key_size = random_key_size(&labels, per_cpu);
        let slots = if per_cpu { 1 + r.below(3) as usize } else { 1 };
        let pool: Vec<Vec<u8>> = (0..1 + r.below(60))
            .map(|_| {
                let mut k = random_key(&mut r, key_size);
                if hist {
                    // Buckets 0 to 4 (bucket_max 3: the last is clamped), now and then one out
                    // of range.
                    let b = if r.below(20) == 0 { 200 } else { r.below(5) as u8 };
                    if let Some(last) = k.last_mut() {
                        *last = b;
                    }
                }
                if labels.is_empty() {
                    k = vec![0u8; 4];
                }
                k
            })
            .collect();
        let spec = if hist {
            histogram(
                "h",
                labels.clone(),
                HistogramSpec {
                    bucket_type: BucketType::Exp2,
                    bucket_min: 0,
                    bucket_max: 3,
                    multiplier: 1.0,
                    bucket_keys: vec![],
                },
            )
        } else if r.below(4) == 0 {
            MetricConfig { kind: MetricKind::Gauge, ..counter("g", labels.clone()) }
        } else {
            counter("c_total", labels.clone())
        };
        let mut kept = f.decoders();
        kept.keep_decoded_keys(true);
        kept.fill_kept_keys_later(later);
        let mut last: Vec<(Vec<u8>, Vec<u64>)> = Vec::new();
        for read in 0..6 {
            let entries: Vec<(Vec<u8>, Vec<u64>)> = match r.below(4) {
                // The last read's rows again, same order (new values).
                0 if read > 0 => last.iter().map(|(k, v)| (k.clone(), v.iter().map(|x| x + 1).collect())).collect(),
                // The last read's rows, some gone, some new or back, order kept.
                1 if read > 0 => {
                    let mut e: Vec<_> = last.iter().filter(|_| r.below(5) != 0).cloned().collect();
                    for _ in 0..r.below(10) {
                        let at = r.below(e.len() as u64 + 1) as usize;
                        let key = pool[r.below(pool.len() as u64) as usize].clone();
                        e.insert(at, (key, (0..slots).map(|_| r.below(100)).collect()));
                    }
                    e
                }
                // A fresh draw from the pool: another order, keys back after being gone.
                _ => (0..r.below(200))
                    .map(|_| {
                        let key = pool[r.below(pool.len() as u64) as usize].clone();
                        (key, (0..slots).map(|_| r.below(1000)).collect())
                    })
                    .collect(),
            };
            let map = raw(key_size, slots, per_cpu, &entries);
            let want = f.decoders().metric("c", &spec, &map);
            let got = kept.metric("c", &spec, &map);
            let what =
                format!("case {case}, read {read}: labels {labels:?}, per_cpu {per_cpu}, {} rows", entries.len());
            if later {
                let state = kept.metrics.get(&("c".to_string(), spec.name.clone())).expect("state");
                if read == 0 {
                    assert!(state.key_cache.is_none(), "{what}: the first read keeps no keys before its fill");
                }
                kept.fill_kept_keys();
            }
            assert_eq!(got, want, "{what}");
            assert_eq!(prom_text(&got), prom_text(&want), "{what}");
            if got.as_ref().is_ok_and(|d| d.row_errors.rows > 0) {
                errors_seen += 1;
            }
            last = entries;
        }
        let state = kept.metrics.get(&("c".to_string(), spec.name.clone())).expect("state");
        if state.key_cache.is_some() {
            kept_cases += 1;
            histograms += usize::from(hist);
        }
    }
    // The cases exercised the cache, with failing rows and histograms among them.
    assert!(kept_cases > 150 && errors_seen > 20 && histograms > 20, "{kept_cases} {errors_seen} {histograms}");
}

/// Decoders whose results change over the life of the process are never kept: a stack id's
/// frames follow the stack-trace map of each read, also with kept keys on.
#[test]
fn kept_keys_leave_unstable_decoders_alone() {
    let f = Fixture::new();
    let ids = counter("samples_total", vec![uint("pid", 4), label("kstack", 4, 4, vec![dec("kstack")])]);
    let mut key = 1u32.to_ne_bytes().to_vec();
    key.extend_from_slice(&5i32.to_ne_bytes());
    key.extend_from_slice(&[0; 4]);
    let with_frames = |frame: u64| {
        let mut m = raw(12, 1, false, &[(key.clone(), vec![3])]);
        m.stack_traces = Some(std::sync::Arc::new(crate::raw::StackTraces {
            name: "stacks".into(),
            depth: 2,
            ids: vec![5],
            frames: vec![frame, 0],
        }));
        m
    };
    let mut kept = f.decoders();
    kept.keep_decoded_keys(true);
    let first = counter_samples(&kept.metric_only("c", &ids, &with_frames(0xffffffff81420410)).expect("ids"));
    assert_eq!(first, [(strs(&["1", "schedule"]), 3.0)]);
    // The id's slot now holds another stack: decoded again.
    let second = counter_samples(&kept.metric_only("c", &ids, &with_frames(0xffffffff814203c8)).expect("ids"));
    assert_eq!(second, [(strs(&["1", "process_timeout"]), 3.0)]);
    let state = kept.metrics.get(&("c".to_string(), "samples_total".to_string())).expect("state");
    assert!(state.key_cache.is_none());
    for (decoder, stable) in [
        ("ksym", false),
        ("kstack", false),
        ("ustack", false),
        ("cgroup", false),
        ("ifname", false),
        ("majorminor", false),
    ]
    .into_iter()
    .chain([("uint", true), ("string", true), ("syscall", true), ("errno", true), ("pci_vendor", true)])
    {
        assert_eq!(super::chain::stable(&super::chain::compile(&[dec(decoder)])), stable, "{decoder}");
    }
}
