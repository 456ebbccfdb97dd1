//! Globals of a BPF object written before load: `const volatile` variables in `.rodata` (or
//! `.data`), found by name through the object's BTF data sections. The kernel sees them as
//! constants, so a filter set here costs nothing when unset and prunes dead branches at verify
//! time. Used by `kaddrs` (kernel addresses) and by tool flags such as `--port`.
use libbpf_rs::btf::types::{DataSec, Var};
use libbpf_rs::btf::Btf;
use libbpf_rs::{AsRawLibbpf, OpenObject};

use crate::error::{config_err, usage_err};

/// Where a global lives: its data section and byte range in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub section: String,
    pub offset: usize,
    pub size: usize,
}

pub use crate::targets::GlobalValue;

fn writable_section(name: &str) -> bool {
    name == ".rodata" || name == ".data" || name.starts_with(".rodata.") || name.starts_with(".data.")
}

/// Finds each of `names` in the object's `.rodata`/`.data` sections (`None`: no such global,
/// or no BTF in the object).
pub fn find(open: &OpenObject, names: &[&str]) -> anyhow::Result<Vec<Option<Place>>> {
    let mut out = vec![None; names.len()];
    // SAFETY: the pointer comes from a live OpenObject borrowed for this whole function; the
    // BTF view is dropped before it returns.
    let obj = unsafe { open.as_libbpf_object().as_ref() };
    let Some(btf) = Btf::from_bpf_object(obj).map_err(|e| anyhow::anyhow!("reading the object's BTF: {e}"))? else {
        return Ok(out);
    };
    for sec in btf.type_by_kind::<DataSec<'_>>() {
        let sec_name = sec.name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !writable_section(&sec_name) {
            continue;
        }
        for info in sec.iter() {
            let Some(var_name) = btf.type_by_id::<Var<'_>>(info.ty).and_then(|v| v.name()) else {
                continue;
            };
            let var_name = var_name.to_string_lossy();
            if let Some(i) = names.iter().position(|n| *n == var_name) {
                out[i] = Some(Place { section: sec_name.clone(), offset: info.offset as usize, size: info.size });
            }
        }
    }
    Ok(out)
}

/// Writes `bytes` at `place` in the initial value of its section's map.
pub fn write(config: &str, open: &mut OpenObject, name: &str, place: &Place, bytes: &[u8]) -> anyhow::Result<()> {
    for mut map in open.maps_mut() {
        // libbpf names a section's map `<object name prefix><section>`, e.g. `tcpflow.rodata`.
        if !map.name().to_string_lossy().ends_with(&place.section) {
            continue;
        }
        let data = map.initial_value_mut().ok_or_else(|| {
            anyhow::anyhow!("config {config}: section {} of global {name} has no initial value", place.section)
        })?;
        let slot = data
            .get_mut(place.offset..place.offset.saturating_add(bytes.len()))
            .ok_or_else(|| anyhow::anyhow!("config {config}: global {name} lies outside section {}", place.section))?;
        slot.copy_from_slice(bytes);
        return Ok(());
    }
    Err(config_err(format!("config {config}: no map for section {} holding global {name}", place.section)))
}

/// Writes every value; a global the object lacks is a usage error naming the flag.
pub fn set(config: &str, open: &mut OpenObject, values: &[GlobalValue]) -> anyhow::Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
    let places = find(open, &names).map_err(|e| anyhow::anyhow!("config {config}: {e:#}"))?;
    for (value, place) in values.iter().zip(places) {
        let place = place.ok_or_else(|| {
            usage_err(format!(
                "{} is not supported by config {config} (its BPF object has no global `{}`)",
                value.flag, value.name
            ))
        })?;
        if place.size != value.bytes.len() {
            return Err(config_err(format!(
                "config {config}: global {} is {} bytes, but {} writes {}",
                value.name,
                place.size,
                value.flag,
                value.bytes.len()
            )));
        }
        write(config, open, &value.name, &place, &value.bytes)?;
    }
    Ok(())
}
