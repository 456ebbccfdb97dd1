//! Ring buffer records → [`EventRow`]s: each field cut from the record by the config's layout
//! (a variable tail bounded by its length field) and run through its decoder chain, compiled
//! once per stream.
use crate::config::EventConfig;
use crate::decode::{Decoders, FieldChain};
use crate::event_model::{Column, EventRow, EventSchema};

/// Decodes the records of one `events:` entry.
#[derive(Debug)]
pub struct EventDecoder {
    pub config: EventConfig,
    chains: Vec<FieldChain>,
    pub schema: EventSchema,
    /// Bytes a record needs at least: every field before the first variable tail.
    fixed_end: usize,
    /// CLOCK_REALTIME − CLOCK_MONOTONIC in nanoseconds, to turn record times into wall time.
    clock_offset_ns: i128,
    /// Fields whose decoded value is used (printed, a label, or a chain that may drop the
    /// record); the others are left empty, unread.
    needed: Vec<bool>,
}

impl EventDecoder {
    pub fn new(config_name: &str, config: &EventConfig, clock_offset_ns: i128) -> EventDecoder {
        let chains: Vec<FieldChain> = config.fields.iter().map(|f| Decoders::compile_field(&f.label)).collect();
        let visible = |long: bool| {
            config.fields.iter().enumerate().filter(move |(_, f)| !f.hidden && !f.timestamp && f.long() == long)
        };
        let columns = visible(false)
            .chain(visible(true))
            .map(|(i, f)| Column {
                name: f.label.name.clone(),
                field: i,
                width: f.width,
                long: f.long(),
                numeric: chains[i].numeric,
            })
            .collect();
        let schema = EventSchema {
            config: config_name.to_string(),
            stream: config.name.clone(),
            columns,
            labels: config.labels.iter().map(|&i| (i, config.fields[i].label.name.clone())).collect(),
            span: config.span,
        };
        let fixed_end = config
            .fields
            .iter()
            .take_while(|f| f.length.is_none())
            .map(|f| f.offset + f.label.size + f.label.padding)
            .max()
            .unwrap_or(0);
        let mut d =
            EventDecoder { config: config.clone(), chains, schema, fixed_end, clock_offset_ns, needed: Vec::new() };
        d.decode_for(true);
        d
    }

    /// Decodes what lines need (`lines`: printed fields and labels) or only what counts need
    /// (labels). Fields whose chain can drop a record (`regexp`) are always decoded.
    pub fn decode_for(&mut self, lines: bool) {
        let printed: Vec<usize> = self.schema.columns.iter().map(|c| c.field).collect();
        self.needed = self
            .config
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (lines && printed.contains(&i))
                    || self.config.labels.contains(&i)
                    || f.label.decoders.iter().any(|d| d.name == "regexp")
            })
            .collect();
    }

    /// Decodes one record. `Ok(None)`: a decoder asked to skip it.
    pub fn decode(&self, decoders: &mut Decoders, bytes: &[u8]) -> Result<Option<EventRow>, String> {
        let mut row = EventRow { time_ns: None, values: Vec::new(), latency: None };
        let mut scratch = Vec::new();
        Ok(self.decode_into(decoders, bytes, &mut row, &mut scratch)?.then_some(row))
    }

    /// [`EventDecoder::decode`] into `row`, reusing its strings (no allocation per record once
    /// they have grown). `Ok(false)`: a decoder asked to skip the record.
    pub fn decode_into(
        &self,
        decoders: &mut Decoders,
        bytes: &[u8],
        row: &mut EventRow,
        out: &mut Vec<u8>,
    ) -> Result<bool, String> {
        if bytes.len() < self.fixed_end {
            return Err(format!(
                "a record of {} bytes is shorter than the {} bytes its fields need",
                bytes.len(),
                self.fixed_end
            ));
        }
        row.values.resize_with(self.config.fields.len(), String::new);
        row.time_ns = None;
        for (i, f) in self.config.fields.iter().enumerate() {
            let start = f.offset;
            let end = match f.length {
                None => start + f.label.size,
                Some(j) => {
                    let lf = &self.config.fields[j];
                    let used = uint_at(bytes, lf.offset, lf.label.size).ok_or("a length field is cut")?;
                    if used > f.label.size as u64 {
                        return Err(format!(
                            "field {}: length {used} (from field {}) exceeds its {} bytes",
                            f.label.name, lf.label.name, f.label.size
                        ));
                    }
                    start + used as usize
                }
            };
            let field = bytes.get(start..end).ok_or_else(|| {
                format!("field {}: bytes {start}..{end} lie beyond the {}-byte record", f.label.name, bytes.len())
            })?;
            if f.timestamp {
                let mono = uint_at(bytes, start, 8).unwrap_or(0);
                let wall = i128::from(mono) + self.clock_offset_ns;
                row.time_ns = u64::try_from(wall).ok();
            }
            let value = &mut row.values[i];
            value.clear();
            if !self.needed.get(i).copied().unwrap_or(true) {
                continue;
            }
            out.clear();
            match decoders.decode_field(&self.chains[i], field, out) {
                Ok(true) => {}
                Ok(false) => return Ok(false),
                Err(e) => return Err(e.0),
            }
            // decode_field escaped invalid UTF-8: the lossy conversion changes nothing.
            value.push_str(&String::from_utf8_lossy(out));
        }
        row.latency = self.config.latency.as_ref().and_then(|l| {
            let f = &self.config.fields[l.field];
            uint_at(bytes, f.offset, f.label.size)
        });
        Ok(true)
    }
}

