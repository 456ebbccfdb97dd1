//! Shell-style globs for `--probe` function patterns.

/// `*` any run of characters, `?` one character, everything else literal.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0usize, 0usize);
    // Position after the last `*` and the name position it was tried at (classic backtracking).
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether the pattern has wildcards (a plain name must match exactly one function).
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("malloc", "malloc"));
        assert!(!glob_match("malloc", "malloc_usable_size"));
        assert!(glob_match("malloc*", "malloc_usable_size"));
        assert!(glob_match("*alloc", "calloc"));
        assert!(glob_match("*", ""));
        assert!(glob_match("foo_?", "foo_a"));
        assert!(!glob_match("foo_?", "foo_ab"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("*_*_*", "a_b_c"));
        assert!(is_glob("vfs_*") && !is_glob("vfs_read"));
    }
}
