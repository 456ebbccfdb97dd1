//! Numbers exactly as Go's Prometheus client prints them (spec Appendix C).

/// Formats `v` like Go's `expfmt` does: `strconv.FormatFloat(v, 'g', -1, 64)` behind fast paths
/// for `0`, `1`, `-1`, `NaN`, `+Inf` and `-Inf`.
///
/// The digits are the shortest decimal string that reads back as `v` (Rust's `{:e}` gives the
/// same digits); exponent form is used when the decimal exponent is below -4 or at least 6, with
/// a signed exponent of at least two digits: `1e-06`, `1.234567e+06`, `0.000512`, `134.217728`.
pub fn go_float(v: f64) -> String {
    let mut out = String::new();
    push_go_float(&mut out, v);
    out
}

/// [`go_float`] appended to `out` (no allocation for the common integer case).
pub fn push_go_float(out: &mut String, v: f64) {
    // Fast path: whole numbers below 10^6 print as plain integers in Go's %g too.
    if v.fract() == 0.0 && v.abs() < 1e6 && v != 0.0 {
        out.push_str(itoa::Buffer::new().format(v as i64));
        return;
    }
    out.push_str(&go_float_slow(v));
}

fn go_float_slow(v: f64) -> String {
    if v == 0.0 {
        // also -0: Go's fast path compares with 0
        return "0".to_string();
    }
    if v == 1.0 {
        return "1".to_string();
    }
    if v == -1.0 {
        return "-1".to_string();
    }
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }

    // `{:e}` prints the shortest round-trip digits as `d[.ddd]e<exp>`.
    let scientific = format!("{:e}", v.abs());
    let Some((mantissa, exp)) = scientific.split_once('e') else {
        return format!("{v}");
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return format!("{v}");
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if digits.is_empty() {
        return format!("{v}");
    }
    let n = digits.len() as i32;

    let mut out = String::with_capacity(digits.len() + 8);
    if v < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if exp >= n - 1 {
        out.push_str(&digits);
        for _ in 0..(exp - n + 1) {
            out.push('0');
        }
    } else {
        let point = (exp + 1) as usize;
        out.push_str(&digits[..point]);
        out.push('.');
        out.push_str(&digits[point..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::go_float;

    #[test]
    fn facts_table() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (0.000001, "1e-06"),
            (0.000064, "6.4e-05"),
            (0.0001, "0.0001"),
            (0.000512, "0.000512"),
            (134.217728, "134.217728"),
            (3.0, "3"),
            (999999.0, "999999"),
            (1000000.0, "1e+06"),
            (1048576.0, "1.048576e+06"),
            (1824.0 * 0.000001, "0.0018239999999999999"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
        ];
        for &(v, want) in cases {
            assert_eq!(go_float(v), want, "go_float({v:?})");
        }
    }

    #[test]
    fn specials() {
        assert_eq!(go_float(f64::NAN), "NaN");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
        assert_eq!(go_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(go_float(-0.0), "0");
        assert_eq!(go_float(-1.0), "-1");
    }

    #[test]
    fn negatives() {
        assert_eq!(go_float(-3.0), "-3");
        assert_eq!(go_float(-0.5), "-0.5");
        assert_eq!(go_float(-0.000001), "-1e-06");
        assert_eq!(go_float(-1234567.0), "-1.234567e+06");
        assert_eq!(go_float(-134.217728), "-134.217728");
    }

    #[test]
    fn spec_reference_points() {
        // exp2 bucket bounds with multiplier 1e-6 (biolatency, docs/config-format.md#histograms)
        let m = 0.000001;
        assert_eq!(go_float(2f64.powi(1) * m), "2e-06");
        assert_eq!(go_float(2f64.powi(4) * m), "1.6e-05");
        assert_eq!(go_float(2f64.powi(7) * m), "0.000128");
        assert_eq!(go_float(2f64.powi(10) * m), "0.001024");
        assert_eq!(go_float(2f64.powi(20) * m), "1.048576");
        assert_eq!(go_float(2f64.powi(27) * m), "134.217728");
        assert_eq!(go_float(11249.0 * m), "0.011249");
        assert_eq!(go_float(2f64.powi(20)), "1.048576e+06");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(1500000.0), "1.5e+06");
        assert_eq!(go_float(100003.0), "100003");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1000.0), "1000");
    }

    #[test]
    fn boundaries_and_extremes() {
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(0.00012345), "0.00012345");
        assert_eq!(go_float(0.1), "0.1");
        assert_eq!(go_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(go_float(12.5), "12.5");
        assert_eq!(go_float(999999.5), "999999.5");
        assert_eq!(go_float(9007199254740993.0), "9.007199254740992e+15");
        assert_eq!(go_float(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(go_float(f64::MIN_POSITIVE), "2.2250738585072014e-308");
        assert_eq!(go_float(5e-324), "5e-324");
        assert_eq!(go_float(1e100), "1e+100");
        assert_eq!(go_float(1.7637660100005e9), "1.7637660100005e+09");
    }
}
