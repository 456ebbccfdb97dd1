//! serve's cache of decoded labels by raw key (README.md, `ebpfx serve`, "Label cache"): label sets are stable
//! for the life of a serve process, so each row key's decoded label values are kept from one
//! scrape to the next and only the values are summed per scrape.
//!
//! Only metrics whose every label chain is [`chain::stable`] (a pure function of the key bytes)
//! take it. What a key decoded to is kept whole: its series (label values, shared by every key
//! that decodes to the same ones), a skip, or the error detail, which is counted again at every
//! scrape the key is in, as the uncached path would. Keys absent from a read are dropped at that
//! read, and so are series no key maps to: the cache never holds more than the latest read's
//! rows. The series are kept in output order (sorted once, new ones merged in), so a scrape of
//! an unchanged map neither decodes nor sorts; a map read in the same order as last time is
//! matched row by row without hashing.
use std::cmp::Ordering;
use std::sync::Arc;

use super::fasthash::FastMap;
use super::rows::{decode_row, each_row, name_order, Merged, MetricError, MetricState, Row, Shape};
use super::{chain, RowErrors};
use crate::model::Samples;
use crate::raw::RawMap;

/// What one row key decoded to.
#[derive(Debug, Clone)]
enum Outcome {
    /// Index into [`KeyCache::series`].
    Series(u32),
    /// A decoder asked to drop the row.
    Skip,
    /// The row is dropped and counted as a decoder error with this detail.
    Failed(Arc<str>),
}

#[derive(Debug, Default)]
pub(super) struct KeyCache {
    /// Row key → outcome and the read that last saw it.
    keys: FastMap<Box<[u8]>, (Outcome, u64)>,
    /// Label values in config order ([`parts`]), one entry per distinct label tuple.
    series: Vec<Arc<[u8]>>,
    intern: FastMap<Arc<[u8]>, u32>,
    /// Series indices in output order (label-name order, as `rows::read` sorts).
    order: Vec<u32>,
    /// Series added by this read, merged into `order` at its end.
    fresh: Vec<u32>,
    /// The latest read's row keys, back to back (`prev_len` bytes each; 0: rows differ in
    /// length, no row-by-row match) and their outcomes.
    prev_keys: Vec<u8>,
    prev_len: usize,
    prev: Vec<Outcome>,
    /// This read's sums and whether the series had a row, by series index.
    sums: Vec<u64>,
    present: Vec<bool>,
    reads: u64,
    /// The label values of the series in `order`, back to back (`width` ends per series): the
    /// output is copied from here, in order, without visiting each series' own values.
    sorted_text: String,
    sorted_ends: Vec<usize>,
    /// Whether `sorted_*` must be rebuilt (series were added or dropped).
    layout_stale: bool,
    arena: Vec<u8>,
    spans: Vec<(u32, u32)>,
}

impl KeyCache {
    /// Number of keys kept (tests).
    #[cfg(test)]
    pub(super) fn keys(&self) -> usize {
        self.keys.len()
    }

