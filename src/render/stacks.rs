//! Stack metrics: the rule the `folded` and `flamegraph` formats, the table's top-functions
//! view and `hist`'s top-stacks view share.
//!
//! A **stack metric** is a counter with a label named `kstack` or `ustack` (or both). Their
//! values are frames joined by `\n`, leaf first, as the `kstack` and `ustack` decoders write
//! them; `??` marks a frame that could not be symbolized. A label named `comm` (the command
//! name) becomes the root frame. Other labels (`pid`, `cpu`, ...) are not part of a stack:
//! samples that differ only in them are summed.
//!
//! One stack, root first: `comm`, the user frames, then the kernel frames (the kernel runs on
//! behalf of the user code that called it), as bcc's `profile -f` and Brendan Gregg's
//! stackcollapse scripts print them. Frames are made safe for the folded format: `;` becomes
//! `:` and control characters (the TAB before a kernel module name) become spaces.
use std::collections::BTreeMap;

use crate::model::{Metric, MetricValues, Snapshot};

/// The text of a frame that could not be symbolized (`kstack`, `ustack`).
pub(super) const UNKNOWN: &str = "??";

/// Whether a counter with these label names is a stack metric.
pub fn has_stack_labels(label_names: &[String]) -> bool {
    label_names.iter().any(|n| n == "kstack" || n == "ustack")
}

/// The stack metrics of `snapshot`, in snapshot order.
pub(super) fn stack_metrics(snapshot: &Snapshot) -> Vec<&Metric> {
    snapshot.metrics.iter().filter(|m| is_stack_metric(m)).collect()
}

pub(super) fn is_stack_metric(metric: &Metric) -> bool {
    matches!(metric.values, MetricValues::Counter(_)) && has_stack_labels(&metric.label_names)
}

/// One sample's stack split into its parts, frames leaf first.
pub(super) struct Stack<'a> {
    pub comm: Option<&'a str>,
    pub user: Vec<&'a str>,
    pub kernel: Vec<&'a str>,
}

impl Stack<'_> {
    /// The innermost frame: the kernel's when the sample was taken in the kernel.
    pub(super) fn leaf(&self) -> Option<&str> {
        self.kernel.first().or(self.user.first()).copied()
    }

    /// Every frame, root first (`comm` excluded).
    pub(super) fn frames_root_first(&self) -> impl Iterator<Item = &str> {
        self.user.iter().rev().chain(self.kernel.iter().rev()).copied()
    }
}

fn split_frames(value: &str) -> Vec<&str> {
    value.split('\n').filter(|f| !f.is_empty()).collect()
}

/// The stacks of a stack metric's samples with their values (other metrics: none).
pub(super) fn samples(metric: &Metric) -> Vec<(Stack<'_>, f64)> {
    let MetricValues::Counter(samples) = &metric.values else {
        return Vec::new();
    };
    let index = |name: &str| metric.label_names.iter().position(|n| n == name);
    let (comm, user, kernel) = (index("comm"), index("ustack"), index("kstack"));
    samples
        .iter()
        .map(|s| {
            let label = |i: Option<usize>| i.and_then(|i| s.labels.get(i));
            let stack = Stack {
                comm: label(comm),
                user: label(user).map(split_frames).unwrap_or_default(),
                kernel: label(kernel).map(split_frames).unwrap_or_default(),
            };
            (stack, s.value)
        })
        .collect()
}

