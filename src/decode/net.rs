//! `ifname`: interface index → name, read from `<net_class>/*/ifindex` (/sys/class/net).
use std::collections::HashMap;
use std::path::Path;

/// Index → name for every interface directory whose `ifindex` file parses. A missing or
/// unreadable directory gives an empty table (every index then decodes to `unknown:<idx>`).
pub(super) fn scan(net_class: &Path) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(net_class) else {
        return out;
    };
    let mut names: Vec<_> = dir.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let Ok(text) = std::fs::read_to_string(net_class.join(&name).join("ifindex")) else {
            continue;
        };
        if let (Ok(idx), Some(n)) = (text.trim().parse::<u32>(), name.to_str()) {
            out.insert(idx, n.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_ifindex_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (n, i) in [("lo", "1\n"), ("eth0", "4\n"), ("bad", "x\n")] {
            std::fs::create_dir(dir.path().join(n)).expect("mkdir");
            std::fs::write(dir.path().join(n).join("ifindex"), i).expect("write");
        }
        let t = scan(dir.path());
        assert_eq!(t.len(), 2);
        assert_eq!(t[&4], "eth0");
        assert!(scan(&dir.path().join("missing")).is_empty());
    }
}
