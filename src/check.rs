//! `ebpfx check`: a config against its object, without attaching (optionally attaching and
//! detaching each program). Every problem is listed, not just the first.
use std::fmt::Write as _;

use libbpf_rs::btf::types::{MemberAttr, Struct};
use libbpf_rs::btf::{Btf, BtfType, HasSize};
use libbpf_rs::{AsRawLibbpf, OpenObject};

use crate::catalog::Resolved;
use crate::config::MetricKind;
use crate::loader::{self, map_memory, LoadOptions, MapDesc};

/// One member of a map's key struct, from the object's BTF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMember {
    pub name: String,
    pub offset: usize,
    pub size: usize,
}

/// The key layout the object declares for a map, when its BTF says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    pub type_name: String,
    pub size: usize,
    /// Empty for a scalar key.
    pub members: Vec<KeyMember>,
}

/// Result of checking one config.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

/// Problems of the config's labels against a BTF key layout: every label must start at a member
/// and end between that member's end and the next member's start.
pub fn layout_problems(labels: &[crate::config::Label], layout: &KeyLayout) -> Vec<String> {
    if layout.members.is_empty() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    let mut offset = 0usize;
    for label in labels {
        // A kernel-side label that is off (targets/tasks.rs): its bytes are zero and never shown.
        if label.name == crate::config::HIDDEN_LABEL {
            offset += label.size + label.padding;
            continue;
        }
        let member_idx = layout.members.iter().position(|m| m.offset == offset);
        match member_idx {
            None => problems.push(format!(
                "label {:?} starts at byte {offset}, where no member of {} starts",
                label.name, layout.type_name
            )),
            Some(i) => {
                let m = &layout.members[i];
                let next = layout.members.get(i + 1).map(|n| n.offset).unwrap_or(layout.size);
                let end = offset + label.size;
                if end < m.offset + m.size {
                    problems.push(format!(
                        "label {:?} has size {} but member {} is {} bytes",
                        label.name, label.size, m.name, m.size
                    ));
                } else if end > next {
                    problems.push(format!(
                        "label {:?} (bytes {offset}..{end}) runs into the next member at byte {next}",
                        label.name
                    ));
                }
            }
        }
        offset += label.size + label.padding;
    }
    problems
}

/// The struct layout, printed next to the labels when they disagree.
pub fn describe(labels: &[crate::config::Label], layout: &KeyLayout) -> String {
    let mut s = format!("    key {} ({} bytes):\n", layout.type_name, layout.size);
    for m in &layout.members {
        let _ = writeln!(s, "      {:>3}..{:<3} {} ({} bytes)", m.offset, m.offset + m.size, m.name, m.size);
    }
    s.push_str("    labels:\n");
    let mut off = 0;
    for l in labels {
        let _ =
            writeln!(s, "      {:>3}..{:<3} {} (size {}, padding {})", off, off + l.size, l.name, l.size, l.padding);
        off += l.size + l.padding;
    }
    s
}

fn key_layout(btf: &Btf<'_>, type_id: u32) -> Option<KeyLayout> {
    if type_id == 0 {
        return None;
    }
    let ty: BtfType<'_> = btf.type_by_id(type_id.into())?;
    let ty = ty.skip_mods_and_typedefs();
    let raw = btf.as_libbpf_object().as_ptr();
    // SAFETY: `raw` is the live BTF of the open object; the id came from that BTF.
    let size = unsafe { libbpf_sys::btf__resolve_size(raw, ty.type_id().into()) };
    if size < 0 {
        return None;
    }
    let type_name = ty.name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "(anonymous)".into());
    let mut members = Vec::new();
    if let Ok(st) = Struct::try_from(ty) {
        for m in st.iter() {
            let bit_offset = match m.attr {
                MemberAttr::Normal { offset } => offset,
                MemberAttr::BitField { offset, .. } => offset,
            };
            // SAFETY: as above; member type ids come from the same BTF.
            let msize = unsafe { libbpf_sys::btf__resolve_size(raw, m.ty.into()) };
            members.push(KeyMember {
                name: m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                offset: (bit_offset / 8) as usize,
                size: msize.max(0) as usize,
            });
        }
    }
    Some(KeyLayout {
        type_name: format!("struct {type_name}").replace("struct (anonymous)", "(anonymous struct)"),
        size: size as usize,
        members,
    })
}