/// A frame made safe for a folded line.
pub(super) fn clean_frame(frame: &str) -> String {
    frame
        .chars()
        .map(|c| {
            if c == ';' {
                ':'
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Folded stacks of the snapshot's stack metrics: `(stack, count)` sorted by stack, equal
/// stacks summed, zero counts and empty stacks left out. With more than one stack metric,
/// each stack starts with its metric's name so that they stay apart.
pub(super) fn folded(snapshot: &Snapshot) -> Vec<(String, u64)> {
    let metrics = stack_metrics(snapshot);
    let prefix_metric = metrics.len() > 1;
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for metric in metrics {
        for (stack, value) in samples(metric) {
            let count = if value.is_finite() && value > 0.0 { value.round() as u64 } else { 0 };
            if count == 0 {
                continue;
            }
            let mut frames: Vec<String> = Vec::new();
            if prefix_metric {
                frames.push(clean_frame(&metric.name));
            }
            if let Some(comm) = stack.comm.filter(|c| !c.is_empty()) {
                frames.push(clean_frame(comm));
            }
            frames.extend(stack.frames_root_first().map(clean_frame));
            if frames.is_empty() {
                continue;
            }
            let total = out.entry(frames.join(";")).or_insert(0);
            *total = total.saturating_add(count);
        }
    }
    out.into_iter().collect()
}

/// One distinct stack of a stack metric: the `comm` label and the frames, leaf first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct StackKey {
    pub comm: String,
    pub kernel: Vec<String>,
    pub user: Vec<String>,
}

/// The distinct stacks of one stack metric, for `hist`'s top-stacks view.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct StackCounts {
    /// Every sample of the metric, with or without frames.
    pub samples: u64,
    /// `(stack, samples)`, most samples first (ties: by stack). Samples that differ only in
    /// labels that are not part of a stack (`pid`, `cpu`) are summed; zero counts left out.
    pub stacks: Vec<(StackKey, u64)>,
}

pub(super) fn stack_counts(metric: &Metric) -> StackCounts {
    let mut total = 0u64;
    let mut by_stack: BTreeMap<StackKey, u64> = BTreeMap::new();
    for (stack, value) in samples(metric) {
        let count = if value.is_finite() && value > 0.0 { value.round() as u64 } else { 0 };
        if count == 0 {
            continue;
        }
        total = total.saturating_add(count);
        let key = StackKey {
            comm: stack.comm.unwrap_or_default().to_string(),
            kernel: stack.kernel.iter().map(|f| f.to_string()).collect(),
            user: stack.user.iter().map(|f| f.to_string()).collect(),
        };
        let e = by_stack.entry(key).or_insert(0);
        *e = e.saturating_add(count);
    }
    let mut stacks: Vec<(StackKey, u64)> = by_stack.into_iter().collect();
    stacks.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    StackCounts { samples: total, stacks }
}

/// Samples per function of one stack metric, for the table's top-functions view.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FunctionCounts {
    /// Every sample of the metric, with or without frames.
    pub samples: u64,
    /// `(function, self, total)`, largest self first (ties: larger total, then name); `self`
    /// counts samples with the function as leaf, `total` samples with it anywhere on the stack
    /// (once per stack, however deep the recursion). Unknown frames (`??`) are one entry whose
    /// total is its self count.
    pub functions: Vec<(String, u64, u64)>,
}

pub(super) fn function_counts(metric: &Metric) -> FunctionCounts {
    let mut samples = 0u64;
    let mut by_name: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (stack, value) in self::samples(metric) {
        let count = if value.is_finite() && value > 0.0 { value.round() as u64 } else { 0 };
        samples = samples.saturating_add(count);
        if count == 0 {
            continue;
        }
        if let Some(leaf) = stack.leaf() {
            let e = by_name.entry(clean_frame(leaf)).or_default();
            e.0 = e.0.saturating_add(count);
        }
        // An unknown frame says nothing about its callers: `??` counts only as a leaf.
        let mut seen: Vec<String> = stack.frames_root_first().filter(|f| *f != UNKNOWN).map(clean_frame).collect();
        seen.sort_unstable();
        seen.dedup();
        for name in seen {
            let e = by_name.entry(name).or_default();
            e.1 = e.1.saturating_add(count);
        }
    }
    let mut functions: Vec<(String, u64, u64)> =
        by_name.into_iter().map(|(n, (s, t))| if n == UNKNOWN { (n, s, s) } else { (n, s, t) }).collect();
    functions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.2.cmp(&a.2)).then_with(|| a.0.cmp(&b.0)));
    FunctionCounts { samples, functions }
}

