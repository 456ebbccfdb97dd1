//! The fast paths of counters and gauges, behind one entry point ([`samples`]): the same
//! samples as the general path of `rows.rs` (a property test in `tests.rs` checks it), with
//! less work on large maps (a 100,000-entry map should cost a few ms).
//!
//! Rows are summed by one sort, which also gives the Prometheus order. Counters and gauges of
//! one or two labels take the quickest way that is exact for their values:
//!
//! 1. lone `uint` / `string` labels of at most 16 bytes: sort keys read straight off the key
//!    bytes, no label text made until the merged samples are written ([`direct_keys`]);
//! 2. any chain whose values fit in 16 bytes without a NUL: rows decoded one at a time into a
//!    scratch row, only their keys kept;
//! 3. otherwise every row is decoded into one byte arena (no allocation per entry); keys are
//!    the 16 bytes past the prefix all values of a label share, exact when they hold the rest
//!    of every value, and only then is the arena left alone while sorting and merging.
//!
//! Key pairs are sorted as one number when their differing bytes fit (`Packing`).
use std::fmt;

use super::chain;
use super::fasthash::FastMap;
use super::rows::{decode_row, each_row, name_order, MetricError, MetricState, Row, Shape};
use super::RowErrors;
use crate::config::Label;
use crate::model::Samples;
use crate::raw::RawMap;

/// Samples of a counter or gauge of `raw`, or `None` when no fast path applies (then the
/// caller takes the general path). Errors as [`super::rows::read`].
pub(super) fn samples(
    tables: &mut chain::Tables,
    state: &mut MetricState,
    raw: &RawMap,
    shape: Shape,
    scratch: &mut (Vec<u8>, Vec<u8>),
    rows: &mut Rows,
    direct: bool,
) -> Option<Result<(Samples, RowErrors), MetricError>> {
    let width = state.labels.len();
    if width == 0 {
        return None;
    }
    let n = raw.len();
    let mut errors = RowErrors::default();
    // Counters and gauges of one or two short labels (pids, CPUs, operations, task names) are
    // first tried without keeping the labels at all: each row becomes its two exact keys and its
    // value. The first longer value ends the attempt and the rows are decoded again below.
    if width <= 2 {
        rows.reset(width, 0, &state.labels);
        rows.track_common = false;
        let (l0, l1) = (rows.order[0], rows.order.get(1).copied().unwrap_or(0));
        // Quicker still when both keys can be read straight off the key bytes.
        if direct
            && !shape.cpu_rows
            && raw.key_size == state.key_len
            && direct_keys(state, raw, l0, l1, &mut rows.exact)
        {
            rows.merge_exact();
            return rows.samples().map(|s| Ok((s, errors)));
        }
        let mut exact = std::mem::take(&mut rows.exact);
        exact.reserve(if shape.cpu_rows { n.saturating_mul(raw.slots) } else { n });
        let complete = each_row(raw, shape, |bytes, value| {
            match decode_row(tables, state, bytes, &mut rows.arena, &mut rows.spans, scratch) {
                Ok(Row::Keep) => {
                    rows.add_stats(0);
                    if rows.stats.iter().any(|s| s.nul || s.longest > KEY_BYTES) {
                        return false;
                    }
                    exact.push((rows.prefix(0, l0), if width > 1 { rows.prefix(0, l1) } else { 0 }, value));
                    rows.truncate_to(0, 0);
                }
                Ok(Row::Skip) => {}
                Err(detail) => errors.note(detail),
            }
            true
        });
        rows.exact = exact;
        match complete {
            Err(e) => return Some(Err(e)),
            Ok(true) => {
                rows.merge_exact();
                return rows.samples().map(|s| Ok((s, errors)));
            }
            // Decoded again below: count those rows' errors once.
            Ok(false) => errors = RowErrors::default(),
        }
    }
    rows.reset(width, if shape.cpu_rows { n.saturating_mul(raw.slots) } else { n }, &state.labels);
    let all = each_row(raw, shape, |bytes, value| {
        match decode_row(tables, state, bytes, &mut rows.arena, &mut rows.spans, scratch) {
            Ok(Row::Keep) => {
                rows.add_stats(rows.len());
                rows.values.push(value);
            }
            Ok(Row::Skip) => {}
            Err(detail) => errors.note(detail),
        }
        true
    });
    if let Err(e) = all {
        return Some(Err(e));
    }
    rows.merge();
    rows.samples().map(|s| Ok((s, errors)))
}