/// Key layouts of the object's maps, by map name.
fn layouts(open: &OpenObject) -> Vec<(String, KeyLayout)> {
    // SAFETY: the object outlives `btf`, which only borrows it for this function.
    let obj = unsafe { open.as_libbpf_object().as_ref() };
    let Ok(Some(btf)) = Btf::from_bpf_object(obj) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for map in open.maps() {
        let ptr = map.as_libbpf_object().as_ptr();
        // SAFETY: `ptr` is a live map of the open object.
        let key_id = unsafe { libbpf_sys::bpf_map__btf_key_type_id(ptr) };
        if let Some(l) = key_layout(&btf, key_id) {
            out.push((map.name().to_string_lossy().into_owned(), l));
        }
    }
    out
}

/// The record struct of an `events:` entry, nested structs flattened and `_pad` members kept
/// (a field's padding covers them): by the `record` name, else the pointee of the object's
/// `events_record` global.
fn record_layout(open: &OpenObject, record: Option<&str>) -> Result<KeyLayout, String> {
    // SAFETY: the object outlives `btf`, which only borrows it for this function.
    let obj = unsafe { open.as_libbpf_object().as_ref() };
    let btf = match Btf::from_bpf_object(obj) {
        Ok(Some(b)) => b,
        _ => return Err("the object has no BTF to check the record against".into()),
    };
    let st: Struct<'_> = match record {
        Some(name) => btf
            .type_by_name::<Struct<'_>>(name)
            .ok_or_else(|| format!("record: the object's BTF has no struct {name:?}"))?,
        None => {
            let var = btf.type_by_name::<libbpf_rs::btf::types::Var<'_>>("events_record").ok_or_else(|| {
                "record is not set and the object has no `events_record` global naming its record type".to_string()
            })?;
            let mut ty: Option<BtfType<'_>> = Some(*var);
            let mut found = None;
            for _ in 0..16 {
                let Some(t) = ty else { break };
                if let Ok(s) = Struct::try_from(t) {
                    found = Some(s);
                    break;
                }
                ty = t.next_type();
            }
            found.ok_or_else(|| "global events_record does not point to a struct".to_string())?
        }
    };
    let raw = btf.as_libbpf_object().as_ptr();
    let mut members = Vec::new();
    flatten(&btf, raw, &st, 0, &mut members);
    let type_name = st.name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "(anonymous)".into());
    Ok(KeyLayout { type_name: format!("struct {type_name}"), size: st.size(), members })
}

fn flatten(btf: &Btf<'_>, raw: *const libbpf_sys::btf, st: &Struct<'_>, base: usize, out: &mut Vec<KeyMember>) {
    for m in st.iter() {
        let bit_offset = match m.attr {
            MemberAttr::Normal { offset } => offset,
            MemberAttr::BitField { offset, .. } => offset,
        };
        let offset = base + (bit_offset / 8) as usize;
        let inner = btf.type_by_id::<BtfType<'_>>(m.ty).and_then(|t| Struct::try_from(t.skip_mods_and_typedefs()).ok());
        if let Some(inner) = inner {
            flatten(btf, raw, &inner, offset, out);
            continue;
        }
        // SAFETY: `raw` is the live BTF the member's type id came from.
        let size = unsafe { libbpf_sys::btf__resolve_size(raw, m.ty.into()) };
        out.push(KeyMember {
            name: m.name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            offset,
            size: size.max(0) as usize,
        });
    }
}

/// Problems of an event's fields against its record struct, with the layout when they disagree.
fn event_problems(config: &str, ev: &crate::config::EventConfig, open: &OpenObject) -> Vec<String> {
    let layout = match record_layout(open, ev.record.as_deref()) {
        Ok(l) => l,
        Err(e) => return vec![format!("config {config}: events {}: {e}", ev.name)],
    };
    let labels: Vec<crate::config::Label> = ev.fields.iter().map(|f| f.label.clone()).collect();
    let mut problems: Vec<String> =
        layout_problems(&labels, &layout).into_iter().map(|p| p.replacen("label ", "field ", 1)).collect();
    if ev.record_size() != layout.size {
        problems.push(format!(
            "the fields' sizes and paddings add up to {} bytes, {} is {} bytes",
            ev.record_size(),
            layout.type_name,
            layout.size
        ));
    }
    if problems.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "config {config}: events {}: fields do not line up with the record:\n      {}\n{}",
        ev.name,
        problems.join("\n      "),
        describe(&labels, &layout).replace("    key ", "    record ").replace("    labels:", "    fields:").trim_end()
    )]
}

