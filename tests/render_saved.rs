//! `ebpfx render` of hand-made `--save-raw` snapshots: the terminal formats' views of known
//! map contents, end to end through the binary (decoding included).
mod common;
use common::*;

use std::path::{Path, PathBuf};

/// [`raw_snapshot_json`] written to `dir/CONFIG.json`.
fn snapshot(dir: &Path, config: &str, map: &str, key_size: usize, rows: &[(Vec<u8>, u64)]) -> PathBuf {
    let doc = raw_snapshot_json(config, map, key_size, rows);
    let path = dir.join(format!("{config}.json"));
    std::fs::write(&path, doc.to_string()).expect("write snapshot");
    path
}

/// A biosize key: device (dev_t 254:0), operation, 3 bytes of padding, exp2 bucket.
fn biosize_key(operation: u8, bucket: u64) -> Vec<u8> {
    let mut k = 0xfe00u32.to_ne_bytes().to_vec();
    k.extend_from_slice(&[operation, 0, 0, 0]);
    k.extend_from_slice(&bucket.to_ne_bytes());
    k
}

#[test]
fn table_quantiles_of_exp2_buckets_stay_in_the_bucket() {
    // Issue 9 item 10: all-4096-byte writes showed p50 "3 KiB", 0-byte flushes "0.5 B".
    let dir = Scratch::new("render-quantiles");
    let rows = vec![
        (biosize_key(1, 12), 1000),        // 1000 writes in (2048, 4096]
        (biosize_key(1, 33), 1000 * 4096), // their sum (bucket_max + 1)
        (biosize_key(2, 0), 30),           // 30 flushes of 0 bytes, bucket 0
        (biosize_key(2, 33), 0),           // sum 0
    ];
    let path = snapshot(dir.path(), "biosize", "bio_size_bytes", 16, &rows);
    let out = ebpfx(&["render", path.to_str().expect("utf-8 path"), "--format", "table"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}{stdout}", text(&out.stderr));
    let row = |op: &str| {
        stdout
            .lines()
            .find(|l| l.split('|').nth(2).is_some_and(|c| c.trim() == op))
            .unwrap_or_else(|| panic!("no {op} row:\n{stdout}"))
            .split('|')
            .map(|c| c.trim().to_string())
            .collect::<Vec<String>>()
    };
    assert_eq!(row("write")[3..9], ["1000", "≤ 4 KiB", "≤ 4 KiB", "≤ 4 KiB", "4 KiB", "3.91 MiB"], "{stdout}");
    assert_eq!(row("flush")[3..9], ["30", "≤ 1 B", "≤ 1 B", "≤ 1 B", "0 B", "0 B"], "{stdout}");
    assert!(stdout.contains("bucket-bounded"), "no note on what the quantiles are:\n{stdout}");
}
