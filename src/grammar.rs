//! bcc's command-line habits on top of clap: positional `[interval] [count]` after the config
//! names, "did you mean" for mistyped config names, and clap's unknown-argument errors without
//! the tip that would turn a flag into a config name.
use std::time::Duration;

use crate::error::usage_err;

/// Whether `word` is a bare number (`1`, `10`, `0.5`): never a config name.
pub fn is_bare_number(word: &str) -> bool {
    !word.is_empty() && word.parse::<f64>().is_ok_and(f64::is_finite) && !word.starts_with(['+', '-'])
}

/// The `NAME... [interval] [count]` words of `ebpfx run`, split.
#[derive(Debug, Clone, PartialEq)]
pub struct Positionals {
    pub names: Vec<String>,
    pub interval: Option<Duration>,
    pub count: Option<u64>,
}

/// Splits bcc's trailing `[interval] [count]` (seconds, then a block count) off the config
/// names. A number anywhere else, a third number, a zero or fractional count is refused.
pub fn split_positionals(words: &[String]) -> anyhow::Result<Positionals> {
    let first_number = words.iter().position(|w| is_bare_number(w)).unwrap_or(words.len());
    let (names, numbers) = words.split_at(first_number);
    if names.is_empty() {
        return Err(usage_err(format!(
            "{:?} is a number, not a config name: the config names come first, then bcc's [interval] [count] \
             (e.g. `ebpfx run biolatency 1 10`)",
            words.first().map(String::as_str).unwrap_or_default()
        )));
    }
    if let Some(name) = numbers.iter().find(|w| !is_bare_number(w)) {
        return Err(usage_err(format!(
            "config name {name:?} after the numbers {}: write the config names first, then [interval] [count] \
             (e.g. `ebpfx run biolatency 1 10`)",
            numbers.iter().take_while(|w| is_bare_number(w)).cloned().collect::<Vec<_>>().join(" ")
        )));
    }
    if numbers.len() > 2 {
        return Err(usage_err(format!(
            "too many numbers after the config names ({}): at most [interval] [count], e.g. `1 10` for ten 1 s blocks",
            numbers.join(" ")
        )));
    }
    let interval = match numbers.first() {
        Some(w) => Some(seconds(w).map_err(|e| usage_err(format!("interval {w:?}: {e}")))?),
        None => None,
    };
    let count = match numbers.get(1) {
        Some(w) => match w.parse::<u64>() {
            Ok(n) if n >= 1 => Some(n),
            _ => return Err(usage_err(format!("count {w:?}: expected a whole number of blocks, at least 1"))),
        },
        None => None,
    };
    Ok(Positionals { names: names.to_vec(), interval, count })
}

/// The longest `--for` or `--interval` (`commands::run` refuses longer ones): deadlines stay far
/// from the limits of `Instant`.
pub const MAX_DURATION: Duration = Duration::from_secs(3650 * 86400);

/// A bare number of seconds (`5`, `0.5`) as a duration.
pub fn seconds(word: &str) -> Result<Duration, String> {
    let v: f64 = word.parse().map_err(|_| format!("{word:?} is not a number of seconds"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("{word:?} is not a number of seconds"));
    }
    if v == 0.0 {
        return Err("the window must be longer than zero (e.g. 500ms, 30s)".to_string());
    }
    if v > MAX_DURATION.as_secs_f64() {
        return Err("at most 10 years (3650d)".to_string());
    }
    Duration::try_from_secs_f64(v).map_err(|e| format!("{word:?}: {e}"))
}

/// Edit distance (insertions, deletions, substitutions, adjacent swaps) of `a` and `b`.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows i-2, i-1 and i of the table
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut current = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        before = std::mem::replace(&mut previous, current);
    }
    previous[b.len()]
}

