//! Units for terminal formats, derived from the metric name's suffix (Prometheus base units:
//! `_seconds`, `_bytes`) and, for raw BPF values, the histogram's `bucket_multiplier`.

/// What a metric measures, from its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quantity {
    Seconds,
    Bytes,
    Other,
}

impl Quantity {
    pub(crate) fn of(metric_name: &str) -> Quantity {
        let base = metric_name.strip_suffix("_total").unwrap_or(metric_name);
        if base.ends_with("_seconds") {
            Quantity::Seconds
        } else if base.ends_with("_bytes") {
            Quantity::Bytes
        } else {
            Quantity::Other
        }
    }
}

/// The unit time-valued histograms are shown in by `hist` and `table` (`--unit`); bcc prints
/// microseconds. Prometheus and JSON output keep base units (seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeUnit {
    /// nanoseconds (`nsecs`)
    Ns,
    /// microseconds (`usecs`), as bcc prints
    #[default]
    Us,
    /// milliseconds (`msecs`, bcc's -m)
    Ms,
    /// seconds (`secs`)
    S,
}

impl TimeUnit {
    /// Seconds in one of this unit.
    pub fn seconds(self) -> f64 {
        match self {
            TimeUnit::Ns => 1e-9,
            TimeUnit::Us => 1e-6,
            TimeUnit::Ms => 1e-3,
            TimeUnit::S => 1.0,
        }
    }

    /// bcc's name above a histogram: `nsecs`, `usecs`, `msecs`, `secs`.
    pub fn bcc_name(self) -> &'static str {
        match self {
            TimeUnit::Ns => "nsecs",
            TimeUnit::Us => "usecs",
            TimeUnit::Ms => "msecs",
            TimeUnit::S => "secs",
        }
    }

    /// The short suffix of a value: `ns`, `µs`, `ms`, `s`.
    pub fn suffix(self) -> &'static str {
        match self {
            TimeUnit::Ns => "ns",
            TimeUnit::Us => "µs",
            TimeUnit::Ms => "ms",
            TimeUnit::S => "s",
        }
    }
}

/// How a terminal format shows the values of one metric: what it measures and, for time,
/// the unit chosen with `--unit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Measure {
    pub(crate) quantity: Quantity,
    pub(crate) time: TimeUnit,
}

impl From<Quantity> for Measure {
    fn from(quantity: Quantity) -> Measure {
        Measure { quantity, time: TimeUnit::default() }
    }
}

impl Measure {
    /// A value in the metric's base unit, for people: times in the chosen unit (`1200µs`),
    /// the rest as [`human`] shows them.
    pub(crate) fn show(self, v: f64) -> String {
        match self.quantity {
            Quantity::Seconds if v.is_finite() => {
                let x = v / self.time.seconds();
                format!("{}{}", amount(x), self.time.suffix())
            }
            _ => human(self.quantity, v),
        }
    }
}

/// An amount in a fixed unit: whole from 1000 on (`12500`), three significant digits below
/// (`23.5`, `0.0235`), never rounded to a misleading 0.
pub(crate) fn amount(x: f64) -> String {
    if !x.is_finite() {
        return "-".to_string();
    }
    if x.abs() >= 1000.0 {
        format!("{:.0}", denoise(x))
    } else if x.abs() < 1.0 && x != 0.0 {
        let rounded: f64 = format!("{x:.2e}").parse().unwrap_or(x);
        format!("{rounded}")
    } else {
        three_digits(x)
    }
}

/// The unit a histogram's ranges are printed in and the factor from the raw BPF value to it:
/// time histograms in `unit`, others in their raw unit (factor 1).
pub(crate) fn display_unit(metric_name: &str, multiplier: f64, unit: TimeUnit) -> (&'static str, f64) {
    let m = if multiplier != 0.0 { multiplier } else { 1.0 };
    match Quantity::of(metric_name) {
        Quantity::Seconds => {
            let factor = m / unit.seconds();
            (unit.bcc_name(), if close(factor, 1.0) { 1.0 } else { factor })
        }
        _ => (raw_unit_name(metric_name, multiplier), 1.0),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= b.abs() * 1e-9
}

/// The name of the raw unit the BPF program counted in (what `le / multiplier` is measured in),
/// as bcc prints it above a histogram: `usecs`, `nsecs`, `msecs`, `secs`, `bytes`, `kbytes`,
/// or `value` when the name and multiplier say nothing more.
pub(crate) fn raw_unit_name(metric_name: &str, multiplier: f64) -> &'static str {
    match Quantity::of(metric_name) {
        Quantity::Seconds if close(multiplier, 1e-9) => "nsecs",
        Quantity::Seconds if close(multiplier, 1e-6) => "usecs",
        Quantity::Seconds if close(multiplier, 1e-3) => "msecs",
        Quantity::Seconds if close(multiplier, 1.0) => "secs",
        Quantity::Bytes if close(multiplier, 1.0) => "bytes",
        Quantity::Bytes if close(multiplier, 1024.0) => "kbytes",
        _ => "value",
    }
}

/// `v` with the noise of float arithmetic removed (37.749999999999996 → 37.75), so that the
/// same quantity rounds the same way whichever unit it was computed in.
pub(crate) fn denoise(v: f64) -> f64 {
    format!("{v:.11e}").parse().unwrap_or(v)
}