/// Checks one config against its object. With `attach`, also loads, attaches and detaches.
pub fn check(resolved: &Resolved, opts: &LoadOptions, attach: bool) -> Report {
    let mut report = Report::default();
    let config = &resolved.config;
    let open = match loader::open_object(resolved, opts) {
        Ok(o) => o,
        Err(e) => {
            report.problems.push(format!("{e:#}"));
            return report;
        }
    };
    let maps: Vec<MapDesc> = loader::map_descs(&open);
    report.problems.extend(loader::map_problems(config, &maps));
    let memory = map_memory::of_object(&open);
    report.problems.extend(map_memory::problems(&config.name, &memory, map_memory::limit()));
    report.notes.extend(memory.iter().map(map_memory::describe));
    let layouts = layouts(&open);
    for metric in &config.metrics {
        if matches!(metric.kind, MetricKind::Counter { perf_event_array: true }) {
            continue;
        }
        let Some((_, layout)) = layouts.iter().find(|(n, _)| *n == metric.name) else {
            continue;
        };
        let per_cpu_cpu = metric.labels.last().is_some_and(|l| l.name == "cpu")
            && maps.iter().any(|m| m.name == metric.name && loader::is_per_cpu(m.map_type));
        let labels: &[crate::config::Label] =
            if per_cpu_cpu { &metric.labels[..metric.labels.len() - 1] } else { &metric.labels };
        let problems = layout_problems(labels, layout);
        if !problems.is_empty() {
            report.problems.push(format!(
                "config {}: metric {}: labels do not line up with the map's key:\n      {}\n{}",
                config.name,
                metric.name,
                problems.join("\n      "),
                describe(labels, layout).trim_end()
            ));
        }
    }
    // Span records have no named struct to compare with (ebpf_exporter's objects name none).
    for ev in config.events.iter().filter(|e| !e.span) {
        report.problems.extend(event_problems(&config.name, ev, &open));
    }
    if config.tracing_spans > 0 {
        report
            .notes
            .push(format!("{} tracing span(s) parsed; one-shot runs do not collect spans", config.tracing_spans));
    }
    drop(open);
    if attach && report.problems.is_empty() {
        match loader::prepare(resolved, opts).and_then(|p| loader::load(p, opts)) {
            Ok(mut loaded) => {
                for p in &loaded.programs {
                    match &p.problem {
                        None => report.notes.push(format!("program {} ({}) attached", p.name, p.section)),
                        Some(why) => report.problems.push(format!(
                            "config {}: program {} ({}) cannot be used: {why}",
                            config.name, p.name, p.section
                        )),
                    }
                }
                loaded.detach();
            }
            Err(e) => report.problems.push(format!("{e:#}")),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DecoderSpec, Label};

    fn label(name: &str, size: usize, padding: usize) -> Label {
        Label {
            name: name.into(),
            size,
            padding,
            decoders: vec![DecoderSpec { name: "uint".into(), static_map: None, allow_unknown: false, regexps: None }],
        }
    }

    fn bio_key() -> KeyLayout {
        KeyLayout {
            type_name: "struct disk_key".into(),
            size: 16,
            members: vec![
                KeyMember { name: "dev".into(), offset: 0, size: 4 },
                KeyMember { name: "op".into(), offset: 4, size: 1 },
                KeyMember { name: "bucket".into(), offset: 8, size: 8 },
            ],
        }
    }

    #[test]
    fn folded_and_explicit_padding_both_line_up() {
        let k = bio_key();
        assert!(layout_problems(&[label("d", 4, 0), label("op", 4, 0), label("b", 8, 0)], &k).is_empty());
        assert!(layout_problems(&[label("d", 4, 0), label("op", 1, 3), label("b", 8, 0)], &k).is_empty());
    }

    #[test]
    fn misaligned_labels_are_reported_with_the_layout() {
        let k = bio_key();
        let labels = [label("d", 2, 0), label("op", 2, 4), label("b", 8, 0)];
        let p = layout_problems(&labels, &k);
        assert!(p.iter().any(|s| s.contains("member dev is 4 bytes")), "{p:?}");
        assert!(p.iter().any(|s| s.contains("starts at byte 2")), "{p:?}");
        let d = describe(&labels, &k);
        assert!(d.contains("struct disk_key (16 bytes)") && d.contains("op (1 bytes)"), "{d}");
    }
}
