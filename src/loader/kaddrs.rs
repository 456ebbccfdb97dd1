//! `kaddrs`: kernel symbol addresses written into the object's `kaddr_SYM` globals before load
//! (docs/config-format.md#loading-and-attaching).
use libbpf_rs::OpenObject;

use super::globals;

use crate::error::config_err;
use crate::kallsyms;

/// Writes every `kaddr_SYM` of `syms` into the open object's data sections.
pub fn inject(config: &str, open: &mut OpenObject, syms: &[String]) -> anyhow::Result<()> {
    if syms.is_empty() {
        return Ok(());
    }
    let text =
        kallsyms::read_system().map_err(|e| anyhow::anyhow!("config {config}: kaddrs need {}: {e}", kallsyms::PATH))?;
    if kallsyms::is_zeroed(&text) {
        // Writing the zeros would make the program read address 0: refuse instead.
        return Err(anyhow::anyhow!(
            "config {config}: kaddrs need kernel symbol addresses, but {} shows them all as 0: {}",
            kallsyms::PATH,
            kallsyms::zeroed_reason()
        ));
    }
    let table = kallsyms::addresses(&text);
    let names: Vec<String> = syms.iter().map(|s| format!("kaddr_{s}")).collect();
    let places = globals::find(open, &names.iter().map(String::as_str).collect::<Vec<_>>())
        .map_err(|e| anyhow::anyhow!("config {config}: {e:#}"))?;
    for ((sym, var), place) in syms.iter().zip(&names).zip(places) {
        let addr = *table.get(sym.as_str()).ok_or_else(|| {
            anyhow::anyhow!("config {config}: kaddrs: kernel symbol {sym:?} is not in /proc/kallsyms (data symbols need CONFIG_KALLSYMS_ALL)")
        })?;
        let place = place.ok_or_else(|| {
            config_err(format!(
                "config {config}: kaddrs lists {sym:?} but the object has no global `const volatile u64 {var}` in .rodata or .data (or no BTF: compile with -g)"
            ))
        })?;
        if place.size < 8 {
            return Err(config_err(format!("config {config}: {var} is {} bytes, needs 8 (u64)", place.size)));
        }
        globals::write(config, open, var, &place, &addr.to_ne_bytes())?;
    }
    Ok(())
}
