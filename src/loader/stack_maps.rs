//! Sizes the stack-trace map of a config whose `kstack`/`ustack` labels are stack ids
//! (bpf/stacks.bpf.h) before load: frames per stack = the kernel's `perf_event_max_stack`
//! (127 by default), and one stack per possible entry of the largest count map that names
//! stacks (a quarter of that for the map `NAME_spill`, which takes the stacks that collide in
//! `NAME`). The BPF side only declares a placeholder depth.
use libbpf_rs::{MapType, OpenObject};

use crate::config::Config;
use crate::decode::stackids::uses_stack_ids;
use crate::error::config_err;

/// Where the kernel says how deep it walks stacks for BPF and perf.
pub const MAX_STACK_PATH: &str = "/proc/sys/kernel/perf_event_max_stack";

/// The kernel's default `perf_event_max_stack`, used when the file cannot be read.
pub const DEFAULT_DEPTH: u32 = 127;

/// Frames per stack this kernel walks at most.
pub fn kernel_depth() -> u32 {
    std::fs::read_to_string(MAX_STACK_PATH)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&d| d > 0)
        .unwrap_or(DEFAULT_DEPTH)
}

/// Sets value_size (depth × 8) and max_entries of the config's stack-trace map.
pub fn prepare_object(open: &mut OpenObject, config: &Config) -> anyhow::Result<()> {
    let counted: Vec<&str> = config.metrics.iter().filter(|m| uses_stack_ids(m)).map(|m| m.name.as_str()).collect();
    if counted.is_empty() {
        return Ok(());
    }
    let entries = open
        .maps()
        .filter(|m| counted.iter().any(|c| m.name().to_string_lossy() == *c))
        .map(|m| m.max_entries())
        .max()
        .unwrap_or(0)
        .max(1);
    let stack_maps: Vec<String> = open
        .maps()
        .filter(|m| m.map_type() == MapType::StackTrace)
        .map(|m| m.name().to_string_lossy().into_owned())
        .collect();
    let spills = stack_maps.iter().filter(|n| is_spill(n, &stack_maps)).count();
    if stack_maps.len() - spills > 1 {
        return Err(config_err(format!(
            "config {}: labels kstack/ustack of 4 bytes are stack ids into the object's one BPF_MAP_TYPE_STACK_TRACE map (and its NAME_spill), but it has {} ({})",
            config.name,
            stack_maps.len(),
            stack_maps.join(", ")
        )));
    }
    let depth = kernel_depth();
    for mut map in open.maps_mut().filter(|m| m.map_type() == MapType::StackTrace) {
        let name = map.name().to_string_lossy().into_owned();
        let n = if is_spill(&name, &stack_maps) { (entries / 4).max(1) } else { entries };
        map.set_value_size(depth.saturating_mul(8))
            .and_then(|()| map.set_max_entries(n))
            .map_err(|e| config_err(format!("config {}: sizing stack map {name}: {e:#}", config.name)))?;
    }
    Ok(())
}

/// Whether stack map `name` is the spill map of another of `all` (`NAME_spill` beside `NAME`).
pub fn is_spill(name: &str, all: &[String]) -> bool {
    name.strip_suffix(SPILL_SUFFIX).is_some_and(|main| all.iter().any(|n| n == main))
}

/// Suffix of a spill map's name (bpf/stacks.bpf.h).
pub const SPILL_SUFFIX: &str = "_spill";

/// Bit that marks an id of the spill map (bpf/stacks.bpf.h, EBPFX_SPILL_BIT).
pub const SPILL_BIT: u32 = 1 << 30;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spill_maps_are_named_after_their_main_map() {
        let all = vec!["s".to_string(), "s_spill".to_string(), "x_spill".to_string()];
        assert!(is_spill("s_spill", &all));
        assert!(!is_spill("s", &all));
        assert!(!is_spill("x_spill", &all));
    }
}
