//! `--format flamegraph`: an interactive SVG flame graph (inferno, the Rust port of
//! flamegraph.pl) of the folded stacks (see [`super::folded`]). Colours are derived from the
//! function names, so the same input always gives the same SVG. A snapshot without stack
//! samples gives inferno's one-line SVG saying that there is no input, still a valid document.
use inferno::flamegraph::{self, Options};

use super::stacks;
use crate::model::Snapshot;

pub(crate) fn render(snapshot: &Snapshot) -> String {
    let lines: Vec<String> = stacks::folded(snapshot).into_iter().map(|(s, n)| format!("{s} {n}")).collect();
    let names: Vec<&str> = stacks::stack_metrics(snapshot).iter().map(|m| m.name.as_str()).collect();
    let mut opts = Options::default();
    opts.title = if names.is_empty() { "ebpfx".to_string() } else { format!("ebpfx: {}", names.join(", ")) };
    opts.subtitle = Some(format!("{:.1} s window", snapshot.window.length.as_secs_f64()));
    opts.count_name = "samples".to_string();
    opts.hash = true;
    opts.deterministic = true;
    let mut svg = Vec::new();
    // With no samples inferno still writes its "no valid input" SVG, then returns an error.
    let _ = flamegraph::from_lines(&mut opts, lines.iter().map(String::as_str), &mut svg);
    if svg.is_empty() {
        return EMPTY.to_string();
    }
    let mut text = String::from_utf8_lossy(&svg).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Fallback when inferno wrote nothing at all.
const EMPTY: &str = "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"1200\" height=\"60\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"10\" y=\"30\">no stack samples</text></svg>\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        roxmltree::Document::parse_with_options(svg, opts).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"))
    }

    #[test]
    fn svg_has_the_frames_and_is_deterministic() {
        let s = Snapshot::of(vec![stacks::profile_metric()]);
        let svg = render(&s);
        let doc = parse(&svg);
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let titles: Vec<&str> =
            doc.descendants().filter(|n| n.has_tag_name("title")).filter_map(|n| n.text()).collect();
        assert!(titles.iter().any(|t| t.starts_with("inner (35 samples")), "{titles:?}");
        assert!(svg.starts_with("<?xml"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        for name in ["inner", "outer", "do_syscall_64", "ebpfx: cpu_samples_total", "3.0 s window"] {
            assert!(svg.contains(name), "{name} missing");
        }
        assert_eq!(render(&s), svg);
    }

    #[test]
    fn no_samples_still_an_svg() {
        let svg = render(&Snapshot::of(vec![]));
        parse(&svg);
        assert!(svg.starts_with("<?xml"), "{svg}");
        assert!(svg.contains("No valid input"), "{svg}");
    }
}