/// A host-order unsigned integer of 1, 2, 4 or 8 bytes at `off`.
fn uint_at(bytes: &[u8], off: usize, size: usize) -> Option<u64> {
    let b = bytes.get(off..off.checked_add(size)?)?;
    Some(match size {
        1 => u64::from(b[0]),
        2 => u64::from(u16::from_ne_bytes(b.try_into().ok()?)),
        4 => u64::from(u32::from_ne_bytes(b.try_into().ok()?)),
        8 => u64::from_ne_bytes(b.try_into().ok()?),
        _ => return None,
    })
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC now, in nanoseconds (BPF's `bpf_ktime_get_ns` is monotonic).
pub fn clock_offset_ns() -> i128 {
    let read = |clock: libc::clockid_t| {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
    };
    let mono = read(libc::CLOCK_MONOTONIC);
    let real = read(libc::CLOCK_REALTIME);
    real - mono
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const YAML: &str = r#"
events:
  - name: opens
    ring_buffer: events
    fields:
      - {name: time, size: 8, role: timestamp, decoders: [{name: uint}]}
      - {name: pid, size: 4, decoders: [{name: uint}]}
      - {name: ret, size: 4, decoders: [{name: result}]}
      - {name: path_len, size: 4, hidden: true, padding: 4, decoders: [{name: uint}]}
      - {name: path, size: 16, length: path_len, decoders: [{name: string}]}
      - {name: comm, size: 8, decoders: [{name: string}]}
    labels: [ret]
    latency: {field: pid}
"#;

    fn record(pid: u32, ret: i32, path: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&1_000u64.to_ne_bytes());
        b.extend_from_slice(&pid.to_ne_bytes());
        b.extend_from_slice(&ret.to_ne_bytes());
        b.extend_from_slice(&(path.len() as u32).to_ne_bytes());
        b.extend_from_slice(&[0; 4]);
        let mut p = path.to_vec();
        p.resize(16, b'Z');
        b.extend_from_slice(&p);
        b.extend_from_slice(b"cat\0\0\0\0\0");
        b
    }

    #[test]
    fn fields_decode_with_tails_bounded_by_their_length() {
        let c = Config::parse("o", "o.yaml", YAML).expect("config");
        let d = EventDecoder::new("o", &c.events[0], 5_000);
        let names: Vec<&str> = d.schema.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["pid", "ret", "comm", "path"]);
        let mut decoders = Decoders::new(crate::decode::Env::system());
        let row = d.decode(&mut decoders, &record(42, -2, b"/x\0")).expect("ok").expect("kept");
        assert_eq!(row.values, ["", "42", "ENOENT", "", "/x", "cat"]);
        assert_eq!((row.time_ns, row.latency), (Some(6_000), Some(42)));
        let mut bad = record(1, 0, b"/x");
        bad[16..20].copy_from_slice(&99u32.to_ne_bytes());
        assert!(d.decode(&mut decoders, &bad).expect_err("too long").contains("length 99"));
        assert!(d.decode(&mut decoders, &bad[..10]).expect_err("short").contains("shorter"));
    }
}
