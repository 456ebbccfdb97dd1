//! `cargo bench --bench serve` (as root): the `ebpfx serve` figures recorded in README.md.
//!
//! `ebpfx serve bigmap` (tests/configs/bigmap.yaml, tests/bpf/bigmap.bpf.c) attaches a config
//! whose 100,000-entry hash map (pid + comm) this bench then fills from user space through the
//! map's id. It times scrapes of serve over loopback HTTP and reads serve's RSS, then times, on
//! the same map, what a one-shot run does once: batched read + decode (fresh decoders) + prom
//! render, in this process.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use ebpfx::collect::{read_map, MapShape};
use ebpfx::config::Config;
use ebpfx::decode::{Decoders, Env};
use ebpfx::model::{Snapshot, Window};
use ebpfx::render::{render_to, Format, Options};
use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

const ENTRIES: u32 = 100_000;
const RUNS: usize = 15;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().trim_end_matches(" kB").to_string()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One HTTP/1.0 GET: (status line, body length).
fn scrape(port: u16) -> anyhow::Result<(String, usize)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")?;
    let mut buf = Vec::with_capacity(8 << 20);
    s.read_to_end(&mut buf)?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
    let status = String::from_utf8_lossy(&buf[..buf.iter().position(|b| *b == b'\r').unwrap_or(0)]).into_owned();
    Ok((status, buf.len().saturating_sub(head_end + 4)))
}

fn main() -> anyhow::Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("benchmarks need root (they load BPF programs)");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(manifest.join("tests/configs/bigmap.yaml"), dir.path().join("bigmap.yaml"))?;
    let object = std::path::Path::new(env!("EBPFX_OBJECT_DIR")).join("tests/bigmap.bpf.o");
    std::fs::copy(&object, dir.path().join("bigmap.bpf.o"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let bin =
        std::env::var("EBPFX_BIN").unwrap_or_else(|_| manifest.join("target/release/ebpfx").display().to_string());
    let serve = Killed(
        Command::new(&bin)
            .arg("--config-dir")
            .arg(dir.path())
            .args(["-q", "serve", "bigmap", "--web.listen-address", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    // The port listens before the programs attach: wait for a whole scrape.
    while !scrape(port).is_ok_and(|(status, _)| status.contains(" 200")) {
        anyhow::ensure!(Instant::now() < deadline, "{bin} serve did not answer");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = serve.0.id();
    let rss_idle = status_kb(pid, "VmRSS");

    // serve's map: the map named synthetic_total among serve's own descriptors (other benches
    // may have maps of that name).
    let mut own = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))? {
        let text = std::fs::read_to_string(fd?.path()).unwrap_or_default();
        own.extend(text.lines().filter_map(|l| l.strip_prefix("map_id:")).filter_map(|v| v.trim().parse::<u32>().ok()));
    }
    let id = libbpf_rs::query::MapInfoIter::default()
        .filter(|m| m.name.to_string_lossy() == "synthetic_total" && own.contains(&m.id))
        .map(|m| m.id)
        .max()
        .ok_or_else(|| anyhow::anyhow!("serve's synthetic_total map not found"))?;
    let map = MapHandle::from_map_id(id)?;
    for i in 0..ENTRIES {
        let mut key = [0u8; 20];
        key[..4].copy_from_slice(&i.to_ne_bytes());
        let comm = format!("proc-{}", i % 500);
        key[4..4 + comm.len()].copy_from_slice(comm.as_bytes());
        map.update(&key, &(u64::from(i) * 3).to_ne_bytes(), MapFlags::ANY)?;
    }

    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let (status, n) = scrape(port)?;
        times.push(t.elapsed());
        anyhow::ensure!(status.contains(" 200"), "scrape: {status}");
        bytes = n;
    }
    let serve_scrape = median(times);
    let rss_after = status_kb(pid, "VmRSS");
    let hwm = status_kb(pid, "VmHWM");

    // The one-shot path on the same map, in this process.
    let shape = MapShape {
        name: "synthetic_total".into(),
        key_size: 20,
        value_size: 8,
        max_entries: ENTRIES,
        map_type: MapType::Hash,
    };
    let config = Config::parse("bigmap", "bigmap.yaml", &std::fs::read_to_string(dir.path().join("bigmap.yaml"))?)?;
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let raw = read_map(map.as_fd().as_raw_fd(), &shape)?;
        anyhow::ensure!(raw.len() == ENTRIES as usize, "read {} entries", raw.len());
        let mut decoders = Decoders::new(Env::system());
        let metric = decoders.metric("bigmap", &config.metrics[0], &raw).map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = SystemTime::now();
        let snap = Snapshot {
            window: Window { start: now, end: now, length: Duration::from_secs(1) },
            metrics: vec![metric.metric],
            decoder_errors: vec![("bigmap".into(), 0)],
            warnings: vec![],
            self_metrics: vec![],
        };
        let mut sink = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        render_to(Format::Prom, &snap, &Options { prefix: "ebpfx_".into(), ..Options::default() }, &mut sink)?;
        times.push(t.elapsed());
    }
    let one_shot = median(times);
    println!("serve, 100,000-series map ({bytes} bytes of text), median of {RUNS}:");
    println!("  scrape over loopback HTTP (read + decode + render + send): {}", ms(serve_scrape));
    println!("  one-shot read + decode + render of the same map:            {}", ms(one_shot));
    println!(
        "  serve RSS: {:.1} MB idle (empty map), {:.1} MB after the scrapes, peak {:.1} MB",
        rss_idle as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(serve);
    Ok(())
}