/// Decoded rows: label values appended to one byte arena, `width` spans per row, then (after
/// [`Rows::merge`]) `merged`: one `(row, sum)` per distinct label tuple, in output order; or
/// `exact` key pairs (see [`Form`]).
///
/// Rows are summed by sorting rather than hashing: the sort is needed for the output order
/// anyway, and rows with equal labels end up adjacent. Sort keys of the general way are 8 bytes
/// of each of the first two labels, taken after the prefix all values of that label share
/// (big-endian, zero-padded, which orders like the strings wherever the keys differ); only ties
/// look at the full strings. The buffers are kept between reads.
#[derive(Default)]
pub(super) struct Rows {
    width: usize,
    /// Label values, each checked to be UTF-8 as it is appended.
    arena: Vec<u8>,
    /// Per label: what its values have in common, to pick sort keys (see [`LabelStats`]).
    stats: Vec<LabelStats>,
    /// Whether `stats` tracks the common prefix (not needed by the exact-prefix attempt).
    track_common: bool,
    spans: Vec<(u32, u32)>,
    values: Vec<u64>,
    keyed: Vec<(u64, u64, u32)>,
    merged: Vec<(u32, u64)>,
    /// Where the merged rows are: `merged`, or `exact` in one of two key forms.
    form: Form,
    /// Merged rows as (key of the first label in `order`, of the second, value), in order.
    exact: Vec<(Key, Key, u64)>,
    /// Label positions in the order rows are sorted by: label-name order (the order Prometheus
    /// prints samples in, so the renderer finds them sorted).
    order: Vec<usize>,
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rows {{ width: {}, rows: {}, merged: {} }}", self.width, self.len(), self.merged.len())
    }
}

