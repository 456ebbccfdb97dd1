//! Histogram bucket indexes and bucket reconstruction (docs/config-format.md#histograms).
use std::collections::HashMap;

use crate::config::HistogramSpec;
use crate::model::{Bucket, BucketType};

/// Go's `strconv.ParseUint(s, 0, 64)`: decimal, or `0x`/`0o`/`0b` prefixes, a leading `0` for
/// octal, and `_` separators between digits. No sign.
pub fn go_uint_parse(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let lower = |c: u8| c | 0x20;
    let (base, digits): (u64, &[u8]) = if b[0] == b'0' && b.len() >= 3 && lower(b[1]) == b'x' {
        (16, &b[2..])
    } else if b[0] == b'0' && b.len() >= 3 && lower(b[1]) == b'o' {
        (8, &b[2..])
    } else if b[0] == b'0' && b.len() >= 3 && lower(b[1]) == b'b' {
        (2, &b[2..])
    } else if b[0] == b'0' {
        (8, &b[1..])
    } else {
        (10, b)
    };
    let mut v: u64 = 0;
    let mut underscores = false;
    for &c in digits {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => u64::from(c - b'0'),
            b'a'..=b'z' | b'A'..=b'Z' => u64::from(lower(c) - b'a') + 10,
            _ => return None,
        };
        if d >= base {
            return None;
        }
        v = v.checked_mul(base)?.checked_add(d)?;
    }
    if underscores && !underscores_ok(b) {
        return None;
    }
    Some(v)
}

/// Go's `underscoreOK`: each `_` sits between digits (a base prefix counts as a digit).
fn underscores_ok(s: &[u8]) -> bool {
    let lower = |c: u8| c | 0x20;
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if s.len() >= 2 && s[0] == b'0' && matches!(lower(s[1]), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = lower(s[1]) == b'x';
    }
    for &c in &s[i..] {
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lower(c))) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
    }
    saw != b'_'
}

/// 2^i, exact over the whole normal range.
fn exp2(i: i64) -> f64 {
    if (-1022..=1023).contains(&i) {
        f64::from_bits(((i + 1023) as u64) << 52)
    } else if i > 1023 {
        f64::INFINITY
    } else {
        0.0
    }
}

/// More buckets than this is a config mistake (refused at load), not a histogram worth allocating.
const MAX_BUCKETS: i64 = crate::config::MAX_HISTOGRAM_BUCKETS;

/// One label group rebuilt: cumulative buckets, total count, and the sum (`None` when the map
/// has no sum key).
pub(super) struct Rebuilt {
    pub buckets: Vec<Bucket>,
    pub count: u64,
    pub sum: Option<f64>,
}

/// Rebuilds one group from `raw` (bucket index → count), docs/config-format.md#histograms. Errors depend only on
/// the config.
pub(super) fn rebuild(spec: &HistogramSpec, raw: &HashMap<u64, u64>) -> Result<Rebuilt, String> {
    let m = spec.multiplier;
    let get = |i: i64| u64::try_from(i).ok().and_then(|i| raw.get(&i)).copied();
    let mut count = 0u64;
    let mut buckets = Vec::new();
    match spec.bucket_type {
        BucketType::Fixed => {
            let Some(&last) = spec.bucket_keys.last() else {
                return Err("histogram buckets have zero size: len(bucket_keys) = 0".to_string());
            };
            let get_f = |k: f64| whole_index(k).and_then(|i| raw.get(&i)).copied();
            buckets.reserve(spec.bucket_keys.len());
            for &k in &spec.bucket_keys {
                count = count.saturating_add(get_f(k).unwrap_or(0));
                buckets.push(Bucket { le: k * m, cumulative: count });
            }
            let sum = get_f(last + 1.0).map(|s| s as f64 * m);
            Ok(Rebuilt { buckets, count, sum })
        }
        kind => {
            let (min, max) = (spec.bucket_min, spec.bucket_max);
            if max < min {
                return Err(format!("bucket_max ({max}) < bucket_min ({min})"));
            }
            if max == min {
                return Err(format!("histogram buckets have zero size: [bucket_min .. bucket_max] = [{min} .. {max}]"));
            }
            if max.saturating_sub(min) >= MAX_BUCKETS {
                return Err(format!("too many histogram buckets: [bucket_min .. bucket_max] = [{min} .. {max}]"));
            }
            buckets.reserve((max - min + 1) as usize);
            for i in min..=max {
                count = count.saturating_add(get(i).unwrap_or(0));
                let le = match kind {
                    BucketType::Exp2 => exp2(i) * m,
                    BucketType::Exp2Zero if i == 0 => 0.0,
                    BucketType::Exp2Zero => exp2(i.saturating_sub(1)) * m,
                    _ => i as f64 * m,
                };
                buckets.push(Bucket { le, cumulative: count });
            }
            let sum = max.checked_add(1).and_then(get).map(|s| s as f64 * m);
            Ok(Rebuilt { buckets, count, sum })
        }
    }
}