/// The candidates closest to `word` (at most a third of its length away, at least 1, at most
/// 3 edits), best first; or those that start with it.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    let mut near: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let d = edit_distance(&word.to_lowercase(), &c.to_lowercase());
            if d <= limit || (word.len() >= 3 && c.starts_with(word)) {
                Some((d, c))
            } else {
                None
            }
        })
        .collect();
    near.sort();
    near.dedup();
    let best = near.first().map(|n| n.0);
    near.into_iter().filter(|n| Some(n.0) == best || n.0 <= 1).map(|n| n.1).take(3).collect()
}

/// `; did you mean "x"?` (or `"x" or "y"`), or nothing.
pub fn hint(word: &str, candidates: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let owned: Vec<String> = candidates.into_iter().map(|c| c.as_ref().to_string()).collect();
    let near = did_you_mean(word, owned.iter().map(String::as_str));
    if near.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = near.iter().map(|n| format!("{n:?}")).collect();
    format!("did you mean {}? ", quoted.join(" or "))
}

/// clap's error for an unknown argument, without its tip "to pass '-p' as a value, use '-- -p'":
/// after `run NAME...` that tip would make a flag a config name. Other errors pass unchanged.
pub fn plain_unknown_argument(err: clap::Error, cmd: &mut clap::Command) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument {
        return err;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg).cloned() else {
        return err;
    };
    let mut plain = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(cmd);
    plain.insert(ContextKind::InvalidArg, ContextValue::String(arg));
    // a similar flag (`--count` for `--cout`) is a fair hint; a value is not
    if let Some(similar) = err.get(ContextKind::SuggestedArg).cloned() {
        plain.insert(ContextKind::SuggestedArg, similar);
    }
    if let Some(usage) = err.get(ContextKind::Usage).cloned() {
        plain.insert(ContextKind::Usage, usage);
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn interval_and_count_after_names() {
        let p = split_positionals(&words("biolatency 1 10")).unwrap();
        assert_eq!(p.names, ["biolatency"]);
        assert_eq!(p.interval, Some(Duration::from_secs(1)));
        assert_eq!(p.count, Some(10));
        let p = split_positionals(&words("biolatency runqlat 5")).unwrap();
        assert_eq!(p.names, ["biolatency", "runqlat"]);
        assert_eq!(p.interval, Some(Duration::from_secs(5)));
        assert_eq!(p.count, None);
        let p = split_positionals(&words("runqlat 0.5")).unwrap();
        assert_eq!(p.interval, Some(Duration::from_millis(500)));
        let p = split_positionals(&words("runqlat")).unwrap();
        assert_eq!((p.interval, p.count), (None, None));
    }

    #[test]
    fn numbers_in_the_wrong_place_are_refused() {
        for bad in [
            "1 biolatency",
            "biolatency 1 runqlat",
            "biolatency 1 2 3",
            "biolatency 1 0",
            "biolatency 1 2.5",
            "biolatency 0",
        ] {
            let err = split_positionals(&words(bad)).unwrap_err();
            assert!(crate::error::exit_code(&err) == 2, "{bad}: {err}");
        }
        let err = split_positionals(&words("1 biolatency")).unwrap_err();
        assert!(format!("{err}").contains("not a config name"), "{err}");
    }

    #[test]
    fn bare_numbers() {
        assert!(is_bare_number("1"));
        assert!(is_bare_number("0.5"));
        assert!(!is_bare_number("1s"));
        assert!(!is_bare_number("-1"));
        assert!(!is_bare_number("inf"));
        assert!(!is_bare_number("biolatency"));
    }

    #[test]
    fn suggestions() {
        let names = ["biolatency", "biosnoop", "runqlat", "syscalls", "offcpu"];
        assert_eq!(did_you_mean("biolatncy", names), ["biolatency"]);
        assert_eq!(did_you_mean("runqlta", names), ["runqlat"]);
        assert_eq!(did_you_mean("sycalls", names), ["syscalls"]);
        assert!(did_you_mean("zzzzzz", names).is_empty());
        assert_eq!(edit_distance("abc", "acb"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(hint("biolatncy", names), "did you mean \"biolatency\"? ");
        assert_eq!(hint("zz", names), "");
    }
}
