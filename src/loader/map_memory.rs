//! Kernel memory each map of an object will take, computed from the opened object before
//! anything is loaded, and the bound above which a config is refused: a corrupted or careless
//! `max_entries` (a per-CPU array of 2^31 entries) would otherwise have the kernel allocate
//! tens of gigabytes at load. `ebpfx check -v` shows the figure for every map.
use std::sync::OnceLock;

use libbpf_rs::{MapType, OpenObject};

use crate::error::config_err;

/// The bound when `--max-map-memory` is not given: 1 GiB per map.
pub const DEFAULT_LIMIT: u64 = 1 << 30;

static LIMIT: OnceLock<u64> = OnceLock::new();

/// Sets the per-map bound for this process (`--max-map-memory`); the first call wins.
pub fn set_limit(bytes: Option<u64>) {
    if let Some(b) = bytes {
        let _ = LIMIT.set(b);
    }
}

/// The per-map bound in bytes.
pub fn limit() -> u64 {
    LIMIT.get().copied().unwrap_or(DEFAULT_LIMIT)
}

/// The memory estimate of one map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapMemory {
    pub name: String,
    pub map_type: MapType,
    pub max_entries: u32,
    pub key_size: u32,
    pub value_size: u32,
    /// CPUs each value is kept for (1 unless per-CPU).
    pub cpus: u64,
    /// Bytes the kernel allocates at least (keys and values; the kernel's per-entry
    /// bookkeeping comes on top). Saturates instead of overflowing.
    pub bytes: u64,
}

fn round8(n: u32) -> u64 {
    (u64::from(n) + 7) & !7
}

/// Per-CPU value maps: one value slot per possible CPU.
fn per_cpu(t: MapType) -> bool {
    matches!(t, MapType::PercpuHash | MapType::PercpuArray | MapType::LruPercpuHash | MapType::PercpuCgroupStorage)
}

/// Bytes a map of this shape takes at least: arrays hold values only; hash-like maps a key and a
/// value per entry; per-CPU values once per CPU (each rounded up to 8 bytes, as the kernel
/// stores them); a ring buffer is `max_entries` bytes; local storage maps (task, socket, inode,
/// cgroup) grow with their owners and have no fixed size.
pub fn estimate(map_type: MapType, max_entries: u32, key_size: u32, value_size: u32, cpus: u64) -> u64 {
    let entries = u64::from(max_entries);
    let cpus = if per_cpu(map_type) { cpus.max(1) } else { 1 };
    let value = round8(value_size).saturating_mul(cpus);
    match map_type {
        MapType::RingBuf | MapType::UserRingBuf => entries,
        MapType::SkStorage | MapType::InodeStorage | MapType::TaskStorage | MapType::CGrpStorage => 0,
        MapType::Array
        | MapType::PercpuArray
        | MapType::ProgArray
        | MapType::PerfEventArray
        | MapType::CgroupArray
        | MapType::ArrayOfMaps
        | MapType::Devmap
        | MapType::Cpumap
        | MapType::Xskmap
        | MapType::Queue
        | MapType::Stack => entries.saturating_mul(value),
        _ => entries.saturating_mul(round8(key_size).saturating_add(value)),
    }
}

/// The estimate for every map of an open object.
pub fn of_object(open: &OpenObject) -> Vec<MapMemory> {
    let cpus = libbpf_rs::num_possible_cpus().map(|n| n as u64).unwrap_or(1).max(1);
    open.maps()
        .map(|m| {
            let (map_type, max_entries, key_size, value_size) =
                (m.map_type(), m.max_entries(), m.key_size(), m.value_size());
            MapMemory {
                name: m.name().to_string_lossy().into_owned(),
                map_type,
                max_entries,
                key_size,
                value_size,
                cpus: if per_cpu(map_type) { cpus } else { 1 },
                bytes: estimate(map_type, max_entries, key_size, value_size, cpus),
            }
        })
        .collect()
}