impl Rows {
    /// Empties the buffers for a read of `capacity` rows of `labels`, sorted by label name.
    fn reset(&mut self, width: usize, capacity: usize, labels: &[Label]) {
        self.width = width;
        self.order = name_order(labels, false);
        self.stats.clear();
        self.stats.resize_with(width, LabelStats::default);
        self.track_common = true;
        self.arena.clear();
        self.spans.clear();
        self.values.clear();
        self.keyed.clear();
        self.merged.clear();
        self.exact.clear();
        self.form = Form::Rows;
        self.arena.reserve(capacity * width * 8);
        self.spans.reserve(capacity * width);
        self.values.reserve(capacity);
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    /// Label `l` of row `r` as bytes.
    #[inline]
    fn label(&self, r: usize, l: usize) -> &[u8] {
        self.spans
            .get(r * self.width + l)
            .and_then(|&(s, n)| self.arena.get(s as usize..s as usize + n as usize))
            .unwrap_or(&[])
    }

    /// Drops the labels of an unfinished row (one that was skipped or failed).
    fn truncate_to(&mut self, rows: usize, arena: usize) {
        self.spans.truncate(rows * self.width);
        self.arena.truncate(arena);
    }

    /// Adds the labels of row `r`, just decoded, to the per-label statistics.
    fn add_stats(&mut self, r: usize) {
        for l in 0..self.width {
            let (s, n) = self.spans.get(r * self.width + l).copied().unwrap_or((0, 0));
            let value = self.arena.get(s as usize..s as usize + n as usize).unwrap_or(&[]);
            if let Some(stats) = self.stats.get_mut(l) {
                stats.add(value, self.track_common);
            }
        }
    }

    /// The merged rows as samples; `None` if they cannot be (then the general path is taken).
    fn samples(&self) -> Option<Samples> {
        let mut out = if self.form == Form::Rows { merged_samples(self)? } else { exact_samples(self)? };
        out.mark_in_name_order();
        Some(out)
    }

    /// The first 16 bytes of label `l` of row `r`, big-endian, zero-padded.
    fn prefix(&self, r: usize, l: usize) -> Key {
        key_of(self.label(r, l))
    }

    /// Label `l` of row `r` past the prefix all values of label `l` share.
    fn suffix(&self, r: usize, l: usize) -> &[u8] {
        let skip = self.stats.get(l).map_or(0, |s| s.common);
        self.label(r, l).get(skip..).unwrap_or(&[])
    }

    /// The 8 bytes of label `l` of row `r` after the prefix all its values share.
    /// With `exact` (see [`Rows::key_is_exact`]): those bytes (7 at most, zero-padded) and their
    /// number in the low byte, which orders and tells apart even values holding NULs.
    fn key(&self, r: usize, l: usize, exact: bool) -> u64 {
        let rest = self.suffix(r, l);
        if exact {
            (prefix_of(rest) & !0xff) | rest.len().min(7) as u64
        } else {
            prefix_of(rest)
        }
    }

    /// The up to 16 bytes of label `l` of row `r` past the common prefix, zero-padded, and
    /// whether they hold a NUL (then the key cannot tell "a" from "a\0").
    fn padded_key(&self, r: usize, l: usize) -> (Key, bool) {
        let rest = self.suffix(r, l);
        let key = key_of(rest);
        // Set the padding bytes, then look for a zero byte among the value's.
        let padding = Key::MAX.checked_shr(8 * rest.len().min(KEY_BYTES) as u32).unwrap_or(0);
        let x = key | padding;
        const ONES: Key = Key::MAX / 0xff;
        let nul = x.wrapping_sub(ONES) & !x & (ONES << 7) != 0;
        (key, nul)
    }

    /// The up to 15 bytes of label `l` of row `r` past the common prefix, zero-padded, and
    /// their number in the low byte: exact, NULs or not, for labels that fit.
    fn len_key(&self, r: usize, l: usize) -> Key {
        let rest = self.suffix(r, l);
        (key_of(rest) & !0xff) | rest.len().min(KEY_BYTES - 1) as Key
    }

    /// Whether every value of label `l` is at most 7 bytes past the common prefix: then
    /// [`Rows::key`] holds all of it, and equal keys mean equal values.
    fn key_is_exact(&self, l: usize) -> bool {
        self.stats.get(l).is_some_and(|s| s.longest - s.common <= 7)
    }

    fn cmp_rows(&self, x: usize, y: usize, from: usize) -> std::cmp::Ordering {
        self.order[from.min(self.order.len())..]
            .iter()
            .map(|&l| self.label(x, l).cmp(self.label(y, l)))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    }

    /// Sorts the rows collected in `exact` by their prefixes and sums those with equal ones.
    fn merge_exact(&mut self) {
        let exact = &mut self.exact;
        // Key pairs whose differing bytes span 16 bytes at most are sorted as one number (a pid
        // and a short name fit in 8: those are sorted in a compact copy), then put back.
        match Packing::of(exact) {
            Some(p) if p.bits() <= 64 => {
                sort_packed(exact, |_, e| p.pack(e.0, e.1) as u64, |packed| p.unpack(Key::from(packed)))
            }
            Some(p) => sort_packed(exact, |_, e| p.pack(e.0, e.1), |packed| p.unpack(packed)),
            None => {
                if !merge_ranked(exact) {
                    exact.sort_unstable_by_key(|k| (k.0, k.1));
                    merge_equal(exact);
                }
            }
        }
        self.form = Form::Prefix;
    }

    /// Sorts rows by label values (byte strings, element-wise) and sums rows with equal labels
    /// into `merged`; or, with one or two labels whose keys hold their whole
    /// value past the common prefix, into `exact` (form [`Form::Suffix`]): then the labels are
    /// rebuilt from the keys and the arena is not visited again, in sorted (random) order.
    fn merge(&mut self) {
        let (w, n) = (self.width, self.len());
        self.merged.clear();
        self.form = Form::Rows;
        if w == 0 {
            if n > 0 {
                let total = self.values.iter().fold(0u64, |a, &v| a.saturating_add(v));
                self.merged.push((0, total));
            }
            return;
        }
        let mut keyed = std::mem::take(&mut self.keyed);
        keyed.clear();
        let (l0, l1) = (self.order[0], self.order.get(1).copied().unwrap_or(0));
        // Keys are the 8 bytes after what all values of a label share: they order the rows
        // wherever they differ. An exact key is the whole label: equal keys, equal labels.
        let exact0 = self.key_is_exact(l0);
        let exact1 = w > 1 && self.key_is_exact(l1);
        let exact = exact0 && (w == 1 || (w == 2 && exact1));
        let fits = |l: usize, n: usize| self.stats.get(l).is_some_and(|s| s.longest - s.common <= n);
        if w <= 2 && fits(l0, KEY_BYTES) && (w == 1 || fits(l1, KEY_BYTES)) {
            // Suffixes of at most 16 bytes: zero-padded keys are exact unless a suffix holds a
            // NUL; then keys with a length byte, if suffixes are at most 15 bytes.
            let mut pairs = std::mem::take(&mut self.exact);
            pairs.clear();
            let mut nul = false;
            pairs.extend(self.values.iter().enumerate().map(|(r, &v)| {
                let (k0, z0) = self.padded_key(r, l0);
                let (k1, z1) = if w > 1 { self.padded_key(r, l1) } else { (0, false) };
                nul |= z0 | z1;
                (k0, k1, v)
            }));
            let form = if !nul {
                Some(Form::Suffix { len_byte: false })
            } else if fits(l0, KEY_BYTES - 1) && (w == 1 || fits(l1, KEY_BYTES - 1)) {
                pairs.clear();
                pairs.extend(
                    self.values
                        .iter()
                        .enumerate()
                        .map(|(r, &v)| (self.len_key(r, l0), if w > 1 { self.len_key(r, l1) } else { 0 }, v)),
                );
                Some(Form::Suffix { len_byte: true })
            } else {
                None
            };
            self.exact = pairs;
            if let Some(form) = form {
                self.keyed = keyed;
                self.merge_exact();
                self.form = form;
                return;
            }
            self.exact.clear();
        }
        keyed.extend(
            (0..n).map(|r| (self.key(r, l0, exact0), if w > 1 { self.key(r, l1, exact1) } else { 0 }, r as u32)),
        );
        if exact {
            keyed.sort_unstable_by_key(|k| (k.0, k.1));
        } else {
            keyed.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| {
                        if exact0 {
                            std::cmp::Ordering::Equal
                        } else {
                            self.label(a.2 as usize, l0).cmp(self.label(b.2 as usize, l0))
                        }
                    })
                    .then_with(|| a.1.cmp(&b.1))
                    .then_with(|| self.cmp_rows(a.2 as usize, b.2 as usize, 1))
            });
        }
        let mut last: Option<(u64, u64, usize)> = None;
        for &(p0, p1, r) in &keyed {
            let r = r as usize;
            let v = self.values.get(r).copied().unwrap_or(0);
            if let Some((q0, q1, prev)) = last {
                if (q0, q1) == (p0, p1) && (exact || self.cmp_rows(prev, r, 0).is_eq()) {
                    if let Some((_, sum)) = self.merged.last_mut() {
                        *sum = sum.saturating_add(v);
                    }
                    continue;
                }
            }
            self.merged.push((r as u32, v));
            last = Some((p0, p1, r));
        }
        self.keyed = keyed;
    }
}

