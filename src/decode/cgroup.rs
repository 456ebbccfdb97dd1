//! `cgroup` (docs/config-format.md#decoders): cgroup id (= directory inode) → path, by walking the cgroup tree.
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Walks `root` depth-first, children in lexical name order, symlinks not followed, vanished
/// or unreadable entries ignored; later directories overwrite earlier ones with the same inode.
pub fn walk(root: &Path, table: &mut HashMap<u64, String>) {
    let Ok(meta) = std::fs::symlink_metadata(root) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    table.insert(meta.ino(), root.to_string_lossy().into_owned());
    let Ok(dir) = std::fs::read_dir(root) else {
        return;
    };
    let mut children: Vec<_> = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name())
        .collect();
    children.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for child in children {
        walk(&root.join(child), table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_records_every_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("system.slice/ssh.service")).expect("mkdir");
        std::fs::write(root.join("cgroup.procs"), "").expect("file");
        std::os::unix::fs::symlink(root.join("system.slice"), root.join("link")).expect("symlink");
        let mut t = HashMap::new();
        walk(root, &mut t);
        assert_eq!(t.len(), 3, "{t:?}");
        let ino = std::fs::metadata(root.join("system.slice/ssh.service")).expect("meta").ino();
        assert_eq!(t[&ino], root.join("system.slice/ssh.service").to_string_lossy());
    }
}
