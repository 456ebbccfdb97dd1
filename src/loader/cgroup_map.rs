//! `cgroup_id_map` (docs/config-format.md#loading-and-attaching): before the window, write 1 into
//! the config's map for every cgroup whose path matches one of the regexps, so the BPF program can
//! filter on it. A one-shot run syncs once; cgroups created during the window are not added.
use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::AsRawFd;

use anyhow::anyhow;
use libbpf_rs::{MapCore, MapFlags};

use super::Loaded;
use crate::config::CgroupIdMap;

/// Cgroups written into the map, chosen from `table` (cgroup id → path, as the cgroup
/// decoder's walk of /sys/fs/cgroup gives it).
pub fn sync(loaded: &Loaded, spec: &CgroupIdMap, table: HashMap<u64, String>) -> anyhow::Result<usize> {
    let name = &loaded.config.name;
    let map = loaded
        .object
        .maps()
        .find(|m| m.name() == OsStr::new(&spec.name))
        .ok_or_else(|| anyhow!("config {name}: cgroup_id_map: the object has no map named {:?}", spec.name))?;
    let regexps = spec
        .regexps
        .iter()
        .map(|r| regex::Regex::new(r).map_err(|e| anyhow!("config {name}: cgroup_id_map regexp {r:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut paths: Vec<(u64, String)> =
        table.into_iter().filter(|(_, p)| regexps.iter().any(|r| r.is_match(p))).collect();
    paths.sort();
    let one = 1u64.to_ne_bytes();
    let mut written = 0;
    for (id, path) in paths {
        let result = if spec.map_type == "cgrp_storage" {
            // Cgroup-storage maps are keyed by a descriptor of the cgroup directory (v2 only:
            // v1 directories of a hybrid host are refused by the kernel and skipped).
            match std::fs::File::open(&path) {
                Ok(dir) => map.update(&dir.as_raw_fd().to_ne_bytes(), &one, MapFlags::ANY),
                Err(_) => continue,
            }
        } else {
            map.update(&id.to_ne_bytes(), &one, MapFlags::ANY)
        };
        match result {
            Ok(()) => written += 1,
            Err(e) if spec.map_type == "cgrp_storage" => {
                let _ = e; // not a cgroup v2 directory
            }
            Err(e) => return Err(anyhow!("config {name}: cgroup_id_map {}: writing cgroup {path}: {e:#}", spec.name)),
        }
    }
    Ok(written)
}