/// Where [`Rows::merge`] or [`Rows::merge_exact`] left the merged rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Form {
    /// `merged`: (row, sum), labels in the arena.
    #[default]
    Rows,
    /// `exact`, keys of at most 16 bytes holding no NUL, zero-padded (the value ends where the
    /// trailing zeros begin).
    Prefix,
    /// `exact`, keys of the bytes past the label's common prefix, zero-padded: at most 16 bytes
    /// without a NUL ([`Rows::padded_key`]), or with `len_byte` at most 15 bytes and their
    /// number in the low byte ([`Rows::len_key`]).
    Suffix { len_byte: bool },
}

/// Sorts and sums key pairs by the rank of the first key among its distinct values, packed with
/// the second key's differing bytes into one number: for pairs like a task name beside a pid,
/// where names are few and long. False (and `exact` untouched) when the first keys are not few
/// or the pair does not fit in 64 bits.
fn merge_ranked(exact: &mut Vec<(Key, Key, u64)>) -> bool {
    const SAMPLE: usize = 4096;
    let Some(&(_, f1, _)) = exact.first() else {
        return false;
    };
    let second = Span::of(f1, exact.iter().fold(0, |d, e| d | (e.1 ^ f1)));
    let rank_bits = 64 - second.bits.min(64);
    if rank_bits < 16 {
        return false;
    }
    let mut ids: FastMap<Key, u32> = FastMap::default();
    let mut row_ids = Vec::with_capacity(exact.len());
    for (i, e) in exact.iter().enumerate() {
        let next = ids.len() as u32;
        row_ids.push(*ids.entry(e.0).or_insert(next));
        // Many distinct first keys: ranking them costs more than it saves.
        if (i + 1 == SAMPLE && ids.len() > SAMPLE / 4) || ids.len() >= 1 << rank_bits.min(24) {
            return false;
        }
    }
    let mut distinct: Vec<(Key, u32)> = ids.into_iter().collect();
    distinct.sort_unstable();
    let mut rank = vec![0u64; distinct.len()];
    for (r, &(_, id)) in distinct.iter().enumerate() {
        if let Some(slot) = rank.get_mut(id as usize) {
            *slot = r as u64;
        }
    }
    let low = second.mask() as u64;
    sort_packed(
        exact,
        |i, e| {
            let r = row_ids.get(i).and_then(|&id| rank.get(id as usize)).copied().unwrap_or(0);
            r.checked_shl(second.bits).unwrap_or(0) | second.get(e.1) as u64
        },
        |p| {
            let first = distinct.get(p.checked_shr(second.bits).unwrap_or(0) as usize).map_or(0, |d| d.0);
            (first, second.put(Key::from(p & low)))
        },
    );
    true
}

