//! `cargo bench --bench core` (as root): the speed figures recorded in README.md.
//!
//! 1. read + decode + render of a synthetic 100,000-entry hash map with two labels
//!    (u32 pid + 16-byte comm), split into the batched read, the decode and the prom render;
//! 2. time from exec to all programs attached, for the built-in biolatency;
//! 3. peak RSS of a 3 s biolatency run with O_DIRECT writes alongside.
//!
//! Each figure is the median of several runs. The machine is noisy: compare figures taken in
//! the same run (see also benches/anchors.sh for the reference loader side by side).
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use ebpfx::collect::{read_map, MapShape};
use ebpfx::config::Config;
use ebpfx::decode::{Decoders, Env};
use ebpfx::model::{Snapshot, Window};
use ebpfx::render::{render_to, Format, Options};
use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

const ENTRIES: u32 = 100_000;

const TWO_LABELS: &str = r#"
metrics:
  counters:
    - name: synthetic_total
      help: synthetic two-label counter
      labels:
        - name: pid
          size: 4
          decoders: [{name: uint}]
        - name: comm
          size: 16
          decoders: [{name: string}]
"#;

/// A writer that counts what passes through it.
struct Counted<W> {
    inner: W,
    bytes: usize,
}

impl<W: std::io::Write> std::io::Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Task names like a busy host's: up to 15 bytes, sharing no prefix.
const VARIED: [&str; 10] = [
    "systemd-journal",
    "kworker/u8:",
    "nginx: worker",
    "postgres: walwr",
    "java",
    "containerd-shim",
    "sshd",
    "chrome",
    "node",
    "irq/12",
];

/// Read + decode + render of a 100k-entry hash map keyed by (u32 pid, 16-byte comm), 500
/// distinct names: "proc-N", or names like a real host's (`VARIED`, a number appended).
fn bench_map_pipeline(varied: bool) -> anyhow::Result<()> {
    let map = MapHandle::create(
        MapType::Hash,
        Some("synthetic_total"),
        20,
        8,
        ENTRIES,
        &libbpf_rs::libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        },
    )?;
    for i in 0..ENTRIES {
        let mut key = [0u8; 20];
        key[..4].copy_from_slice(&i.to_ne_bytes());
        let comm = if varied {
            format!("{}{}", VARIED[(i % 10) as usize], (i / 10) % 50)
        } else {
            format!("proc-{}", i % 500)
        };
        let n = comm.len().min(15);
        key[4..4 + n].copy_from_slice(&comm.as_bytes()[..n]);
        map.update(&key, &(u64::from(i) * 3).to_ne_bytes(), MapFlags::ANY)?;
    }
    let shape = MapShape {
        name: "synthetic_total".into(),
        key_size: 20,
        value_size: 8,
        max_entries: ENTRIES,
        map_type: MapType::Hash,
    };
    let config = Config::parse("synthetic", "synthetic.yaml", TWO_LABELS)?;
    let (mut t_read, mut t_decode, mut t_render, mut t_total) = (vec![], vec![], vec![], vec![]);
    for _ in 0..15 {
        let t0 = Instant::now();
        let raw = read_map(map.as_fd().as_raw_fd(), &shape)?;
        let t1 = Instant::now();
        assert_eq!(raw.len(), ENTRIES as usize, "batched read must return every entry");
        // A fresh decoder each time, as in a one-shot run.
        let mut decoders = Decoders::new(Env::system());
        let metric = decoders.metric("synthetic", &config.metrics[0], &raw).map_err(|e| anyhow::anyhow!("{e}"))?.metric;
        let t2 = Instant::now();
        let now = SystemTime::now();
        let snap = Snapshot {
            window: Window { start: now, end: now, length: Duration::from_secs(1) },
            metrics: vec![metric],
            decoder_errors: vec![("synthetic".into(), 0)],
            warnings: vec![],
            self_metrics: vec![],
        };
        // As ebpfx prints it: streamed to the output (here /dev/null), not built as one string.
        let mut sink = Counted { inner: std::fs::OpenOptions::new().write(true).open("/dev/null")?, bytes: 0 };
        render_to(Format::Prom, &snap, &Options { prefix: "ebpfx_".into(), ..Default::default() }, &mut sink)?;
        let t3 = Instant::now();
        assert!(sink.bytes > 1_000_000);
        t_read.push(t1 - t0);
        t_decode.push(t2 - t1);
        t_render.push(t3 - t2);
        t_total.push(t3 - t0);
    }
    let names = if varied { "varied task names (systemd-journal, kworker/u8:N, ...)" } else { "proc-N" };
    println!("map pipeline, {ENTRIES} entries, labels pid + comm, {names} (median / min of 15):");
    println!("  batched read        {}", both(t_read));
    println!("  decode              {}", both(t_decode));
    println!("  prom render         {}  (streamed to /dev/null)", both(t_render));
    println!("  read+decode+render  {}", both(t_total));
    Ok(())
}

fn both(v: Vec<Duration>) -> String {
    let min = v.iter().min().copied().unwrap_or_default();
    format!("{} / {}", ms(median(v)), ms(min))
}

