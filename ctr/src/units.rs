//! Human-readable sizes and ages, worded and rounded exactly as the Go
//! `go-units` helpers that containerd's ctr prints its tables with.

use std::time::Duration;

/// Decimal units for [`human_size`].
const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// Binary units for [`human_bytes`].
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Significant digits of [`human_size`] (Go's `%.4g`).
const SIZE_PRECISION: usize = 4;

/// A size in decimal units with four significant digits and no space:
/// `6B`, `1.234kB`, `12.35MB` (content listings).
pub fn human_size(bytes: i64) -> String {
    let (value, unit) = scale(bytes as f64, 1000.0, &DECIMAL_UNITS);
    format!("{}{unit}", format_g(value, SIZE_PRECISION))
}

/// A size in binary units with one decimal and a space: `0.0 B`,
/// `4.0 KiB`, `4.9 MiB` (snapshot usage).
pub fn human_bytes(bytes: i64) -> String {
    let (value, unit) = scale(bytes as f64, 1024.0, &BINARY_UNITS);
    format!("{value:.1} {unit}")
}

/// Divides `value` by `base` until it is below `base` or the units run out.
fn scale(mut value: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut index = 0;
    while value >= base && index < units.len() - 1 {
        value /= base;
        index += 1;
    }
    (value, units[index])
}

/// Go's `%.<precision>g`: `precision` significant digits, trailing zeros
/// dropped, exponent form only for very large or very small values.
fn format_g(value: f64, precision: usize) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    // Scientific notation rounds to the significant digits and tells us the
    // exponent of the rounded value.
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("scientific notation has an exponent");
    let exponent: i32 = exponent.parse().expect("exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if exponent < -4 || exponent >= precision as i32 {
        let (first, rest) = digits.split_at(1);
        let rest = rest.trim_end_matches('0');
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        return format!(
            "{sign}{first}{fraction}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        );
    }
    let (integer, fraction) = if exponent >= 0 {
        let split = exponent as usize + 1;
        (digits[..split].to_owned(), digits[split..].to_owned())
    } else {
        let zeros = "0".repeat(exponent.unsigned_abs() as usize - 1);
        ("0".to_owned(), format!("{zeros}{digits}"))
    };
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        format!("{sign}{integer}")
    } else {
        format!("{sign}{integer}.{fraction}")
    }
}

/// How long ago something happened, in go-units' words: `Less than a
/// second`, `5 seconds`, `About a minute`, `3 hours`, `2 weeks`, ...
pub fn human_duration(age: Duration) -> String {
    let seconds = age.as_secs();
    if seconds < 1 {
        return "Less than a second".to_owned();
    }
    if seconds == 1 {
        return "1 second".to_owned();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = seconds / 60;
    if minutes == 1 {
        return "About a minute".to_owned();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let exact_hours = age.as_secs_f64() / 3600.0;
    let hours = exact_hours.round() as u64;
    if hours == 1 {
        return "About an hour".to_owned();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (exact_hours as u64) / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(6), "6B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(12_345), "12.35kB");
        assert_eq!(human_size(999_950), "1000kB");
        assert_eq!(human_size(5_124_096), "5.124MB");
        assert_eq!(human_size(1 << 30), "1.074GB");
    }

    #[test]
    fn g_format_switches_to_an_exponent_like_go() {
        assert_eq!(format_g(12_345.0, 4), "1.234e+04");
        assert_eq!(format_g(10_000.0, 4), "1e+04");
        assert_eq!(format_g(0.000_012_5, 4), "1.25e-05");
        assert_eq!(format_g(0.5, 4), "0.5");
        assert_eq!(format_g(0.001_5, 4), "0.0015");
    }

    /// Values printed by containerd 1.6.20's `ctr snapshots usage`.
    #[test]
    fn binary_sizes_read_like_ctr_snapshots_usage() {
        assert_eq!(human_bytes(0), "0.0 B");
        assert_eq!(human_bytes(4096), "4.0 KiB");
        assert_eq!(human_bytes(5_124_096), "4.9 MiB");
        assert_eq!(human_bytes(1023), "1023.0 B");
    }

    #[test]
    fn ages_read_like_go_units() {
        let secs = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(999)),
            "Less than a second"
        );
        assert_eq!(human_duration(secs(1)), "1 second");
        assert_eq!(human_duration(secs(59)), "59 seconds");
        assert_eq!(human_duration(secs(60)), "About a minute");
        assert_eq!(human_duration(secs(119)), "About a minute");
        assert_eq!(human_duration(secs(120)), "2 minutes");
        assert_eq!(human_duration(secs(3599)), "59 minutes");
        assert_eq!(human_duration(secs(3600)), "About an hour");
        // 1.5 hours rounds up to 2.
        assert_eq!(human_duration(secs(5400)), "2 hours");
        assert_eq!(human_duration(secs(47 * 3600)), "47 hours");
        assert_eq!(human_duration(secs(48 * 3600)), "2 days");
        assert_eq!(human_duration(secs(14 * 24 * 3600)), "2 weeks");
        assert_eq!(human_duration(secs(60 * 24 * 3600)), "2 months");
        assert_eq!(human_duration(secs(800 * 24 * 3600)), "2 years");
    }
}
