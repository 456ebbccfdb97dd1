//! `majorminor` (docs/config-format.md#decoders): the kernel's 32-bit device number → block device name.
use std::path::Path;

/// `(major, minor)` of the kernel's internal `dev_t` encoding.
pub(super) fn split_dev(v: u32) -> (u32, u32) {
    ((v >> 8) & 0xfff, (v & 0xff) | ((v >> 12) & 0xfff00))
}

/// The name of the line with exactly four fields whose first two are `major` and `minor`.
pub(super) fn lookup(partitions: &str, major: u32, minor: u32) -> Option<String> {
    let (maj, min) = (major.to_string(), minor.to_string());
    partitions.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() == 4 && f[0] == maj && f[1] == min).then(|| f[3].to_string())
    })
}

pub(super) fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const PARTITIONS: &str =
        "major minor  #blocks  name\n\n 254        0   52428800 vda\n 254        1   52427759 vda1\n";

    #[test]
    fn splits_and_finds() {
        assert_eq!(split_dev(0xfe00), (254, 0));
        assert_eq!(split_dev(0x1231_0345), (259, 0x12345));
        assert_eq!(lookup(PARTITIONS, 254, 0).as_deref(), Some("vda"));
        assert_eq!(lookup(PARTITIONS, 254, 1).as_deref(), Some("vda1"));
        assert_eq!(lookup(PARTITIONS, 8, 0), None);
    }
}
