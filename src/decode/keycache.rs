//! serve's cache of decoded labels by raw key (README.md, `ebpfx serve`, "Label cache"): label sets are stable
//! for the life of a serve process, so each row key's decoded label values are kept from one
//! scrape to the next and only the values are summed per scrape.
//!
//! Only metrics whose every label chain is [`chain::stable`] (a pure function of the key bytes)
//! take it. What a key decoded to is kept whole: its series (label values, shared by every key
//! that decodes to the same ones), a skip, or the error detail, which is counted again at every
//! scrape the key is in, as the uncached path would. The cache is the latest read's rows: their
//! keys back to back with what each decoded to, and the series some row of that read gave; keys
//! and series the next read does not see are gone after it. The series are kept in output order
//! (sorted once, new ones merged in), so a scrape of an unchanged map neither decodes nor sorts;
//! a map read in the same order as last time is matched row by row without hashing.
//!
//! Nothing is allocated per key or per series: keys, label text and both hash indexes are flat
//! buffers, so that the first read (which decodes every key) costs about what an uncached decode
//! does (`decode::tests::large_map_100k`).
use std::cmp::Ordering;
use std::hash::Hasher;
use std::sync::Arc;

use super::fast::key_of;
use super::fasthash::FastHasher;
use super::rows::{decode_row, each_row, name_order, Merged, MetricError, MetricState, Row, Shape};
use super::{chain, RowErrors};
use crate::model::Samples;
use crate::raw::RawMap;

/// What one row key decoded to.
#[derive(Debug, Clone)]
enum Outcome {
    /// Index of the series.
    Series(u32),
    /// A decoder asked to drop the row.
    Skip,
    /// The row is dropped and counted as a decoder error with this detail.
    Failed(Arc<str>),
}

/// The rows of one read: their keys back to back, where each ends, and what each decoded to.
#[derive(Debug, Default)]
struct Keys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    outcomes: Vec<Outcome>,
}

impl Keys {
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.outcomes.clear();
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Key of row `i`.
    #[inline]
    fn get(&self, i: usize) -> Option<&[u8]> {
        let start = match i.checked_sub(1) {
            Some(p) => *self.ends.get(p)?,
            None => 0,
        };
        self.bytes.get(start..*self.ends.get(i)?)
    }

    /// End of the first `n` rows' keys.
    fn end(&self, n: usize) -> usize {
        n.checked_sub(1).and_then(|last| self.ends.get(last)).copied().unwrap_or(0)
    }

    /// Keeps the first `n` rows.
    fn truncate(&mut self, n: usize) {
        self.bytes.truncate(self.end(n));
        self.ends.truncate(n);
        self.outcomes.truncate(n);
    }

    /// Appends the first `n` rows of `from`.
    fn extend_from(&mut self, from: &Keys, n: usize) {
        self.bytes.extend_from_slice(from.bytes.get(..from.end(n)).unwrap_or(&[]));
        self.ends.extend_from_slice(from.ends.get(..n).unwrap_or(&[]));
        self.outcomes.extend_from_slice(from.outcomes.get(..n).unwrap_or(&[]));
    }

    fn push(&mut self, key: &[u8], outcome: Outcome) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
        self.outcomes.push(outcome);
    }
}

/// A hash index of the rows of a [`Keys`] by key: open addressing, linear probing, sized once
/// for its rows (at most half full); the caller compares the keys.
#[derive(Debug, Default)]
struct Table {
    /// (low half of the hash, row); row [`EMPTY`] for a free slot.
    slots: Vec<(u32, u32)>,
    len: usize,
}

const EMPTY: u32 = u32::MAX;

impl Table {
    /// Empties the table, sized for `n` rows.
    fn reset(&mut self, n: usize) {
        let cap = n.saturating_mul(2).max(8).next_power_of_two();
        self.slots.clear();
        self.slots.resize(cap, (0, EMPTY));
        self.len = 0;
    }