/// Sorts `exact` by one number per key pair (`pack`, given the pair's index), sums pairs that
/// pack equal, and puts the pairs back (`unpack`): the sort moves small elements and compares
/// one number. The packing must keep the pairs' order and tell unequal pairs apart.
fn sort_packed<P: Ord + Copy>(
    exact: &mut Vec<(Key, Key, u64)>,
    pack: impl Fn(usize, &(Key, Key, u64)) -> P,
    unpack: impl Fn(P) -> (Key, Key),
) {
    let mut packed: Vec<(P, u64)> = exact.iter().enumerate().map(|(i, e)| (pack(i, e), e.2)).collect();
    packed.sort_unstable_by_key(|p| p.0);
    exact.clear();
    let mut last = None;
    for (p, v) in packed {
        if last == Some(p) {
            if let Some(e) = exact.last_mut() {
                e.2 = e.2.saturating_add(v);
            }
            continue;
        }
        last = Some(p);
        let (k0, k1) = unpack(p);
        exact.push((k0, k1, v));
    }
}

/// Sums neighbours with equal keys (the first two fields) of a sorted slice, in place.
fn merge_equal(exact: &mut Vec<(Key, Key, u64)>) {
    let mut kept = 0usize;
    for i in 0..exact.len() {
        let (p0, p1, v) = exact[i];
        match kept.checked_sub(1).and_then(|last| exact.get_mut(last)) {
            Some(last) if (last.0, last.1) == (p0, p1) => last.2 = last.2.saturating_add(v),
            _ => {
                exact[kept] = (p0, p1, v);
                kept += 1;
            }
        }
    }
    exact.truncate(kept);
}

/// Where the bytes that differ between keys sit, when the span of differing bytes of the
/// first key and that of the second add up to 16 bytes at most (a pid and a task name, say):
/// the pair then orders like one number made of the two spans.
pub(super) struct Packing {
    first: Span,
    second: Span,
}

/// The bits of a key from its lowest to its highest differing byte.
#[derive(Clone, Copy)]
struct Span {
    /// The key's bits outside the span (the same in every key).
    base: Key,
    /// Bits below the span.
    shift: u32,
    /// Bits in the span (0 to 128).
    bits: u32,
}

impl Span {
    fn of(first: Key, diff: Key) -> Span {
        if diff == 0 {
            return Span { base: first, shift: 0, bits: 0 };
        }
        let shift = diff.trailing_zeros() & !7;
        let bits = Key::BITS - (diff.leading_zeros() & !7) - shift;
        let span = Span { base: 0, shift, bits };
        Span { base: first & !(span.mask() << shift), ..span }
    }