/// `v` rounded to three significant digits, without trailing zeros: `23.5`, `1.2`, `512`.
pub(crate) fn three_digits(v: f64) -> String {
    let v = denoise(v);
    let a = v.abs();
    let s = if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A value in the metric's unit, for people: `23.5µs`, `1.2ms`, `3.4s`, `4 KiB`, `0.0123`.
/// Non-finite values print as `-`.
pub(crate) fn human(quantity: Quantity, v: f64) -> String {
    if !v.is_finite() {
        return "-".to_string();
    }
    match quantity {
        Quantity::Seconds => {
            let a = v.abs();
            if a == 0.0 {
                "0s".to_string()
            } else if a < 1e-6 {
                format!("{}ns", three_digits(v * 1e9))
            } else if a < 1e-3 {
                format!("{}µs", three_digits(v * 1e6))
            } else if a < 1.0 {
                format!("{}ms", three_digits(v * 1e3))
            } else {
                format!("{}s", three_digits(v))
            }
        }
        Quantity::Bytes => {
            const STEPS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
            let mut scaled = v;
            let mut step = 0;
            while scaled.abs() >= 1024.0 && step + 1 < STEPS.len() {
                scaled /= 1024.0;
                step += 1;
            }
            format!("{} {}", three_digits(scaled), STEPS[step])
        }
        Quantity::Other => {
            if v.abs() >= 1000.0 {
                format!("{v:.0}")
            } else {
                // three significant digits, Go-style digits for small values
                let rounded: f64 = format!("{v:.2e}").parse().unwrap_or(v);
                super::number::go_float(rounded)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_from_name() {
        assert_eq!(Quantity::of("bio_latency_seconds"), Quantity::Seconds);
        assert_eq!(Quantity::of("run_time_seconds_total"), Quantity::Seconds);
        assert_eq!(Quantity::of("read_size_bytes"), Quantity::Bytes);
        assert_eq!(Quantity::of("syscalls_total"), Quantity::Other);
    }

    #[test]
    fn raw_units() {
        assert_eq!(raw_unit_name("bio_latency_seconds", 0.000001), "usecs");
        assert_eq!(raw_unit_name("x_seconds", 1e-9), "nsecs");
        assert_eq!(raw_unit_name("x_seconds", 0.001), "msecs");
        assert_eq!(raw_unit_name("x_seconds", 1.0), "secs");
        assert_eq!(raw_unit_name("x_seconds", 0.005), "value");
        assert_eq!(raw_unit_name("x_bytes", 1.0), "bytes");
        assert_eq!(raw_unit_name("x_bytes", 1024.0), "kbytes");
        assert_eq!(raw_unit_name("x", 1.0), "value");
    }

    #[test]
    fn human_seconds() {
        assert_eq!(human(Quantity::Seconds, 0.0000235), "23.5µs");
        assert_eq!(human(Quantity::Seconds, 0.0012), "1.2ms");
        assert_eq!(human(Quantity::Seconds, 3.4), "3.4s");
        assert_eq!(human(Quantity::Seconds, 0.0000005), "500ns");
        assert_eq!(human(Quantity::Seconds, 0.0), "0s");
        assert_eq!(human(Quantity::Seconds, 120.0), "120s");
        assert_eq!(human(Quantity::Seconds, f64::NAN), "-");
        // 20536 µs / 544 computed in seconds is 37.749999…µs: rounds like 37.75
        assert_eq!(human(Quantity::Seconds, 20536.0 * 0.000001 / 544.0), "37.8µs");
    }

    #[test]
    fn fixed_time_units() {
        let us = Measure { quantity: Quantity::Seconds, time: TimeUnit::Us };
        assert_eq!(us.show(0.0012), "1200µs");
        assert_eq!(us.show(0.0000235), "23.5µs");
        assert_eq!(us.show(0.0000000235), "0.0235µs");
        let ms = Measure { quantity: Quantity::Seconds, time: TimeUnit::Ms };
        assert_eq!(ms.show(0.0012), "1.2ms");
        assert_eq!(ms.show(12.5), "12500ms");
        let bytes = Measure { quantity: Quantity::Bytes, time: TimeUnit::Ms };
        assert_eq!(bytes.show(4096.0), "4 KiB");
        assert_eq!(display_unit("x_seconds", 1e-9, TimeUnit::Us).0, "usecs");
        assert!((display_unit("x_seconds", 1e-9, TimeUnit::Us).1 - 0.001).abs() < 1e-12);
        assert_eq!(display_unit("x_seconds", 1e-6, TimeUnit::Us), ("usecs", 1.0));
        assert_eq!(display_unit("x_bytes", 1.0, TimeUnit::Ms), ("bytes", 1.0));
        assert_eq!(display_unit("x", 1.0, TimeUnit::Ms), ("value", 1.0));
    }

    #[test]
    fn human_bytes() {
        assert_eq!(human(Quantity::Bytes, 4096.0), "4 KiB");
        assert_eq!(human(Quantity::Bytes, 512.0), "512 B");
        assert_eq!(human(Quantity::Bytes, 1536.0), "1.5 KiB");
        assert_eq!(human(Quantity::Bytes, 3.0 * 1024.0 * 1024.0), "3 MiB");
    }

    #[test]
    fn human_other() {
        assert_eq!(human(Quantity::Other, 0.012345), "0.0123");
        assert_eq!(human(Quantity::Other, 12.345), "12.3");
        assert_eq!(human(Quantity::Other, 123456.0), "123456");
        assert_eq!(human(Quantity::Other, 7.0), "7");
    }
}
