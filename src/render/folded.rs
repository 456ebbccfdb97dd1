//! `--format folded`: one line per distinct stack, `comm;user frames;kernel frames count`,
//! root first, sorted by stack (the output of Brendan Gregg's stackcollapse scripts and bcc's
//! `profile -f`: input for `flamegraph.pl`, inferno-flamegraph, speedscope). Only stack metrics
//! are printed (see [`super::stacks`]); a snapshot without stack samples prints nothing.
use super::stacks;
use crate::model::Snapshot;

pub(crate) fn render(snapshot: &Snapshot) -> String {
    let mut out = String::new();
    for (stack, count) in stacks::folded(snapshot) {
        out.push_str(&stack);
        out.push(' ');
        out.push_str(&count.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Metric, MetricValues, Sample};

    fn syscalls() -> Metric {
        Metric {
            config: "syscalls".into(),
            name: "syscalls_total".into(),
            help: "Syscalls".into(),
            label_names: vec!["syscall".into()],
            values: MetricValues::Counter(vec![Sample { labels: vec!["read".into()], value: 7.0 }].into()),
        }
    }

    #[test]
    fn folded_lines_root_first_summed_and_sorted() {
        let out = render(&Snapshot::of(vec![syscalls(), stacks::profile_metric()]));
        let want = "\
burner;main;outer;inner 35
burner;main;outer;write:x;entry_SYSCALL_64;do_syscall_64 4
idle 2
kworker/0:1;worker_thread;commit_timeout [jbd2] 1
";
        assert_eq!(out, want);
    }

    #[test]
    fn two_stack_metrics_are_kept_apart_by_name() {
        let mut other = stacks::profile_metric();
        other.name = "offcpu_total".into();
        let out = render(&Snapshot::of(vec![stacks::profile_metric(), other]));
        assert!(out.contains("cpu_samples_total;burner;main;outer;inner 35\n"), "{out}");
        assert!(out.contains("offcpu_total;burner;main;outer;inner 35\n"), "{out}");
    }

    #[test]
    fn no_stack_metrics_no_output() {
        assert_eq!(render(&Snapshot::of(vec![syscalls()])), "");
        assert_eq!(render(&Snapshot::of(vec![])), "");
    }

    #[test]
    fn kernel_only_stacks_without_comm() {
        let m = Metric {
            config: "c".into(),
            name: "stack_samples_total".into(),
            help: "h".into(),
            label_names: vec!["kstack".into()],
            values: MetricValues::Counter(
                vec![Sample { labels: vec!["a_func\nb_func\n??".into()], value: 3.0 }].into(),
            ),
        };
        assert_eq!(render(&Snapshot::of(vec![m])), "??;b_func;a_func 3\n");
    }
}
