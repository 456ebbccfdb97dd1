//! `cargo bench --bench serve` (as root): the `ebpfx serve` figures recorded in README.md.
//!
//! `ebpfx serve bigmap` (tests/configs/bigmap.yaml, tests/bpf/bigmap.bpf.c) attaches a config
//! whose 100,000-entry hash map (pid + comm) this bench then fills from user space through the
//! map's id. Then, in alternating rounds (so that the load of a shared machine hits both alike),
//! it times one scrape of serve over loopback HTTP (read + decode + render + transfer, the
//! client reading every byte into a buffer it reuses from scrape to scrape, as Prometheus does)
//! and what a one-shot run does once on the same map in this process:
//! batched read + decode (fresh decoders) + prom render to /dev/null. It prints min and median of
//! each (serve's first scrape, which decodes every key that later scrapes find in serve's label
//! cache, apart, beside the one-shot of the same round), and serve's RSS (idle, after, peak).
//! `EBPFX_BENCH_ROUNDS` sets the rounds (default 31);
//! `EBPFX_BENCH_VERBOSE=1` runs serve with `-vv` (it then times each scrape's parts on stderr);
//! `EBPFX_BENCH_FRESH_BUFFER=1` has the client read each answer into new memory.
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

// The tests' helpers: the bench compiles tests/bpf/bigmap.bpf.c as they do (build.rs builds only
// the built-in objects) and runs the ebpfx built with it.
#[path = "../tests/common/mod.rs"]
mod common;

