//! `kaddrs`: kernel symbol addresses written into the object's `kaddr_SYM` globals before load
//! (spec §2.7, §4.3).
use std::collections::HashMap;

use libbpf_rs::btf::types::{DataSec, Var};
use libbpf_rs::btf::Btf;
use libbpf_rs::{AsRawLibbpf, OpenObject};

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
    // Find (section, offset, size) of each global first; the BTF borrows the object.
    let mut places: Vec<(String, String, u32, usize, u64)> = Vec::new();
    {
        // SAFETY: the pointer comes from a live OpenObject that outlives `btf` (dropped at the end
        // of this block, before the object is mutated).
        let obj = unsafe { open.as_libbpf_object().as_ref() };
        let btf = Btf::from_bpf_object(obj)
            .map_err(|e| anyhow::anyhow!("config {config}: reading the object's BTF: {e}"))?
            .ok_or_else(|| config_err(format!("config {config}: kaddrs need BTF in the object (compile with -g)")))?;
        for sym in syms {
            let addr = *table.get(sym).ok_or_else(|| {
                anyhow::anyhow!("config {config}: kaddrs: kernel symbol {sym:?} is not in /proc/kallsyms (data symbols need CONFIG_KALLSYMS_ALL)")
            })?;
            let var_name = format!("kaddr_{sym}");
            let mut found = None;
            for sec in btf.type_by_kind::<DataSec<'_>>() {
                let sec_name = sec.name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if !(sec_name == ".rodata"
                    || sec_name == ".data"
                    || sec_name.starts_with(".rodata.")
                    || sec_name.starts_with(".data."))
                {
                    continue;
                }
                for info in sec.iter() {
                    let is_var = btf
                        .type_by_id::<Var<'_>>(info.ty)
                        .and_then(|v| v.name().map(|n| n.to_string_lossy() == var_name))
                        .unwrap_or(false);
                    if is_var {
                        found = Some((sec_name.clone(), info.offset, info.size));
                    }
                }
            }
            let (sec_name, offset, size) = found.ok_or_else(|| {
                config_err(format!(
                    "config {config}: kaddrs lists {sym:?} but the object has no global `const volatile u64 kaddr_{sym}` in .rodata or .data"
                ))
            })?;
            if size < 8 {
                return Err(config_err(format!("config {config}: kaddr_{sym} is {size} bytes, needs 8 (u64)")));
            }
            places.push((sym.clone(), sec_name, offset, size, addr));
        }
    }
    for (sym, sec_name, offset, _size, addr) in places {
        let mut done = false;
        for mut map in open.maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            if !name.ends_with(&sec_name) {
                continue;
            }
            let data = map.initial_value_mut().ok_or_else(|| {
                anyhow::anyhow!("config {config}: section {sec_name} of kaddr_{sym} has no initial value")
            })?;
            let start = offset as usize;
            let slot = data
                .get_mut(start..start + 8)
                .ok_or_else(|| anyhow::anyhow!("config {config}: kaddr_{sym} lies outside section {sec_name}"))?;
            slot.copy_from_slice(&addr.to_ne_bytes());
            done = true;
            break;
        }
        if !done {
            return Err(config_err(format!("config {config}: no map for section {sec_name} holding kaddr_{sym}")));
        }
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