/// A `fixed` bucket key as a raw index: only whole, non-negative numbers in range match.
fn whole_index(k: f64) -> Option<u64> {
    (k.is_finite() && k >= 0.0 && k.fract() == 0.0 && k < 18446744073709551616.0).then_some(k as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_uint_parse_forms() {
        assert_eq!(go_uint_parse("27"), Some(27));
        assert_eq!(go_uint_parse("0"), Some(0));
        assert_eq!(go_uint_parse("0x1c"), Some(28));
        assert_eq!(go_uint_parse("0X1C"), Some(28));
        assert_eq!(go_uint_parse("0o17"), Some(15));
        assert_eq!(go_uint_parse("017"), Some(15));
        assert_eq!(go_uint_parse("0b101"), Some(5));
        assert_eq!(go_uint_parse("1_000"), Some(1000));
        assert_eq!(go_uint_parse("0x_1f"), Some(31));
        assert_eq!(go_uint_parse("_1"), None);
        assert_eq!(go_uint_parse("1__0"), None);
        assert_eq!(go_uint_parse("1_"), None);
        assert_eq!(go_uint_parse("0x"), None);
        assert_eq!(go_uint_parse("08"), None);
        assert_eq!(go_uint_parse("-1"), None);
        assert_eq!(go_uint_parse("+1"), None);
        assert_eq!(go_uint_parse(""), None);
        assert_eq!(go_uint_parse("abc"), None);
        assert_eq!(go_uint_parse("18446744073709551615"), Some(u64::MAX));
        assert_eq!(go_uint_parse("18446744073709551616"), None);
    }

    fn spec(t: BucketType, min: i64, max: i64, m: f64, keys: &[f64]) -> HistogramSpec {
        HistogramSpec { bucket_type: t, bucket_min: min, bucket_max: max, multiplier: m, bucket_keys: keys.to_vec() }
    }

    fn raw(pairs: &[(u64, u64)]) -> HashMap<u64, u64> {
        pairs.iter().copied().collect()
    }

    fn les(r: &Rebuilt) -> Vec<f64> {
        r.buckets.iter().map(|b| b.le).collect()
    }

    fn cums(r: &Rebuilt) -> Vec<u64> {
        r.buckets.iter().map(|b| b.cumulative).collect()
    }

    #[test]
    fn exp2_backfills_and_ignores_out_of_range() {
        let r = rebuild(&spec(BucketType::Exp2, 1, 4, 1.0, &[]), &raw(&[(0, 100), (2, 3), (4, 1), (5, 40), (9, 7)]))
            .expect("ok");
        assert_eq!(les(&r), [2.0, 4.0, 8.0, 16.0]);
        assert_eq!(cums(&r), [0, 3, 3, 4]);
        assert_eq!((r.count, r.sum), (4, Some(40.0)));
        let r = rebuild(&spec(BucketType::Exp2, 0, 3, 2.0, &[]), &raw(&[(1, 1)])).expect("ok");
        assert_eq!(les(&r), [2.0, 4.0, 8.0, 16.0]);
        assert_eq!(r.sum, None);
    }

    #[test]
    fn exp2zero_and_linear() {
        let r = rebuild(&spec(BucketType::Exp2Zero, 0, 3, 0.5, &[]), &raw(&[(0, 2), (3, 1), (4, 9)])).expect("ok");
        assert_eq!(les(&r), [0.0, 0.5, 1.0, 2.0]);
        assert_eq!(cums(&r), [2, 2, 2, 3]);
        assert_eq!(r.sum, Some(4.5));
        let r = rebuild(&spec(BucketType::Linear, 0, 3, 10.0, &[]), &raw(&[(1, 1), (3, 2)])).expect("ok");
        assert_eq!(les(&r), [0.0, 10.0, 20.0, 30.0]);
        assert_eq!(cums(&r), [0, 1, 1, 3]);
        let m = 0.1;
        let r = rebuild(&spec(BucketType::Linear, 0, 3, m, &[]), &raw(&[])).expect("ok");
        assert_eq!(r.buckets[3].le, 3.0 * m); // one multiplication: 0.30000000000000004
    }

    #[test]
    fn fixed_keeps_config_order() {
        let r = rebuild(
            &spec(BucketType::Fixed, 0, 0, 1.0, &[10.0, 1.0, 5.0, 2.5]),
            &raw(&[(1, 4), (5, 1), (10, 2), (3, 9), (6, 77)]),
        )
        .expect("ok");
        assert_eq!(les(&r), [10.0, 1.0, 5.0, 2.5]);
        assert_eq!(cums(&r), [2, 6, 7, 7]);
        assert_eq!(r.count, 7);
        assert_eq!(r.sum, None); // last key 2.5 → sum key 3.5 never matches
        let r = rebuild(&spec(BucketType::Fixed, 0, 0, 2.0, &[1.0, 5.0]), &raw(&[(6, 77)])).expect("ok");
        assert_eq!(r.sum, Some(154.0));
        assert!(rebuild(&spec(BucketType::Fixed, 0, 0, 1.0, &[]), &raw(&[])).is_err());
    }

    #[test]
    fn bad_ranges_are_errors() {
        let e = rebuild(&spec(BucketType::Exp2, 3, 3, 1.0, &[]), &raw(&[])).err().expect("error");
        assert_eq!(e, "histogram buckets have zero size: [bucket_min .. bucket_max] = [3 .. 3]");
        assert!(rebuild(&spec(BucketType::Linear, 5, 3, 1.0, &[]), &raw(&[])).is_err());
        assert!(rebuild(&spec(BucketType::Linear, 0, i64::MAX, 1.0, &[]), &raw(&[])).is_err());
        assert_eq!(exp2(27), 134217728.0);
        assert_eq!(exp2(27) * 0.000001, 134.217728);
    }
}
