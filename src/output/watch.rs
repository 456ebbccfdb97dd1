//! `--watch`: a top-like live table, redrawn in place each interval on the terminal's alternate
//! screen. The terminal is restored on every way out: normal end, error, Ctrl-C (also the
//! second one, which exits at once) and panic.
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::model::{MetricValues, Snapshot};
use crate::render::{render, Format, Options};

/// Set while the alternate screen is active, so that exit paths know to restore it.
static ACTIVE: AtomicBool = AtomicBool::new(false);

const ENTER: &str = "\x1b[?1049h\x1b[?25l";
const LEAVE: &str = "\x1b[?25h\x1b[?1049l";
const HOME_CLEAR: &str = "\x1b[H\x1b[2J";

/// Restores the terminal if the live view is on; safe to call from any exit path, repeatedly.
pub fn restore_terminal() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout();
        let _ = out.write_all(LEAVE.as_bytes());
        let _ = out.flush();
    }
}

/// Holds the alternate screen; dropping it restores the terminal.
pub struct Screen(());

impl Screen {
    /// Switches to the alternate screen and installs a panic hook that restores it first.
    pub fn enter() -> Screen {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
        let mut out = std::io::stdout();
        let _ = out.write_all(ENTER.as_bytes());
        let _ = out.flush();
        ACTIVE.store(true, Ordering::SeqCst);
        Screen(())
    }

    /// Redraws the whole screen with one frame.
    pub fn draw(&self, frame: &str) {
        let mut out = std::io::stdout().lock();
        let mut text = String::with_capacity(frame.len() + 16);
        text.push_str(HOME_CLEAR);
        // Raw terminals need CR LF; the alternate screen is in cooked mode, but be explicit.
        text.push_str(&frame.replace('\n', "\r\n"));
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Terminal size (rows, columns) of stdout, if it is a terminal.
pub fn terminal_size() -> Option<(usize, usize)> {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it for a terminal fd and fails otherwise.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and pointer to a winsize for the duration of the call.
    let rc = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) };
    if rc != 0 || ws.ws_row == 0 {
        return None;
    }
    Some((ws.ws_row as usize, ws.ws_col as usize))
}

/// One frame: a header line, each metric's table (sorted, largest first) with a total line,
/// cut to `rows` lines with a note saying how many were left out.
pub fn frame(header: &str, snapshot: &Snapshot, rows: usize, cols: usize, opts: &Options) -> String {
    let mut lines: Vec<String> = vec![header.to_string()];
    // Under the header, so that a short terminal never cuts it off.
    lines.extend(snapshot.full_maps().iter().map(|f| format!("note: {}", f.note())));
    lines.push(String::new());
    for metric in &snapshot.metrics {
        let single = Snapshot { metrics: vec![metric.clone()], self_metrics: Vec::new(), ..snapshot.clone() };
        let table = render(Format::Table, &single, opts);
        lines.extend(table.lines().map(str::to_string));
        match &metric.values {
            MetricValues::Counter(s) | MetricValues::Gauge(s) => {
                let total: f64 = s.iter().map(|x| x.value).sum();
                lines.push(format!("total {} over {} label sets", crate::render::plain_number(total), s.len()));
            }
            MetricValues::Histogram(h) => {
                let total: u64 = h.series.iter().map(|x| x.count).sum();
                lines.push(format!("total {total} observations over {} label sets", h.series.len()));
            }
        }
        lines.push(String::new());
    }
    if snapshot.metrics.is_empty() {
        lines.push("(no events in this interval)".to_string());
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let rows = rows.max(3);
    if lines.len() > rows {
        let hidden = lines.len() - (rows - 1);
        lines.truncate(rows - 1);
        lines.push(format!("… {hidden} more lines (enlarge the terminal to see them)"));
    }
    lines
        .into_iter()
        .map(|l| if l.chars().count() > cols { l.chars().take(cols).collect() } else { l })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Metric, Sample, Window};
    use std::time::{Duration, UNIX_EPOCH};

    fn snap(n: usize) -> Snapshot {
        Snapshot {
            window: Window { start: UNIX_EPOCH, end: UNIX_EPOCH, length: Duration::from_secs(1) },
            metrics: vec![Metric {
                config: "c".into(),
                name: "calls_total".into(),
                help: "calls".into(),
                label_names: vec!["name".into()],
                values: MetricValues::Counter(
                    (0..n).map(|i| Sample { labels: vec![format!("f{i}")], value: i as f64 }).collect(),
                ),
            }],
            decoder_errors: vec![],
            warnings: vec![],
            self_metrics: vec![],
        }
    }

    #[test]
    fn frame_is_sorted_totalled_and_fits_the_terminal() {
        let f = frame("hdr", &snap(5), 40, 200, &Options::default());
        assert!(f.starts_with("hdr\n"));
        assert!(f.contains("total 10 over 5 label sets"), "{f}");
        let f4 = f.find("| f4").expect("f4 row");
        let f0 = f.find("| f0").expect("f0 row");
        assert!(f4 < f0, "largest first:\n{f}");
        let small = frame("hdr", &snap(100), 10, 200, &Options::default());
        assert_eq!(small.lines().count(), 10);
        assert!(small.lines().last().is_some_and(|l| l.contains("more lines")), "{small}");
        let mut full = snap(100);
        full.note_full_map("c", "calls_total", 100);
        let f = frame("hdr", &full, 10, 300, &Options::default());
        assert!(f.lines().nth(1).is_some_and(|l| l.starts_with("note: map calls_total of config c")), "{f}");
        let narrow = frame("a very long header line", &snap(1), 10, 5, &Options::default());
        assert!(narrow.lines().all(|l| l.chars().count() <= 5));
    }
}
