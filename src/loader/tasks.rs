//! The libbpf side of task targets and kernel-side `--by` labels (parsed without libbpf in
//! `crate::targets::tasks`): the object prepared before load, the target sets written after.
use anyhow::{anyhow, Context};
use libbpf_rs::{MapCore, MapFlags, OpenObject};

use crate::config::Config;
use crate::targets::tasks::{Targets, BY_MAX_ENTRIES, FOLLOW_PROGRAM};

use super::Loaded;

/// Prepares an opened object (on every open, before load): turns on the follow-fork program
/// when a command runs, and sizes the keys of maps whose trailing kernel-side labels are off
/// (cut from the config, see `config::validate`) or on (declared shorter in the object, e.g.
/// syscalls' `key_size` of the syscall number alone): the kernel then hashes exactly the
/// labels' bytes, a prefix of the key struct the program fills.
pub fn prepare_object(open: &mut OpenObject, config: &Config, follow_forks: bool) -> anyhow::Result<()> {
    if follow_forks {
        for mut p in open.progs_mut() {
            if p.name().to_string_lossy() == FOLLOW_PROGRAM {
                p.set_autoload(true);
            }
        }
    }
    if config.kernel_labels.is_empty() {
        return Ok(());
    }
    let by = !config.kernel_labels_on.is_empty();
    for metric in &config.metrics {
        let Ok(size) = u32::try_from(Config::key_size(metric)) else {
            continue;
        };
        for mut map in open.maps_mut() {
            if map.name().to_string_lossy() != metric.name {
                continue;
            }
            if map.key_size() != size {
                map.set_key_size(size).with_context(|| {
                    format!("config {}: setting the key size of map {} to {size} bytes", config.name, metric.name)
                })?;
            }
            if by && map.max_entries() < BY_MAX_ENTRIES {
                map.set_max_entries(BY_MAX_ENTRIES).with_context(|| {
                    format!("config {}: raising map {} to {BY_MAX_ENTRIES} entries for --by", config.name, metric.name)
                })?;
            }
        }
    }
    Ok(())
}

/// Writes the pid, tid and comm sets of `targets` into a loaded object's maps (before the
/// window starts).
pub fn fill(targets: &Targets, loaded: &Loaded) -> anyhow::Result<()> {
    let name = &loaded.config.name;
    for (map_name, keys) in targets.sets() {
        if keys.is_empty() {
            continue;
        }
        let map = loaded
            .object
            .maps()
            .find(|m| m.name().to_string_lossy() == map_name)
            .ok_or_else(|| anyhow!("config {name}: the BPF object has no map {map_name} (bpf/target.bpf.h)"))?;
        for key in &keys {
            map.update(key, &[1u8], MapFlags::ANY)
                .with_context(|| format!("config {name}: adding a target to map {map_name}"))?;
        }
    }
    Ok(())
}