/// Bytes in binary units for people: `512 B`, `18.0 KiB`, `16.0 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// One line describing a map's memory, e.g. `map counts (Hash): 10240 entries x (16 B key +
/// 8 B value) = 240.0 KiB`.
pub fn describe(m: &MapMemory) -> String {
    let value = if m.cpus > 1 {
        format!("{} B value x {} CPUs", m.value_size, m.cpus)
    } else {
        format!("{} B value", m.value_size)
    };
    format!(
        "map {} ({:?}): {} entries, {} B key, {value}: {}{}",
        m.name,
        m.map_type,
        m.max_entries,
        m.key_size,
        human(m.bytes),
        if m.bytes == u64::MAX { " or more" } else { "" }
    )
}

/// One message per map above `limit`, naming the config, the map and the flag that raises it.
pub fn problems(config: &str, maps: &[MapMemory], limit: u64) -> Vec<String> {
    maps.iter()
        .filter(|m| m.bytes > limit)
        .map(|m| {
            format!(
                "config {config}: {} exceeds the per-map bound of {} (max_entries too large or corrupted?); \
                 raise the bound with --max-map-memory SIZE if this is intended",
                describe(m),
                human(limit)
            )
        })
        .collect()
}

/// Refuses (config error, exit 2) an object with a map above the process' bound.
pub fn enforce(config: &str, open: &OpenObject) -> anyhow::Result<()> {
    let p = problems(config, &of_object(open), limit());
    if p.is_empty() {
        Ok(())
    } else {
        Err(config_err(p.join("\n")))
    }
}

/// Parses `--max-map-memory`: bytes, or a number with K, M, G, T (powers of 1024, optionally
/// written KiB, MiB, ...; `B` alone is bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("unknown unit {other:?} in {text:?}: use a byte count or K, M, G, T (e.g. 4G)")),
    };
    let n: f64 =
        num.parse().map_err(|_| format!("{text:?} is not a size: use a byte count or K, M, G, T (e.g. 4G)"))?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is out of range: give a size from 1 byte to 16 EiB"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_arrays_count_every_cpu_and_hashes_their_keys() {
        // The corrupted map of issue 9: 2^31 per-CPU 8-byte values on 2 CPUs = 32 GiB.
        assert_eq!(estimate(MapType::PercpuArray, 1 << 31, 4, 8, 2), 32 << 30);
        assert_eq!(estimate(MapType::Array, 1024, 4, 4, 8), 8 * 1024);
        assert_eq!(estimate(MapType::Hash, 10240, 36, 8, 2), 10240 * 48);
        assert_eq!(estimate(MapType::PercpuHash, 1024, 8, 8, 4), 1024 * (8 + 32));
        assert_eq!(estimate(MapType::RingBuf, 1 << 20, 0, 0, 2), 1 << 20);
        assert_eq!(estimate(MapType::TaskStorage, 0, 4, 8, 2), 0);
        assert_eq!(estimate(MapType::PercpuHash, u32::MAX, u32::MAX, u32::MAX, 1 << 20), u64::MAX);
    }

    #[test]
    fn problems_name_config_map_and_flag() {
        let m = MapMemory {
            name: "huge".into(),
            map_type: MapType::PercpuArray,
            max_entries: 1 << 31,
            key_size: 4,
            value_size: 8,
            cpus: 2,
            bytes: 32 << 30,
        };
        let p = problems("bad", std::slice::from_ref(&m), DEFAULT_LIMIT);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("config bad: map huge (PercpuArray): 2147483648 entries"), "{}", p[0]);
        assert!(p[0].contains("32.0 GiB") && p[0].contains("1.0 GiB") && p[0].contains("--max-map-memory"), "{}", p[0]);
        assert!(problems("bad", &[m], 64 << 30).is_empty());
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("4X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999E").is_err());
    }
}