/// The anchors' C reader (../shared/bench/anchors/src/mapread.c) on 100k entries in the same run:
/// the batched read without ebpfx, for scale (its map has 1M slots and 16-byte keys).
fn bench_anchor_read() -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("EBPFX_ANCHOR_DIR").map(std::path::PathBuf::from) else {
        return Ok(());
    };
    let out = Command::new(dir.join("build/mapread")).args(["100000", "7", "8192"]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().filter(|l| l.contains("method=lookup_batch")) {
        let field = |k: &str| line.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap_or("?").to_string();
        println!(
            "anchor: C lookup_batch of 100000 entries (mapread, median / min of 7): {} ms / {} ms",
            field("median_ms="),
            field("min_ms=")
        );
    }
    Ok(())
}

fn ebpfx_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/release/deps/core-xxxx -> target/release/ebpfx
    exe.parent().and_then(|d| d.parent()).map(|d| d.join("ebpfx")).unwrap_or_default()
}

fn bench_startup() -> anyhow::Result<()> {
    let bin = ebpfx_bin();
    if !bin.exists() {
        println!("startup: {} missing (run `cargo build --release` first)", bin.display());
        return Ok(());
    }
    let mut times = vec![];
    for _ in 0..11 {
        let t0 = Instant::now();
        let mut child = Command::new(&bin)
            .args(["-v", "run", "biolatency", "--for", "100ms", "--format", "prom"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut reader = BufReader::new(child.stderr.take().ok_or_else(|| anyhow::anyhow!("stderr"))?);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                anyhow::bail!("ebpfx exited before attaching");
            }
            if line.contains("programs attached in") {
                times.push(t0.elapsed());
                break;
            }
        }
        child.wait()?;
    }
    times.remove(0); // warm-up
    println!("exec -> all programs attached, biolatency (median of 10): {}", ms(median(times)));
    Ok(())
}

fn bench_rss() -> anyhow::Result<()> {
    let bin = ebpfx_bin();
    if !bin.exists() {
        return Ok(());
    }
    let dir = std::path::PathBuf::from(format!("/var/tmp/ebpfx-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rss = vec![];
    for _ in 0..3 {
        let out = dir.join("io");
        let dd = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let _ = Command::new("dd")
                .args([
                    "if=/dev/zero",
                    &format!("of={}", out.display()),
                    "bs=4k",
                    "count=3000",
                    "oflag=direct",
                    "status=none",
                ])
                .status();
        });
        // /usr/bin/time reports the child's own peak RSS (wait4's ru_maxrss would include this
        // benchmark's memory, inherited through fork).
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(&bin)
            .args(["run", "biolatency", "--for", "3s", "--format", "hist"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        dd.join().ok();
        if let Some(kb) = String::from_utf8_lossy(&out.stderr).lines().last().and_then(|l| l.trim().parse::<u64>().ok())
        {
            rss.push(kb);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    rss.sort();
    if let Some(m) = rss.get(rss.len() / 2) {
        println!("peak RSS, 3 s biolatency run (median of {}): {:.1} MB", rss.len(), *m as f64 / 1024.0);
    }
    Ok(())
}

/// Exec -> READY and peak RSS of the minimal libbpf C loader of ../shared/bench/anchors, when
/// benches/anchors.sh built it (EBPFX_ANCHOR_DIR): the same measurements, side by side.
fn bench_anchor() -> anyhow::Result<()> {
    let Some(dir) = std::env::var_os("EBPFX_ANCHOR_DIR").map(std::path::PathBuf::from) else {
        println!("anchor loader: not built (run benches/anchors.sh for the side-by-side figures)");
        return Ok(());
    };
    let bpfload = dir.join("build/bpfload");
    let obj = dir.join("build/biolat_btf.bpf.o");
    let mut times = vec![];
    for _ in 0..11 {
        let t0 = Instant::now();
        let mut child =
            Command::new(&bpfload).arg("-x").arg(&obj).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
        let mut reader = BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("stdout"))?);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                anyhow::bail!("bpfload exited before READY");
            }
            if line.starts_with("READY") {
                times.push(t0.elapsed());
                break;
            }
        }
        child.wait()?;
    }
    times.remove(0);
    println!(
        "anchor: exec -> all programs attached, minimal libbpf C loader, tp_btf biolat (median of 10): {}",
        ms(median(times))
    );
    let mut rss = vec![];
    for _ in 0..3 {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(&bpfload)
            .args(["-d", "3", "-H", "hist"])
            .arg(&obj)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        if let Some(kb) = String::from_utf8_lossy(&out.stderr).lines().last().and_then(|l| l.trim().parse::<u64>().ok())
        {
            rss.push(kb);
        }
    }
    rss.sort();
    if let Some(m) = rss.get(rss.len() / 2) {
        println!(
            "anchor: peak RSS, 3 s run, minimal libbpf C loader (median of {}): {:.1} MB",
            rss.len(),
            *m as f64 / 1024.0
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("benchmarks need root (they load BPF programs and create maps)");
        return Ok(());
    }
    bench_map_pipeline(false)?;
    bench_map_pipeline(true)?;
    bench_anchor_read()?;
    bench_startup()?;
    bench_rss()?;
    bench_anchor()?;
    Ok(())
}
