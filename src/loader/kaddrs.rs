//! `kaddrs`: kernel symbol addresses written into the object's `kaddr_SYM` globals before load
//! (spec §2.7, §4.3).
use std::collections::HashMap;

use libbpf_rs::OpenObject;

use super::globals;

use crate::error::config_err;

/// Name → address from /proc/kallsyms text: lines of exactly three space-separated parts,
/// later lines win (module symbols carry `\t[mod]` and never match a plain name).
pub fn parse_kallsyms(text: &str) -> anyhow::Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() != 3 {
            continue;
        }
        let addr = u64::from_str_radix(parts[0], 16)
            .map_err(|_| anyhow::anyhow!("/proc/kallsyms line {}: address {:?} is not hex", n + 1, parts[0]))?;
        out.insert(parts[2].to_string(), addr);
    }
    Ok(out)
}

/// Writes every `kaddr_SYM` of `syms` into the open object's data sections.
pub fn inject(config: &str, open: &mut OpenObject, syms: &[String]) -> anyhow::Result<()> {
    if syms.is_empty() {
        return Ok(());
    }
    let text = std::fs::read_to_string("/proc/kallsyms")
        .map_err(|e| anyhow::anyhow!("config {config}: kaddrs need /proc/kallsyms: {e}"))?;
    let table = parse_kallsyms(&text)?;
    let names: Vec<String> = syms.iter().map(|s| format!("kaddr_{s}")).collect();
    let places = globals::find(open, &names.iter().map(String::as_str).collect::<Vec<_>>())
        .map_err(|e| anyhow::anyhow!("config {config}: {e:#}"))?;
    for ((sym, var), place) in syms.iter().zip(&names).zip(places) {
        let addr = *table.get(sym).ok_or_else(|| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lines() {
        let t = "ffffffff81000000 T _stext\nffffffff81001000 t foo\tmod\nffffffffc0001000 t commit_timeout\t[jbd2]\nffffffff81002000 T foo\n";
        let m = parse_kallsyms(t).expect("parses");
        assert_eq!(m.get("_stext"), Some(&0xffffffff81000000));
        assert_eq!(m.get("foo"), Some(&0xffffffff81002000));
        assert!(!m.contains_key("commit_timeout"));
        assert!(parse_kallsyms("zz T x\n").is_err());
    }
}