/// A profile-like metric for the renderers' tests.
#[cfg(test)]
pub(super) fn profile_metric() -> Metric {
    let s = |comm: &str, k: &str, u: &str, v: f64| crate::model::Sample {
        labels: vec![comm.into(), "42".into(), k.into(), u.into()],
        value: v,
    };
    Metric {
        config: "profile".into(),
        name: "cpu_samples_total".into(),
        help: "On-CPU samples".into(),
        label_names: vec!["comm".into(), "pid".into(), "kstack".into(), "ustack".into()],
        values: MetricValues::Counter(
            vec![
                s("burner", "", "inner\nouter\nmain", 30.0),
                s("burner", "", "inner\nouter\nmain", 5.0), // another pid in real life: summed
                s("burner", "do_syscall_64\nentry_SYSCALL_64", "write;x\nouter\nmain", 4.0),
                s("kworker/0:1", "commit_timeout\t[jbd2]\nworker_thread", "", 1.0),
                s("idle", "", "", 2.0),
                s("none", "", "", 0.0),
            ]
            .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Sample;

    #[test]
    fn leaf_is_the_kernel_frame_when_there_is_one() {
        let m = profile_metric();
        let stacks = samples(&m);
        assert_eq!(stacks[2].0.leaf(), Some("do_syscall_64"));
        assert_eq!(stacks[0].0.leaf(), Some("inner"));
        assert_eq!(stacks[4].0.leaf(), None);
        let root_first: Vec<&str> = stacks[2].0.frames_root_first().collect();
        assert_eq!(root_first, ["main", "outer", "write;x", "entry_SYSCALL_64", "do_syscall_64"]);
    }

    #[test]
    fn function_counts_self_and_total() {
        let c = function_counts(&profile_metric());
        assert_eq!(c.samples, 42);
        assert_eq!(c.functions[0], ("inner".to_string(), 35, 35));
        assert_eq!(c.functions[1], ("do_syscall_64".to_string(), 4, 4));
        assert!(c.functions.contains(&("main".to_string(), 0, 39)));
        assert!(c.functions.contains(&("commit_timeout [jbd2]".to_string(), 1, 1)));
        assert!(c.functions.contains(&("write:x".to_string(), 0, 4)));
    }

    #[test]
    fn unknown_frames_count_only_as_leaves() {
        let mut m = profile_metric();
        m.values = MetricValues::Counter(
            vec![
                Sample { labels: vec!["a".into(), "1".into(), "".into(), "??\n??\nmain".into()], value: 3.0 },
                Sample { labels: vec!["a".into(), "1".into(), "".into(), "f\n??\nmain".into()], value: 2.0 },
            ]
            .into(),
        );
        let c = function_counts(&m);
        assert_eq!(c.functions[0], ("??".to_string(), 3, 3));
        assert!(c.functions.contains(&("f".to_string(), 2, 2)));
        assert!(c.functions.contains(&("main".to_string(), 0, 5)));
    }

    #[test]
    fn stack_counts_sum_equal_stacks() {
        let c = stack_counts(&profile_metric());
        assert_eq!(c.samples, 42);
        assert_eq!(c.stacks.len(), 4);
        let (top, n) = &c.stacks[0];
        assert_eq!(*n, 35);
        assert_eq!((top.comm.as_str(), top.kernel.len()), ("burner", 0));
        assert_eq!(top.user, ["inner", "outer", "main"]);
        assert_eq!(c.stacks[1].1, 4);
        assert_eq!(c.stacks[1].0.kernel, ["do_syscall_64", "entry_SYSCALL_64"]);
        assert_eq!(c.stacks[2], (StackKey { comm: "idle".into(), kernel: vec![], user: vec![] }, 2));
    }

    #[test]
    fn stack_rule() {
        assert!(has_stack_labels(&["comm".into(), "kstack".into()]));
        assert!(has_stack_labels(&["ustack".into()]));
        assert!(!has_stack_labels(&["comm".into(), "stack".into()]));
    }
}
