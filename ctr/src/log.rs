//! Log lines on stderr in the text form containerd's ctr writes them
//! (`time="…" level=error msg="…" error="…"`), for the few places where ctr
//! logs an error and carries on.

use std::fmt::Write as _;

/// Writes an error-level line with message `message` and field `error`.
pub fn error(message: &str, error: &dyn std::fmt::Display) {
    eprintln!(
        "{}",
        line("error", message, &[("error", &error.to_string())])
    );
}

/// Writes an info-level line with `fields` (in the order given: logrus
/// sorts them, so give them sorted).
pub fn info_with_fields(message: &str, fields: &[(&str, &str)]) {
    eprintln!("{}", line("info", message, fields));
}

/// Writes a warning-level line with `fields`.
pub fn warning_with_fields(message: &str, fields: &[(&str, &str)]) {
    eprintln!("{}", line("warning", message, fields));
}

/// Writes a warning-level line.
pub fn warning(message: &str) {
    eprintln!("{}", line("warning", message, &[]));
}

/// Writes a warning-level line with field `error`.
pub fn warning_with_error(message: &str, error: &dyn std::fmt::Display) {
    eprintln!(
        "{}",
        line("warning", message, &[("error", &error.to_string())])
    );
}

/// Writes a debug-level line, for `--debug`.
pub fn debug(message: &str) {
    eprintln!("{}", line("debug", message, &[]));
}

fn line(level: &str, message: &str, fields: &[(&str, &str)]) -> String {
    let time = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut text = format!("time={} level={level} msg={}", quote(&time), quote(message));
    for (key, value) in fields {
        let _ = write!(text, " {key}={}", quote(value));
    }
    text
}

/// Quotes `value` unless it is made only of characters that need no quoting.
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::{line, quote};

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("error"), "error");
        assert_eq!(quote("unable to delete foo"), "\"unable to delete foo\"");
        assert_eq!(quote("a \"b\""), "\"a \\\"b\\\"\"");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn lays_out_time_level_message_and_fields() {
        let text = line("error", "unable to delete foo", &[("error", "busy: x")]);
        assert!(text.starts_with("time=\""), "{text}");
        assert!(
            text.ends_with(" level=error msg=\"unable to delete foo\" error=\"busy: x\""),
            "{text}"
        );
    }
}