const ENTRIES: u32 = 100_000;
const ROUNDS: usize = 31;
/// One-shots in a process of their own (the first scrape's reference).
const FRESH_RUNS: usize = 11;

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn min(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
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

/// One HTTP/1.0 GET, the whole answer read into `buf` (emptied first, its memory reused from
/// scrape to scrape as Prometheus reuses its scrape buffers): (status line, body length, time to
/// the first byte of the answer).
fn scrape(port: u16, buf: &mut Vec<u8>) -> anyhow::Result<(String, usize, Duration)> {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: bench\r\n\r\n")?;
    buf.clear();
    let mut first = [0u8; 1];
    let n = s.read(&mut first)?;
    let ttfb = t.elapsed();
    buf.extend_from_slice(&first[..n]);
    s.read_to_end(buf)?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0);
    let status = String::from_utf8_lossy(&buf[..buf.iter().position(|b| *b == b'\r').unwrap_or(0)]).into_owned();
    anyhow::ensure!(buf.ends_with(b"\n"), "the answer does not end with a whole line");
    Ok((status, buf.len().saturating_sub(head_end + 4), ttfb))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The one-shot of the same map in a process of its own (this bench run again with
/// `EBPFX_BENCH_FRESH_ONE_SHOT=MAP_ID:CONFIG_FILE`), timed inside it: read + decode + render with
/// a fresh heap, as `ebpfx run` has and as serve's first scrape has.
const FRESH_ENV: &str = "EBPFX_BENCH_FRESH_ONE_SHOT";

fn shape() -> MapShape {
    MapShape {
        name: "synthetic_total".into(),
        key_size: 20,
        value_size: 8,
        max_entries: ENTRIES,
        map_type: MapType::Hash,
    }
}

/// Read + decode (fresh decoders) + prom render to /dev/null of `map`: the parts' times.
fn one_shot(map: &MapHandle, config: &Config) -> anyhow::Result<[Duration; 3]> {
    let t0 = Instant::now();
    let raw = read_map(map.as_fd().as_raw_fd(), &shape())?;
    anyhow::ensure!(raw.len() == ENTRIES as usize, "read {} entries", raw.len());
    let t1 = Instant::now();
    let mut decoders = Decoders::new(Env::system());
    let metric = decoders.metric("bigmap", &config.metrics[0], &raw).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t2 = Instant::now();
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
    Ok([t1 - t0, t2 - t1, t2.elapsed()])
}

/// The child's side of [`FRESH_ENV`]: prints the one-shot's nanoseconds.
fn fresh_child(spec: &str) -> anyhow::Result<()> {
    let (id, config) = spec.split_once(':').ok_or_else(|| anyhow::anyhow!("{FRESH_ENV}={spec}"))?;
    let map = MapHandle::from_map_id(id.parse()?)?;
    let config = Config::parse("bigmap", "bigmap.yaml", &std::fs::read_to_string(config)?)?;
    let t = Instant::now();
    one_shot(&map, &config)?;
    println!("{}", t.elapsed().as_nanos());
    Ok(())
}

/// Runs [`fresh_child`] in a new process: its one-shot time.
fn fresh_one_shot(id: u32, config: &std::path::Path) -> anyhow::Result<Duration> {
    let out = Command::new(std::env::current_exe()?).env(FRESH_ENV, format!("{id}:{}", config.display())).output()?;
    anyhow::ensure!(out.status.success(), "fresh one-shot: {}", String::from_utf8_lossy(&out.stderr));
    let nanos: u64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Ok(Duration::from_nanos(nanos))
}

fn main() -> anyhow::Result<()> {
    if let Ok(spec) = std::env::var(FRESH_ENV) {
        return fresh_child(&spec);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("benchmarks need root (they load BPF programs)");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(manifest.join("tests/configs/bigmap.yaml"), dir.path().join("bigmap.yaml"))?;
    std::fs::copy(common::test_object("bigmap"), dir.path().join("bigmap.bpf.o"))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let bin = std::env::var("EBPFX_BIN").unwrap_or_else(|_| common::bin().to_string());
    let serve = Killed(
        Command::new(&bin)
            .arg("--config-dir")
            .arg(dir.path())
            // EBPFX_BENCH_VERBOSE=1: serve says where each scrape's time went (-vv).
            .arg(if std::env::var_os("EBPFX_BENCH_VERBOSE").is_some() { "-vv" } else { "-q" })
            .args(["serve", "bigmap", "--web.listen-address", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    // The port listens before the programs attach: wait for a whole scrape.
    let mut buf = Vec::new();
    while !scrape(port, &mut buf).is_ok_and(|(status, _, _)| status.contains(" 200")) {
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

    // The one-shot path on the same map, in this process.
    let config_file = dir.path().join("bigmap.yaml");
    let config = Config::parse("bigmap", "bigmap.yaml", &std::fs::read_to_string(&config_file)?)?;
    let verbose = std::env::var_os("EBPFX_BENCH_VERBOSE").is_some();
    let one_shot = || -> anyhow::Result<()> {
        let [read, decode, render] = one_shot(&map, &config)?;
        if verbose {
            println!("one-shot: map read in {}, decoded in {}, rendered in {}", ms(read), ms(decode), ms(render));
        }
        Ok(())
    };

    let rounds = std::env::var("EBPFX_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(ROUNDS).max(2);
    let (mut scrapes, mut one_shots, mut first_bytes) = (Vec::new(), Vec::new(), Vec::new());
    let load_before = loadavg();
    // EBPFX_BENCH_FRESH_BUFFER=1: the client reads each answer into new memory (the first
    // versions of this bench did), which adds its page faults to every scrape.
    let fresh = std::env::var_os("EBPFX_BENCH_FRESH_BUFFER").is_some();
    let mut bytes = 0;
    // The reference of the first scrape (a fresh process, heap and all): one-shots in processes
    // of their own, one in each of the first rounds.
    let mut fresh_shots = Vec::new();
    for round in 0..rounds {
        if round < FRESH_RUNS {
            fresh_shots.push(fresh_one_shot(id, &config_file)?);
        }
        // Alternate which goes first, so that neither always follows the other.
        for which in [round % 2, 1 - round % 2] {
            let t = Instant::now();
            if which == 0 {
                if fresh {
                    buf = Vec::with_capacity(8 << 20);
                }
                let (status, n, ttfb) = scrape(port, &mut buf)?;
                scrapes.push(t.elapsed());
                first_bytes.push(ttfb);
                anyhow::ensure!(status.contains(" 200"), "scrape: {status}");
                anyhow::ensure!(n > 1_000_000, "scrape of {n} bytes: the map is not in it");
                bytes = n;
            } else {
                one_shot()?;
                one_shots.push(t.elapsed());
            }
        }
    }
    // The first scrape decodes every key (serve keeps them for the next ones): not in the
    // figures below, printed on its own.
    let first_scrape = scrapes.remove(0);
    first_bytes.remove(0);
    // The first one-shot, timed right after it in round 0 (every one-shot starts from fresh
    // decoders, so it stays in the figures below too): the first scrape's reference.
    let first_one_shot = one_shots.first().copied().unwrap_or_default();
    let rss_after = status_kb(pid, "VmRSS");
    let hwm = status_kb(pid, "VmHWM");
    println!("serve, 100,000-series map ({bytes} bytes of text), {rounds} alternating rounds, min / median:");
    println!(
        "  first scrape (decodes every key, fills serve's label cache): {} (round 0's one-shot: {})",
        ms(first_scrape),
        ms(first_one_shot)
    );
    println!(
        "  one-shot in a fresh process ({FRESH_RUNS} runs), the first scrape's reference: {} / {}",
        ms(min(&fresh_shots)),
        ms(median(&fresh_shots))
    );
    println!(
        "  scrape over loopback HTTP (read + decode + render + send): {} / {}",
        ms(min(&scrapes)),
        ms(median(&scrapes))
    );
    println!(
        "    of which until the answer's first byte:                  {} / {}",
        ms(min(&first_bytes)),
        ms(median(&first_bytes))
    );
    println!(
        "  one-shot read + decode + render of the same map:            {} / {}",
        ms(min(&one_shots)),
        ms(median(&one_shots))
    );
    println!(
        "  serve RSS: {:.1} MB idle (empty map), {:.1} MB after the scrapes, peak {:.1} MB",
        rss_idle as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!("  load average (1, 5, 15 min) before: {load_before}, after: {}", loadavg());
    drop(serve);
    Ok(())
}
