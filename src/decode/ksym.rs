//! `ksym` and `kstack` (spec §7.4): kernel addresses → symbol names from a kallsyms file.
use std::path::Path;

/// A parsed kallsyms file: one text buffer plus `(address, name range)` sorted by address,
/// stable so that aliases keep file order (the last alias in the file wins, Q18).
#[derive(Debug, Default)]
pub(super) struct Kallsyms {
    text: String,
    syms: Vec<(u64, u32, u32)>,
}

impl Kallsyms {
    pub(super) fn load(path: &Path) -> Result<Kallsyms, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Ok(Kallsyms::parse(text))
    }

    /// Lines are split on single spaces; lines with fewer than three parts, or whose first part
    /// is not hex, are ignored. The name is the third part, so module symbols keep `\t[mod]`.
    pub(super) fn parse(text: String) -> Kallsyms {
        let mut syms = Vec::new();
        let mut offset = 0usize;
        for line in text.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let body = line.strip_suffix('\n').unwrap_or(line);
            let mut parts = body.split(' ');
            let (Some(addr), Some(_), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            // `name` is a sub-slice of `body`: its offset inside the whole text.
            let name_start = start + (name.as_ptr() as usize - body.as_ptr() as usize);
            if let (Ok(s), Ok(l)) = (u32::try_from(name_start), u32::try_from(name.len())) {
                syms.push((addr, s, l));
            }
        }
        syms.sort_by_key(|&(a, _, _)| a);
        Kallsyms { text, syms }
    }

    fn name(&self, i: usize) -> Option<&str> {
        let &(_, s, l) = self.syms.get(i)?;
        self.text.get(s as usize..(s as usize + l as usize))
    }

    /// The symbol at exactly `addr` (the last alias in the file).
    pub(super) fn exact(&self, addr: u64) -> Option<&str> {
        let end = self.syms.partition_point(|&(a, _, _)| a <= addr);
        match end.checked_sub(1) {
            Some(i) if self.syms.get(i).map(|s| s.0) == Some(addr) => self.name(i),
            _ => None,
        }
    }

    /// The symbol with the greatest address ≤ `addr`.
    pub(super) fn containing(&self, addr: u64) -> Option<&str> {
        let end = self.syms.partition_point(|&(a, _, _)| a <= addr);
        self.name(end.checked_sub(1)?)
    }
}

/// Frame addresses of a `kstack` field: host-order u64s up to the first zero or the end.
pub(super) fn frames(input: &[u8]) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for chunk in input.chunks(8) {
        let Ok(b) = <[u8; 8]>::try_from(chunk) else {
            return Err(format!("stack of {} bytes is not a multiple of 8", input.len()));
        };
        let addr = u64::from_ne_bytes(b);
        if addr == 0 {
            break;
        }
        out.push(addr);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = "ffffffff81000000 T _stext\n\
ffffffff81000000 T startup_64\n\
ffffffff814203c0 t process_timeout\n\
ffffffff81420400 T schedule\n\
garbage line\n\
zz T notanaddress\n\
ffffffffc0000000 t commit_timeout\t[jbd2]\n";

    #[test]
    fn exact_and_containing() {
        let k = Kallsyms::parse(SAMPLE.to_string());
        assert_eq!(k.exact(0xffffffff814203c0), Some("process_timeout"));
        assert_eq!(k.exact(0xffffffff814203c4), None);
        assert_eq!(k.containing(0xffffffff814203c4), Some("process_timeout"));
        assert_eq!(k.exact(0xffffffff81000000), Some("startup_64"));
        assert_eq!(k.containing(0xffffffff81000010), Some("startup_64"));
        assert_eq!(k.containing(0x10), None);
        assert_eq!(k.exact(0xffffffffc0000000), Some("commit_timeout\t[jbd2]"));
        assert_eq!(k.containing(u64::MAX), Some("commit_timeout\t[jbd2]"));
    }

    #[test]
    fn frames_stop_at_zero_and_reject_ragged() {
        let mut b = Vec::new();
        b.extend_from_slice(&5u64.to_ne_bytes());
        b.extend_from_slice(&0u64.to_ne_bytes());
        b.extend_from_slice(&[1, 2, 3]);
        assert_eq!(frames(&b), Ok(vec![5]));
        assert!(frames(&[1, 0, 0, 0, 0, 0, 0, 0, 9]).is_err());
        assert_eq!(frames(&[0; 16]), Ok(vec![]));
    }
}
