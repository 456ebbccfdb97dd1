//! Raw maps → one [`Snapshot`]: each config's maps decoded into metrics (a map that fails to
//! decode is dropped and counted), and the maps that reached `max_entries` noted. Used by `run`
//! after each block and by `render` for a saved run.
use crate::config::{Config, MetricConfig, MetricKind};
use crate::decode::Decoders;
use crate::model::{Snapshot, Window};
use crate::raw::RawMap;

/// Decodes every config's raw maps into one snapshot. A metric that fails to decode is dropped
/// (as ebpf_exporter does) and counted as a decoder error of its config, with a warning saying why.
pub fn build_snapshot(configs: &[&Config], maps: &[Vec<RawMap>], window: Window, decoders: &mut Decoders) -> Snapshot {
    let mut snapshot = Snapshot {
        window,
        metrics: Vec::new(),
        decoder_errors: Vec::new(),
        warnings: Vec::new(),
        self_metrics: Vec::new(),
    };
    for (config, raws) in configs.iter().zip(maps) {
        let mut errors = 0u64;
        for (metric, raw) in config.metrics.iter().zip(raws) {
            // perf_event_array tallies arrive as an ordinary map of record bytes -> counts.
            let plain;
            let metric = if let MetricKind::Counter { perf_event_array: true } = metric.kind {
                plain = MetricConfig { kind: MetricKind::Counter { perf_event_array: false }, ..metric.clone() };
                &plain
            } else {
                metric
            };
            match decoders.metric(&config.name, metric, raw) {
                Ok(d) => {
                    // Rows whose keys did not decode are dropped one by one and counted.
                    if let Some(first) = &d.row_errors.first {
                        errors = errors.saturating_add(d.row_errors.rows);
                        snapshot.warnings.push(format!(
                            "config {}: metric {}: {} map entries dropped: {first}",
                            config.name, metric.name, d.row_errors.rows
                        ));
                    }
                    let mut m = d.metric;
                    crate::targets::tasks::drop_hidden_labels(&mut m);
                    snapshot.metrics.push(m);
                }
                Err(e) => {
                    errors += u64::from(e.counts_as_decoder_error());
                    snapshot.warnings.push(format!("{e} (metric dropped from the output)"));
                }
            }
        }
        snapshot.decoder_errors.push((config.name.clone(), errors));
    }
    snapshot.warnings.extend(decoders.warnings());
    snapshot
}

/// Notes in `snapshot` every map of `maps` (full reads, never interval deltas) that holds
/// `max_entries` keys. Call it after the self metrics are set.
pub fn note_full_maps(snapshot: &mut Snapshot, configs: &[&Config], maps: &[Vec<RawMap>]) {
    for (config, raws) in configs.iter().zip(maps) {
        for raw in raws.iter().filter(|r| r.at_capacity()) {
            snapshot.note_full_map(&config.name, &raw.name, raw.max_entries);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Env;
    use crate::render::{self, Format, Options};
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_full_map_is_reported_in_every_format_not_silently_undercounted() {
        let config = Config::parse(
            "c",
            "c.yaml",
            "metrics:\n  counters:\n    - name: x_total\n      help: h\n      labels:\n        - name: id\n          size: 4\n          decoders: [{name: uint}]\n",
        )
        .expect("config");
        let mut raw = RawMap { name: "x_total".into(), key_size: 4, slots: 1, max_entries: 2, ..RawMap::default() };
        raw.push(&1u32.to_ne_bytes(), &[5]);
        raw.push(&2u32.to_ne_bytes(), &[7]);
        let window =
            Window { start: SystemTime::UNIX_EPOCH, end: SystemTime::UNIX_EPOCH, length: Duration::from_secs(1) };
        let maps = [vec![raw.clone()]];
        let mut snap = build_snapshot(&[&config], &maps, window, &mut Decoders::new(Env::system()));
        note_full_maps(&mut snap, &[&config], &maps);
        assert!(snap
            .warnings
            .iter()
            .any(|w| w.contains("map x_total of config c reached its max_entries") && w.contains("lower bounds")));
        assert_eq!(snap.metrics.len(), 1, "the metric is still printed");
        let opts = Options::default();
        let prom = render::render(Format::Prom, &snap, &opts);
        assert!(
            prom.contains("# TYPE ebpfx_map_full gauge\nebpfx_map_full{config=\"c\",map=\"x_total\"} 1\n"),
            "{prom}"
        );
        assert!(render::render(Format::Json, &snap, &opts).contains("reached its max_entries"));
        for f in [Format::Table, Format::Hist] {
            let text = render::render(f, &snap, &opts);
            assert!(text.contains("note: map x_total of config c reached its max_entries"), "{f:?}: {text}");
        }
        let human = crate::output::view::render_for(None, &snap, &opts);
        assert_eq!(human.matches("reached its max_entries").count(), 1, "{human}");
        raw.max_entries = 3;
        let maps = [vec![raw]];
        let mut snap = build_snapshot(&[&config], &maps, window, &mut Decoders::new(Env::system()));
        note_full_maps(&mut snap, &[&config], &maps);
        assert!(snap.warnings.is_empty());
        assert!(!render::render(Format::Prom, &snap, &opts).contains("map_full"));
    }
}