    /// Number of series kept (tests).
    #[cfg(test)]
    pub(super) fn series(&self) -> usize {
        self.series.len()
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
        self.reads = self.reads.wrapping_add(1);
        let read = self.reads;
        let mut errors = RowErrors::default();
        self.sums.clear();
        self.sums.resize(self.series.len(), 0);
        self.present.clear();
        self.present.resize(self.series.len(), false);
        self.fresh.clear();
        let mut keys_now = Vec::with_capacity(self.prev_keys.len());
        let mut now: Vec<Outcome> = Vec::with_capacity(self.prev.len());
        let mut stride: Option<usize> = None;
        let mut uniform = true;
        let mut all_matched = true;
        let pass = each_row(raw, shape, |bytes, value| {
            let i = now.len();
            let len = bytes.len();
            let matched =
                self.prev_len == len && i.checked_mul(len).and_then(|s| self.prev_keys.get(s..s + len)) == Some(bytes);
            let outcome = match self.prev.get(i) {
                Some(o) if matched => o.clone(),
                _ => {
                    all_matched = false;
                    self.lookup(tables, state, bytes, read, scratch)
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
            match stride {
                None => stride = Some(len),
                Some(s) if s != len => uniform = false,
                Some(_) => {}
            }
            keys_now.extend_from_slice(bytes);
            now.push(outcome);
            true
        });
        if let Err(e) = pass {
            // A raw map that cannot be read row by row (checked before, so not expected): start
            // afresh rather than keep series this read added but did not order.
            *self = KeyCache::default();
            return Err(e);
        }
        // Unless every row matched the last read's row for row (then the keys are the same),
        // keep only the keys this read saw.
        let mut removed = false;
        if !(all_matched && now.len() == self.prev.len()) {
            each_row(raw, shape, |bytes, _| {
                if let Some(entry) = self.keys.get_mut(bytes) {
                    entry.1 = read;
                }
                true
            })?;
            let before = self.keys.len();
            self.keys.retain(|_, (_, seen)| *seen == read);
            removed = self.keys.len() < before;
        }
        self.prev_len = if uniform { stride.unwrap_or(0) } else { 0 };
        self.prev_keys = keys_now;
        self.prev = now;
        if !self.fresh.is_empty() {
            self.order_fresh(&state.labels, histogram);
            self.layout_stale = true;
        }
        if removed && self.drop_unused() {
            self.layout_stale = true;
        }
        if self.layout_stale {
            self.sorted_text.clear();
            self.sorted_ends.clear();
            for &s in &self.order {
                for label in self.series.get(s as usize).iter().flat_map(|l| parts(l)) {
                    self.sorted_text.push_str(&String::from_utf8_lossy(label));
                    self.sorted_ends.push(self.sorted_text.len());
                }
            }
            self.layout_stale = false;
        }
        Ok(errors)
    }

    /// The outcome of a key not matched row by row: from the cache, or decoded now.
    fn lookup(
        &mut self,
        tables: &mut chain::Tables,
        state: &mut MetricState,
        bytes: &[u8],
        read: u64,
        scratch: &mut (Vec<u8>, Vec<u8>),
    ) -> Outcome {
        if let Some((o, seen)) = self.keys.get_mut(bytes) {
            *seen = read;
            return o.clone();
        }
        self.arena.clear();
        self.spans.clear();
        let outcome = match decode_row(tables, state, bytes, &mut self.arena, &mut self.spans, scratch) {
            Ok(Row::Keep) => {
                let mut labels = Vec::with_capacity(self.arena.len() + 4 * self.spans.len());
                for &(s, n) in &self.spans {
                    labels.extend_from_slice(&n.to_le_bytes());
                    labels.extend_from_slice(self.arena.get(s as usize..s as usize + n as usize).unwrap_or(&[]));
                }
                Outcome::Series(self.intern(labels.into()))
            }
            Ok(Row::Skip) => Outcome::Skip,
            Err(detail) => Outcome::Failed(detail.into()),
        };
        self.keys.insert(bytes.into(), (outcome.clone(), read));
        outcome
    }

    /// The index of the series with these label values, added if new.
    fn intern(&mut self, labels: Arc<[u8]>) -> u32 {
        if let Some(&s) = self.intern.get(&labels) {
            return s;
        }
        let s = u32::try_from(self.series.len()).unwrap_or(u32::MAX);
        self.series.push(labels.clone());
        self.intern.insert(labels, s);
        self.sums.push(0);
        self.present.push(false);
        self.fresh.push(s);
        s
    }

    /// Merges the series added by this read into `order`.
    fn order_fresh(&mut self, labels: &[crate::config::Label], histogram: bool) {
        let by = name_order(labels, histogram);
        let series = &self.series;
        fn value(v: Option<&Arc<[u8]>>, l: usize) -> &[u8] {
            v.and_then(|v| parts(v).nth(l)).unwrap_or(&[])
        }
        let cmp = |a: &u32, b: &u32| -> Ordering {
            let (x, y) = (series.get(*a as usize), series.get(*b as usize));
            by.iter().map(|&l| value(x, l).cmp(value(y, l))).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
        };
        let mut fresh = std::mem::take(&mut self.fresh);
        fresh.sort_unstable_by(cmp);
        let old = std::mem::take(&mut self.order);
        let mut order = Vec::with_capacity(old.len() + fresh.len());
        let (mut i, mut j) = (0, 0);
        while let (Some(a), Some(b)) = (old.get(i), fresh.get(j)) {
            if cmp(b, a) == Ordering::Less {
                order.push(*b);
                j += 1;
            } else {
                order.push(*a);
                i += 1;
            }
        }
        order.extend_from_slice(old.get(i..).unwrap_or(&[]));
        order.extend_from_slice(fresh.get(j..).unwrap_or(&[]));
        self.order = order;
        fresh.clear();
        self.fresh = fresh;
    }

    /// Drops the series no kept key maps to, renumbering the rest (order kept). Whether any was.
    fn drop_unused(&mut self) -> bool {
        let mut used = vec![false; self.series.len()];
        for (o, _) in self.keys.values() {
            if let Outcome::Series(s) = o {
                if let Some(u) = used.get_mut(*s as usize) {
                    *u = true;
                }
            }
        }
        if used.iter().all(|&u| u) {
            return false;
        }
        let mut new_index = vec![u32::MAX; self.series.len()];
        let mut next = 0u32;
        for (s, &u) in used.iter().enumerate() {
            if u {
                new_index[s] = next;
                next += 1;
            }
        }
        let map = |s: &mut u32| *s = new_index.get(*s as usize).copied().unwrap_or(u32::MAX);
        let keep = |s: usize| used.get(s).copied().unwrap_or(false);
        let mut k = 0;
        self.series.retain(|_| {
            k += 1;
            keep(k - 1)
        });
        let mut k = 0;
        self.sums.retain(|_| {
            k += 1;
            keep(k - 1)
        });
        let mut k = 0;
        self.present.retain(|_| {
            k += 1;
            keep(k - 1)
        });
        self.order.retain(|&s| keep(s as usize));
        self.order.iter_mut().for_each(map);
        self.intern.retain(|_, s| keep(*s as usize));
        self.intern.values_mut().for_each(map);
        for (o, _) in self.keys.values_mut() {
            if let Outcome::Series(s) = o {
                map(s);
            }
        }
        for o in &mut self.prev {
            if let Outcome::Series(s) = o {
                map(s);
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
            let s = s as usize;
            if let (Some(true), Some(labels), Some(&sum)) = (self.present.get(s), self.series.get(s), self.sums.get(s))
            {
                out.push((parts(labels).map(|l| String::from_utf8_lossy(l).into_owned()).collect(), sum));
            }
        }
        out
    }
}

/// The label values of a series: each is kept after its length (4 bytes, little-endian), all in
/// one allocation.
fn parts(labels: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = labels;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<4>()?;
        let n = u32::from_le_bytes(*len) as usize;
        let value = tail.get(..n)?;
        rest = tail.get(n..)?;
        Some(value)
    })
}