    /// The first slot to probe for `hash`.
    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.slots.len().wrapping_sub(1)
    }

    /// The row of hash `hash` for which `eq` holds.
    #[inline]
    fn find(&self, hash: u64, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = self.home(hash);
        loop {
            let &(h, id) = self.slots.get(i)?;
            if id == EMPTY {
                return None;
            }
            if h == hash as u32 && eq(id) {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds `id` under `hash`; not when the table is half full (not expected: it is sized for
    /// the rows it indexes), then `find` does not find it and the key is decoded again.
    fn insert(&mut self, hash: u64, id: u32) {
        if id == EMPTY || self.len.saturating_add(1).saturating_mul(2) > self.slots.len() {
            return;
        }
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = self.home(hash);
        while let Some(slot) = self.slots.get_mut(i) {
            if slot.1 == EMPTY {
                *slot = (hash as u32, id);
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }
}

fn hash_key(key: &[u8]) -> u64 {
    let mut h = FastHasher::default();
    h.write(key);
    h.finish()
}

#[derive(Debug, Default)]
pub(super) struct KeyCache {
    /// Labels per series (the metric's labels, bucket label included).
    width: usize,
    /// The latest read's rows.
    prev: Keys,
    /// The rows of the read under way (kept between reads for its buffers).
    next: Keys,
    /// Row keys of `prev` → row, built when a read first finds a row that differs from the last
    /// read's at its position; `indexed` says whether it is up to date.
    index: Table,
    indexed: bool,
    /// Label values of every series, back to back, `width` spans (start, length) per series in
    /// config order.
    text: Vec<u8>,
    spans: Vec<(u32, u32)>,
    /// Number of series.
    count: usize,
    /// Series indices in output order (label-name order, as `rows::read` sorts).
    order: Vec<u32>,
    /// Series added by this read, merged into `order` at its end. Every row decoded by a read
    /// adds one; those equal to another are found by the sort and merged into it.
    fresh: Vec<u32>,
    /// This read's sums and whether the series had a row, by series index.
    sums: Vec<u64>,
    present: Vec<bool>,
    /// The label values of the series in `order`, back to back (`width` ends per series): the
    /// output is copied from here, in order, without visiting each series' own values.
    sorted_text: String,
    sorted_ends: Vec<usize>,
    /// Whether `sorted_*` must be rebuilt (series were added or dropped).
    layout_stale: bool,
    /// One row's decoded labels.
    arena: Vec<u8>,
    row_spans: Vec<(u32, u32)>,
}

impl KeyCache {
    /// Number of keys kept.
    pub(super) fn keys(&self) -> usize {
        self.prev.len()
    }

    /// Number of series kept (tests).
    #[cfg(test)]
    pub(super) fn series(&self) -> usize {
        self.count
    }

    /// Label `l` of series `s`.
    #[inline]
    fn label(&self, s: u32, l: usize) -> &[u8] {
        label_of(&self.text, &self.spans, self.width, s, l)
    }

    /// Sums every row of `raw` into its series, decoding only keys not seen by the last read;
    /// then drops what this read did not see. The rows' errors are those the uncached path
    /// reports, in the same row order.
    pub(super) fn read(
        &mut self,
        tables: &mut chain::Tables,
        state: &mut MetricState,
        raw: &RawMap,
        shape: Shape,
        histogram: bool,
        scratch: &mut (Vec<u8>, Vec<u8>),
    ) -> Result<RowErrors, MetricError> {
        let width = state.labels.len();
        if width != self.width {
            *self = KeyCache { width, ..KeyCache::default() };
        }
        let mut errors = RowErrors::default();
        self.sums.clear();
        self.sums.resize(self.count, 0);
        self.present.clear();
        self.present.resize(self.count, false);
        self.fresh.clear();
        // This read's rows are only written down from the first one that differs from the last
        // read's row at its position: a read of an unchanged map copies nothing.
        let mut next = std::mem::take(&mut self.next);
        next.clear();
        let rows = if shape.cpu_rows { raw.len().saturating_mul(raw.slots) } else { raw.len() };
        let (mut seen, mut copying) = (0usize, false);
        let pass = each_row(raw, shape, |bytes, value| {
            let i = seen;
            seen += 1;
            let outcome = match self.prev.outcomes.get(i) {
                Some(o) if !copying && self.prev.get(i) == Some(bytes) => o.clone(),
                _ => {
                    if !copying {
                        copying = true;
                        next.ends.reserve(rows);
                        next.outcomes.reserve(rows);
                        next.bytes.reserve(rows.saturating_mul(raw.key_size.saturating_add(2)));
                        next.extend_from(&self.prev, i);
                    }
                    self.lookup(tables, state, bytes, scratch)
                }
            };
            match outcome {
                Outcome::Series(s) => {
                    if let Some(sum) = self.sums.get_mut(s as usize) {
                        *sum = sum.saturating_add(value);
                    }
                    if let Some(p) = self.present.get_mut(s as usize) {
                        *p = true;
                    }
                }
                Outcome::Skip => {}
                Outcome::Failed(ref detail) => errors.note(detail.to_string()),
            }
            if copying {
                next.push(bytes, outcome);
            }
            true
        });
        if let Err(e) = pass {
            // A raw map that cannot be read row by row (checked before, so not expected): start
            // afresh rather than keep series this read added but did not order.
            *self = KeyCache::default();
            return Err(e);
        }
        if copying {
            // The index is of the last read's keys.
            self.indexed = false;
            self.next = std::mem::replace(&mut self.prev, next);
        } else if seen < self.prev.len() {
            // The last read's rows, fewer.
            self.indexed = false;
            self.prev.truncate(seen);
            self.next = next;
        } else {
            self.next = next;
        }
        if !self.fresh.is_empty() {
            self.order_fresh(&state.labels, histogram);
            self.layout_stale = true;
        }
        if self.drop_unused() {
            self.layout_stale = true;
        }
        if self.layout_stale {
            self.rebuild_layout();
        }
        Ok(errors)
    }

    /// Rebuilds `sorted_text` and `sorted_ends` from the series in `order`. Label values are
    /// UTF-8 (`decode_row` escapes other bytes): copied as bytes and checked once as a whole;
    /// value by value (invalid bytes replaced) only if that check failed.
    fn rebuild_layout(&mut self) {
        let width = self.width;
        let mut text = std::mem::take(&mut self.sorted_text).into_bytes();
        text.clear();
        text.reserve(self.text.len());
        self.sorted_ends.clear();
        self.sorted_ends.reserve(self.order.len().saturating_mul(width));
        for &s in &self.order {
            for l in 0..width {
                text.extend_from_slice(self.label(s, l));
                self.sorted_ends.push(text.len());
            }
        }
        self.sorted_text = String::from_utf8(text).unwrap_or_else(|_| {
            let mut text = String::with_capacity(self.text.len());
            self.sorted_ends.clear();
            for &s in &self.order {
                for l in 0..width {
                    text.push_str(&String::from_utf8_lossy(self.label(s, l)));
                    self.sorted_ends.push(text.len());
                }
            }
            text
        });
        self.layout_stale = false;
    }

    /// The outcome of a key not matched row by row: the last read's, or decoded now.
    fn lookup(
        &mut self,
        tables: &mut chain::Tables,
        state: &mut MetricState,
        bytes: &[u8],
        scratch: &mut (Vec<u8>, Vec<u8>),
    ) -> Outcome {
        if self.prev.len() > 0 {
            if !self.indexed {
                self.index.reset(self.prev.len());
                for i in 0..self.prev.len() {
                    if let (Some(key), Ok(id)) = (self.prev.get(i), u32::try_from(i)) {
                        self.index.insert(hash_key(key), id);
                    }
                }
                self.indexed = true;
            }
            let prev = &self.prev;
            if let Some(i) = self.index.find(hash_key(bytes), |i| prev.get(i as usize) == Some(bytes)) {
                if let Some(o) = prev.outcomes.get(i as usize) {
                    return o.clone();
                }
            }
        }
        self.arena.clear();
        self.row_spans.clear();
        match decode_row(tables, state, bytes, &mut self.arena, &mut self.row_spans, scratch) {
            Ok(Row::Keep) => self.add_series(),
            Ok(Row::Skip) => Outcome::Skip,
            Err(detail) => Outcome::Failed(detail.into()),
        }
    }

    /// A new series for the row in `arena` and `row_spans` (merged into an equal one, if any,
    /// by [`KeyCache::order_fresh`]).
    fn add_series(&mut self) -> Outcome {
        let (Ok(s), Ok(base), Ok(_)) = (
            u32::try_from(self.count),
            u32::try_from(self.text.len()),
            u32::try_from(self.text.len().saturating_add(self.arena.len())),
        ) else {
            return Outcome::Failed("label values exceed 4 GiB".into());
        };
        if s == EMPTY {
            return Outcome::Failed("label values exceed 4 GiB".into());
        }
        self.text.extend_from_slice(&self.arena);
        self.spans.extend(self.row_spans.iter().map(|&(st, n)| (base + st, n)));
        self.count += 1;
        self.sums.push(0);
        self.present.push(false);
        self.fresh.push(s);
        Outcome::Series(s)
    }

    /// Sorts the series added by this read and merges them into `order`; a new series equal to
    /// another (new or kept) is merged into that one: its rows' sums and outcomes move there, and
    /// it is left without rows for [`KeyCache::drop_unused`].
    fn order_fresh(&mut self, labels: &[crate::config::Label], histogram: bool) {
        let by = name_order(labels, histogram);
        let (text, spans, width) = (&self.text, &self.spans, self.width);
        let label = |s: u32, l: usize| label_of(text, spans, width, s, l);
        let cmp = |a: u32, b: u32| -> Ordering {
            by.iter().map(|&l| label(a, l).cmp(label(b, l))).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
        };
        // Sorted by the first 16 bytes of the first two labels in output order as numbers (which
        // order like the values wherever they differ), then by the values where that is not
        // exact (longer values, or values holding a NUL, which the zero padding hides).
        let (l0, l1) = (by.first().copied(), by.get(1).copied());
        let mut exact = [true, true];
        let key = |s: u32, l: Option<usize>, e: &mut bool| match l {
            Some(l) => {
                let v = label(s, l);
                *e &= v.len() <= 16 && !v.contains(&0);
                key_of(v)
            }
            None => 0,
        };
        let mut keyed: Vec<(u128, u128, u32)> = Vec::with_capacity(self.fresh.len());
        for &s in &self.fresh {
            let (mut e0, mut e1) = (true, true);
            keyed.push((key(s, l0, &mut e0), key(s, l1, &mut e1), s));
            exact[0] &= e0;
            exact[1] &= e1;
        }
        // The keys are the whole values: equal keys, equal series.
        let whole = exact[0] && exact[1] && by.len() <= 2;
        if whole {
            keyed.sort_unstable_by_key(|k| (k.0, k.1));
        } else {
            let full = |s: u32, l: Option<usize>| l.map_or(&[][..], |l| label(s, l));
            keyed.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| if exact[0] { Ordering::Equal } else { full(a.2, l0).cmp(full(b.2, l0)) })
                    .then_with(|| a.1.cmp(&b.1))
                    .then_with(|| cmp(a.2, b.2))
            });
        }
        // (series, the equal one it is merged into)
        let mut merged_into: Vec<(u32, u32)> = Vec::new();
        let mut sorted: Vec<u32> = Vec::with_capacity(keyed.len());
        let mut last: Option<&(u128, u128, u32)> = None;
        for k in &keyed {
            match last {
                Some(l) if (l.0, l.1) == (k.0, k.1) && (whole || cmp(l.2, k.2).is_eq()) => merged_into.push((k.2, l.2)),
                _ => {
                    sorted.push(k.2);
                    last = Some(k);
                }
            }
        }
        let old = std::mem::take(&mut self.order);
        let mut order = Vec::with_capacity(old.len() + sorted.len());
        let log2 = usize::BITS - old.len().leading_zeros();
        if sorted.len().saturating_mul(log2 as usize) < old.len() {
            // A few new series among many kept: each is placed by a binary search.
            let mut i = 0;
            for &b in &sorted {
                let rest = old.get(i..).unwrap_or(&[]);
                let at = rest.partition_point(|&a| cmp(a, b).is_lt());
                order.extend_from_slice(rest.get(..at).unwrap_or(&[]));
                i += at;
                match old.get(i) {
                    Some(&a) if cmp(a, b).is_eq() => merged_into.push((b, a)),
                    _ => order.push(b),
                }
            }
            order.extend_from_slice(old.get(i..).unwrap_or(&[]));
        } else {
            let (mut i, mut j) = (0, 0);
            while let (Some(&a), Some(&b)) = (old.get(i), sorted.get(j)) {
                match cmp(b, a) {
                    Ordering::Less => {
                        order.push(b);
                        j += 1;
                    }
                    Ordering::Equal => {
                        merged_into.push((b, a));
                        j += 1;
                    }
                    Ordering::Greater => {
                        order.push(a);
                        i += 1;
                    }
                }
            }
            order.extend_from_slice(old.get(i..).unwrap_or(&[]));
            order.extend_from_slice(sorted.get(j..).unwrap_or(&[]));
        }
        self.order = order;
        self.fresh.clear();
        if merged_into.is_empty() {
            return;
        }
        let mut target: Vec<u32> = (0..self.count as u32).collect();
        for &(from, to) in &merged_into {
            let sum = self.sums.get(from as usize).copied().unwrap_or(0);
            if let Some(t) = self.sums.get_mut(to as usize) {
                *t = t.saturating_add(sum);
            }
            if let Some(p) = self.present.get_mut(to as usize) {
                *p = true;
            }
            if let Some(p) = self.present.get_mut(from as usize) {
                *p = false;
            }
            if let Some(t) = target.get_mut(from as usize) {
                *t = to;
            }
        }
        // A new series merged into another new one that was itself merged into a kept one: its
        // rows go to the kept one (the sums went there in that order above).
        for s in 0..target.len() {
            let mut t = target.get(s).copied().unwrap_or(EMPTY);
            for _ in 0..2 {
                t = target.get(t as usize).copied().unwrap_or(t);
            }
            if let Some(slot) = target.get_mut(s) {
                *slot = t;
            }
        }
        for o in &mut self.prev.outcomes {
            if let Outcome::Series(s) = o {
                *s = target.get(*s as usize).copied().unwrap_or(*s);
            }
        }
    }

    /// Drops the series no row of the latest read gave, renumbering the rest (order kept).
    /// Whether any was.
    fn drop_unused(&mut self) -> bool {
        if self.present.iter().all(|&p| p) {
            return false;
        }
        let w = self.width;
        let mut new_index = vec![EMPTY; self.count];
        let mut text = Vec::with_capacity(self.text.len());
        let mut spans = Vec::with_capacity(self.spans.len());
        let mut next = 0u32;
        for s in 0..self.count {
            if !self.present.get(s).copied().unwrap_or(false) {
                continue;
            }
            if let Some(slot) = new_index.get_mut(s) {
                *slot = next;
            }
            next += 1;
            for &(st, n) in self.spans.get(s * w..(s + 1) * w).unwrap_or(&[]) {
                let at = text.len() as u32;
                text.extend_from_slice(self.text.get(st as usize..st as usize + n as usize).unwrap_or(&[]));
                spans.push((at, n));
            }
        }
        let map = |s: u32| new_index.get(s as usize).copied().unwrap_or(EMPTY);
        self.text = text;
        self.spans = spans;
        self.count = next as usize;
        let keep = |s: usize, present: &[bool]| present.get(s).copied().unwrap_or(false);
        let present = std::mem::take(&mut self.present);
        let mut k = 0;
        self.sums.retain(|_| {
            k += 1;
            keep(k - 1, &present)
        });
        self.present = present.into_iter().filter(|&p| p).collect();
        self.order.retain(|&s| map(s) != EMPTY);
        self.order.iter_mut().for_each(|s| *s = map(*s));
        for o in &mut self.prev.outcomes {
            if let Outcome::Series(s) = o {
                *s = map(*s);
            }
        }
        true
    }

    /// Counter or gauge samples of the latest read, as `rows::samples` makes them.
    pub(super) fn samples(&self, width: usize) -> Samples {
        let present = |s: u32| self.present.get(s as usize).copied().unwrap_or(false);
        let sum = |s: u32| self.sums.get(s as usize).copied().unwrap_or(0) as f64;
        let mut out = if self.order.iter().all(|&s| present(s)) && self.sorted_ends.len() == self.order.len() * width {
            // Every series had a row (the usual scrape): the text is the kept one as it is.
            let values = self.order.iter().map(|&s| sum(s)).collect();
            Samples::from_columns(width, self.sorted_text.clone().into_bytes(), self.sorted_ends.clone(), values)
        } else {
            None
        }
        .unwrap_or_else(|| {
            let mut out = Samples::with_capacity(width, self.order.len(), self.sorted_text.len());
            for (p, &s) in self.order.iter().enumerate() {
                if present(s) {
                    let from = p * width;
                    let start = |i: usize| if i == 0 { 0 } else { self.sorted_ends.get(i - 1).copied().unwrap_or(0) };
                    let labels = (from..from + width).map(|i| {
                        let end = self.sorted_ends.get(i).copied().unwrap_or(0);
                        self.sorted_text.get(start(i)..end).unwrap_or("")
                    });
                    out.push(labels, sum(s));
                }
            }
            out
        });
        out.mark_in_name_order();
        out
    }

    /// The latest read's rows as `rows::read` merges them (histograms).
    pub(super) fn merged(&self) -> Merged {
        let mut out = Merged::new();
        for &s in &self.order {
            if let (Some(true), Some(&sum)) = (self.present.get(s as usize), self.sums.get(s as usize)) {
                let labels = (0..self.width).map(|l| String::from_utf8_lossy(self.label(s, l)).into_owned());
                out.push((labels.collect(), sum));
            }
        }
        out
    }
}

/// Label `l` of series `s` of `width` labels, whose spans are in `spans` and values in `text`.
#[inline]
fn label_of<'a>(text: &'a [u8], spans: &[(u32, u32)], width: usize, s: u32, l: usize) -> &'a [u8] {
    spans
        .get((s as usize).saturating_mul(width).saturating_add(l))
        .and_then(|&(st, n)| text.get(st as usize..st as usize + n as usize))
        .unwrap_or(&[])
}