    fn mask(self) -> Key {
        Key::MAX.checked_shr(Key::BITS - self.bits).unwrap_or(0)
    }

    #[inline]
    fn get(self, key: Key) -> Key {
        key.checked_shr(self.shift).unwrap_or(0) & self.mask()
    }

    #[inline]
    fn put(self, field: Key) -> Key {
        self.base | field.checked_shl(self.shift).unwrap_or(0)
    }
}

impl Packing {
    pub(super) fn of(exact: &[(Key, Key, u64)]) -> Option<Packing> {
        let &(f0, f1, _) = exact.first()?;
        let (mut d0, mut d1) = (0, 0);
        for &(k0, k1, _) in exact {
            d0 |= k0 ^ f0;
            d1 |= k1 ^ f1;
        }
        let (first, second) = (Span::of(f0, d0), Span::of(f1, d1));
        (first.bits + second.bits <= Key::BITS).then_some(Packing { first, second })
    }

    /// Bits of a packed pair.
    pub(super) fn bits(&self) -> u32 {
        self.first.bits + self.second.bits
    }

    #[inline]
    pub(super) fn pack(&self, k0: Key, k1: Key) -> Key {
        self.first.get(k0).checked_shl(self.second.bits).unwrap_or(0) | self.second.get(k1)
    }

    #[inline]
    pub(super) fn unpack(&self, packed: Key) -> (Key, Key) {
        let first = packed.checked_shr(self.second.bits).unwrap_or(0) & self.first.mask();
        (self.first.put(first), self.second.put(packed & self.second.mask()))
    }
}

/// An exact sort key: up to 16 bytes of a label value as a big-endian number.
type Key = u128;
const KEY_BYTES: usize = 16;

/// The first 16 bytes of `b` as a big-endian number, zero-padded.
pub(super) fn key_of(b: &[u8]) -> Key {
    let mut p = [0u8; KEY_BYTES];
    let n = b.len().min(KEY_BYTES);
    p[..n].copy_from_slice(&b[..n]);
    Key::from_be_bytes(p)
}

/// The first 8 bytes of `b` as a big-endian number, zero-padded: numbers order like the byte
/// strings wherever they differ.
fn prefix_of(b: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = b.len().min(8);
    p[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(p)
}

/// What the values of one label have in common, gathered as rows are decoded.
#[derive(Debug, Default, Clone)]
struct LabelStats {
    /// The first value seen.
    first: Vec<u8>,
    /// Values seen so far.
    seen: usize,
    /// Length of the prefix every value seen shares.
    common: usize,
    /// Length of the longest value.
    longest: usize,
    /// Some value holds a NUL byte (a zero-padded key could not tell "a" from "a\0"); tracked
    /// only by the exact-prefix attempt (`track_common` off), whose keys have no length byte.
    nul: bool,
}

impl LabelStats {
    fn add(&mut self, value: &[u8], track_common: bool) {
        if !track_common {
            self.common = 0;
            self.nul |= value.contains(&0);
        } else if self.seen == 0 {
            self.first.clear();
            self.first.extend_from_slice(value);
            self.common = value.len();
        } else {
            self.common = common_prefix(self.first.get(..self.common).unwrap_or(&[]), value);
        }
        self.seen += 1;
        self.longest = self.longest.max(value.len());
    }
}

/// Length of the prefix `a` and `b` share, compared 8 bytes at a time.
pub(super) fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while let (Some(x), Some(y)) = (a.get(i..i + 8), b.get(i..i + 8)) {
        let diff =
            u64::from_le_bytes(x.try_into().unwrap_or([0; 8])) ^ u64::from_le_bytes(y.try_into().unwrap_or([0; 8]));
        if diff != 0 {
            return i + (diff.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a.get(i) == b.get(i) {
        i += 1;
    }
    i
}

/// Samples of the merged rows: each row's values lie side by side in the arena, so a row is one
/// copy; the whole text is checked as UTF-8 once.
fn merged_samples(rows: &Rows) -> Option<Samples> {
    let w = rows.width;
    let mut text = Vec::with_capacity(rows.arena.len());
    let mut ends = Vec::with_capacity(rows.merged.len() * w);
    let mut values = Vec::with_capacity(rows.merged.len());
    for &(r, sum) in &rows.merged {
        let spans = rows.spans.get(r as usize * w..(r as usize + 1) * w)?;
        if let (Some(&(first, _)), Some(&(last, n))) = (spans.first(), spans.last()) {
            let at = text.len();
            text.extend_from_slice(rows.arena.get(first as usize..last as usize + n as usize)?);
            for &(start, n) in spans {
                ends.push(at + (start + n - first) as usize);
            }
        }
        values.push(sum as f64);
    }
    Samples::from_columns(w, text, ends, values)
}

/// Appends the value an exact key of config label `l` stands for (see [`Form`]).
#[inline]
fn push_exact(rows: &Rows, l: usize, key: Key, out: &mut Vec<u8>) {
    let at = out.len();
    // Without a length byte the value ends where the trailing zero bytes begin (it holds no
    // NUL). All 16 bytes are copied (a fixed-size copy), then the padding is cut off.
    let padded_len = KEY_BYTES - (key.trailing_zeros() / 8) as usize;
    match rows.form {
        Form::Suffix { len_byte } => {
            let common = rows.stats.get(l).and_then(|s| s.first.get(..s.common)).unwrap_or(&[]);
            out.extend_from_slice(common);
            let len = if len_byte { (key & 0xff).min(KEY_BYTES as Key - 1) as usize } else { padded_len };
            out.extend_from_slice(&key.to_be_bytes());
            out.truncate(at + common.len() + len);
        }
        Form::Prefix | Form::Rows => {
            out.extend_from_slice(&key.to_be_bytes());
            out.truncate(at + padded_len);
        }
    }
}

/// Samples straight from exact keys: label bytes are copied into one buffer, checked to be
/// UTF-8 once as a whole rather than value by value.
fn exact_samples(rows: &Rows) -> Option<Samples> {
    let n = rows.exact.len();
    let w = rows.width.min(2);
    let first = rows.order.first().copied().unwrap_or(0);
    let mut text = Vec::with_capacity(n * w * KEY_BYTES);
    let mut ends = Vec::with_capacity(n * w);
    let mut values = Vec::with_capacity(n);
    for &(k0, k1, v) in &rows.exact {
        let pair = if first == 0 { [k0, k1] } else { [k1, k0] };
        for (l, key) in pair.into_iter().enumerate().take(w) {
            push_exact(rows, l, key, &mut text);
            ends.push(text.len());
        }
        values.push(v as f64);
    }
    Samples::from_columns(rows.width, text, ends, values)
}

/// Result of decoding one row's labels.
/// Exact keys of every entry of `raw` read straight off the fields of labels `l0` and `l1`, into
/// `exact`; false (and `exact` emptied) as soon as one cannot be (see [`chain::DirectKey`]).
fn direct_keys(state: &MetricState, raw: &RawMap, l0: usize, l1: usize, exact: &mut Vec<(Key, Key, u64)>) -> bool {
    let reader = |l: usize| match state.direct.get(l) {
        Some(&(offset, size, Some(kind))) if size > 0 => Some((offset, size, kind)),
        _ => None,
    };
    let width = state.labels.len();
    let (Some(first), second) = (reader(l0), if width > 1 { reader(l1) } else { None }) else {
        return false;
    };
    if width > 1 && second.is_none() {
        return false;
    }
    let key = |bytes: &[u8], (offset, size, kind): (usize, usize, chain::DirectKey)| {
        bytes.get(offset..offset.checked_add(size)?).and_then(|field| kind.key(field))
    };
    exact.clear();
    exact.reserve(raw.len());
    for (bytes, values) in raw.keys.chunks_exact(raw.key_size).zip(raw.values.chunks_exact(raw.slots.max(1))) {
        let value = values.iter().fold(0u64, |acc, &v| acc.saturating_add(v));
        let k1 = match second {
            Some(r) => key(bytes, r),
            None => Some(0),
        };
        match (key(bytes, first), k1) {
            (Some(k0), Some(k1)) => exact.push((k0, k1, value)),
            _ => {
                exact.clear();
                return false;
            }
        }
    }
    true
}
