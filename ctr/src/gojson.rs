//! JSON laid out and escaped the way Go's `encoding/json` `MarshalIndent`
//! (or, compact, `Marshal`) does it — the forms containerd's ctr prints
//! objects in — and Go's RFC 3339 and `Time.String` texts.

use std::fmt::Write as _;

/// A JSON value; object members keep the order they were given in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    /// An integer, as Go prints any of its integer types.
    Number(i64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
    /// JSON text as another Go program wrote it (a stored spec); laid out
    /// again with the surrounding indentation, its bytes otherwise kept.
    Raw(String),
}

impl Json {
    pub fn string(text: impl Into<String>) -> Self {
        Self::String(text.into())
    }

    /// A list of strings; an empty list is `null`, as Go prints a nil slice.
    pub fn strings(items: &[String]) -> Self {
        if items.is_empty() {
            return Self::Null;
        }
        Self::Array(
            items
                .iter()
                .map(|item| Self::string(item.as_str()))
                .collect(),
        )
    }

    /// A string map with its keys sorted, as Go sorts map keys.
    pub fn sorted_map<'a>(entries: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut members: Vec<(String, Json)> = entries
            .into_iter()
            .map(|(key, value)| (key.clone(), Self::string(value.as_str())))
            .collect();
        members.sort_by(|a, b| a.0.cmp(&b.0));
        Self::Object(members)
    }

    /// The value on one line, as Go's `json.Marshal` writes it.
    pub fn to_compact(&self) -> String {
        let mut out = String::new();
        self.write_compact(&mut out);
        out
    }

    fn write_compact(&self, out: &mut String) {
        match self {
            Self::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    item.write_compact(out);
                }
                out.push(']');
            }
            Self::Object(members) => {
                out.push('{');
                for (index, (key, value)) in members.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    quote_into(out, key);
                    out.push(':');
                    value.write_compact(out);
                }
                out.push('}');
            }
            // Another program's JSON, already compact as Go writes it.
            Self::Raw(text) => out.push_str(text.trim()),
            scalar => scalar.write(out, "", 0),
        }
    }

    /// The value indented by `indent` per level, without a final newline.
    pub fn to_indented(&self, indent: &str) -> String {
        let mut out = String::new();
        self.write(&mut out, indent, 0);
        out
    }

    fn write(&self, out: &mut String, indent: &str, depth: usize) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Self::Number(value) => {
                let _ = write!(out, "{value}");
            }
            Self::String(text) => quote_into(out, text),
            Self::Array(items) if items.is_empty() => out.push_str("[]"),
            Self::Object(members) if members.is_empty() => out.push_str("{}"),
            Self::Raw(text) => indent_raw(out, text, indent, depth),
            Self::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    new_line(out, indent, depth + 1);
                    item.write(out, indent, depth + 1);
                }
                new_line(out, indent, depth);
                out.push(']');
            }
            Self::Object(members) => {
                out.push('{');
                for (index, (key, value)) in members.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    new_line(out, indent, depth + 1);
                    quote_into(out, key);
                    out.push_str(": ");
                    value.write(out, indent, depth + 1);
                }
                new_line(out, indent, depth);
                out.push('}');
            }
        }
    }
}

/// Parses JSON text into a [`Json`] keeping the members' order; numbers
/// keep their text (as [`Json::Raw`]) and strings are decoded, so that
/// [`Json::to_compact`] writes the value as Go re-encodes it.
pub fn parse(text: &[u8]) -> Result<Json, String> {
    let text = std::str::from_utf8(text).map_err(|e| e.to_string())?;
    let mut parser = Parser {
        chars: text.char_indices().peekable(),
        text,
    };
    let value = parser.value()?;
    parser.skip_space();
    match parser.chars.next() {
        None => Ok(value),
        Some((at, c)) => Err(format!(
            "invalid character {c:?} after top-level value at offset {at}"
        )),
    }
}

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    text: &'a str,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self
            .chars
            .peek()
            .is_some_and(|(_, c)| matches!(c, ' ' | '\t' | '\n' | '\r'))
        {
            self.chars.next();
        }
    }

    fn expect(&mut self, want: char) -> Result<(), String> {
        self.skip_space();
        match self.chars.next() {
            Some((_, c)) if c == want => Ok(()),
            Some((at, c)) => Err(format!(
                "invalid character {c:?} at offset {at}, want {want:?}"
            )),
            None => Err("unexpected end of JSON input".into()),
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        for want in word.chars() {
            match self.chars.next() {
                Some((_, c)) if c == want => {}
                _ => return Err(format!("invalid literal, want {word}")),
            }
        }
        Ok(value)
    }

    fn value(&mut self) -> Result<Json, String> {
        self.skip_space();
        let Some(&(start, c)) = self.chars.peek() else {
            return Err("unexpected end of JSON input".into());
        };
        match c {
            '{' => {
                self.chars.next();
                let mut members = Vec::new();
                self.skip_space();
                if self.chars.peek().is_some_and(|(_, c)| *c == '}') {
                    self.chars.next();
                    return Ok(Json::Object(members));
                }
                loop {
                    self.skip_space();
                    let key = self.string()?;
                    self.expect(':')?;
                    let value = self.value()?;
                    members.push((key, value));
                    self.skip_space();
                    match self.chars.next() {
                        Some((_, ',')) => continue,
                        Some((_, '}')) => return Ok(Json::Object(members)),
                        _ => return Err("invalid object".into()),
                    }
                }
            }
            '[' => {
                self.chars.next();
                let mut items = Vec::new();
                self.skip_space();
                if self.chars.peek().is_some_and(|(_, c)| *c == ']') {
                    self.chars.next();
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    self.skip_space();
                    match self.chars.next() {
                        Some((_, ',')) => continue,
                        Some((_, ']')) => return Ok(Json::Array(items)),
                        _ => return Err("invalid array".into()),
                    }
                }
            }
            '"' => Ok(Json::String(self.string()?)),
            't' => self.literal("true", Json::Bool(true)),
            'f' => self.literal("false", Json::Bool(false)),
            'n' => self.literal("null", Json::Null),
            '-' | '0'..='9' => {
                let mut end = start;
                while let Some(&(at, c)) = self.chars.peek() {
                    if c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E') {
                        end = at + c.len_utf8();
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                Ok(Json::Raw(self.text[start..end].to_string()))
            }
            other => Err(format!(
                "invalid character {other:?} looking for beginning of value"
            )),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        match self.chars.next() {
            Some((_, '"')) => {}
            _ => return Err("expected a string".into()),
        }
        let mut out = String::new();
        loop {
            match self.chars.next() {
                None => return Err("unexpected end of JSON input".into()),
                Some((_, '"')) => return Ok(out),
                Some((_, '\\')) => match self.chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, 'b')) => out.push('\u{8}'),
                    Some((_, 'f')) => out.push('\u{c}'),
                    Some((_, 'u')) => {
                        let mut code = 0u32;
                        for _ in 0..4 {
                            let digit = self
                                .chars
                                .next()
                                .and_then(|(_, c)| c.to_digit(16))
                                .ok_or("invalid \\u escape")?;
                            code = code * 16 + digit;
                        }
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    Some((_, c)) => out.push(c),
                    None => return Err("unexpected end of JSON input".into()),
                },
                Some((_, c)) => out.push(c),
            }
        }
    }
}

/// Go's `json.Indent` of `text` at `depth`: a line per member and element,
/// `": "` after keys, empty objects and arrays kept as `{}` and `[]`;
/// strings are copied as they are.
fn indent_raw(out: &mut String, text: &str, indent: &str, mut depth: usize) {
    let mut chars = text.trim().chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    out.push(close);
                    chars.next();
                } else {
                    depth += 1;
                    new_line(out, indent, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                new_line(out, indent, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                new_line(out, indent, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
}

fn new_line(out: &mut String, indent: &str, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str(indent);
    }
}

/// A JSON string with Go's escaping: HTML-sensitive `<`, `>`, `&` and the
/// line separators U+2028/U+2029 as `\u` escapes, control characters other
/// than `\n`, `\r`, `\t` as `\u00xx`.
fn quote_into(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", ch as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's `time.RFC3339Nano` text of a protobuf timestamp in UTC (fraction
/// without trailing zeros); a missing or unrepresentable timestamp is Go's
/// zero time.
pub fn rfc3339_nano(timestamp: Option<&prost_types::Timestamp>) -> String {
    const ZERO_TIME: &str = "0001-01-01T00:00:00Z";
    let Some(timestamp) = timestamp else {
        return ZERO_TIME.to_owned();
    };
    let nanos = u32::try_from(timestamp.nanos).unwrap_or(0);
    let Some(time) = chrono::DateTime::from_timestamp(timestamp.seconds, nanos) else {
        return ZERO_TIME.to_owned();
    };
    let mut text = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Go's `Time.String()` of a protobuf timestamp read as containerd's Go
/// client reads it (UTC): `2006-01-02 15:04:05.999999999 +0000 UTC`, the
/// fraction without trailing zeros; missing is Go's zero time.
pub fn go_time_string(timestamp: Option<&prost_types::Timestamp>) -> String {
    const ZERO_TIME: &str = "0001-01-01 00:00:00 +0000 UTC";
    let Some(timestamp) = timestamp else {
        return ZERO_TIME.to_owned();
    };
    let nanos = u32::try_from(timestamp.nanos).unwrap_or(0);
    let Some(time) = chrono::DateTime::from_timestamp(timestamp.seconds, nanos) else {
        return ZERO_TIME.to_owned();
    };
    let mut text = time.format("%Y-%m-%d %H:%M:%S").to_string();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push_str(" +0000 UTC");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ctr snapshots info` of containerd 1.6.20 for a snapshot labelled
    /// `a&b=<c>`.
    #[test]
    fn indents_and_escapes_like_go() {
        let labels = [
            ("x".to_owned(), "1".to_owned()),
            ("a&b".to_owned(), "<c>".to_owned()),
        ];
        let value = Json::Object(vec![
            ("Kind".into(), Json::string("Active")),
            (
                "Labels".into(),
                Json::sorted_map(labels.iter().map(|(k, v)| (k, v))),
            ),
            ("List".into(), Json::strings(&["ro".into(), "rbind".into()])),
            ("Empty".into(), Json::strings(&[])),
        ]);
        let expected = r#"{
    "Kind": "Active",
    "Labels": {
        "a\u0026b": "\u003cc\u003e",
        "x": "1"
    },
    "List": [
        "ro",
        "rbind"
    ],
    "Empty": null
}"#;
        assert_eq!(value.to_indented("    "), expected);
    }

    #[test]
    fn escapes_quotes_and_control_characters() {
        let value = Json::string("a\"b\\c\nd\u{1}\u{8}\u{2028}é");
        assert_eq!(
            value.to_indented("  "),
            r#""a\"b\\c\nd\u0001\u0008\u2028é""#
        );
        assert_eq!(Json::Array(Vec::new()).to_indented("  "), "[]");
        assert_eq!(Json::Object(Vec::new()).to_indented("  "), "{}");
    }

    #[test]
    fn raw_json_is_laid_out_again_like_go_json_indent() {
        let value = Json::Object(vec![
            ("ID".into(), Json::string("c")),
            (
                "Spec".into(),
                Json::Raw(r#"{"ociVersion":"1.0.2","process":{"args":["sh","-c","a, b: {c}"],"terminal":false,"env":[]},"n":1.5,"e":{}}"#.into()),
            ),
        ]);
        let expected = r#"{
    "ID": "c",
    "Spec": {
        "ociVersion": "1.0.2",
        "process": {
            "args": [
                "sh",
                "-c",
                "a, b: {c}"
            ],
            "terminal": false,
            "env": []
        },
        "n": 1.5,
        "e": {}
    }
}"#;
        assert_eq!(value.to_indented("    "), expected);
    }

    #[test]
    fn compact_json_is_gos_marshal() {
        let value = Json::Object(vec![
            ("name".into(), Json::string("a<b>")),
            (
                "labels".into(),
                Json::sorted_map(
                    [
                        ("z".to_owned(), "1".to_owned()),
                        ("a".to_owned(), "2".to_owned()),
                    ]
                    .iter()
                    .map(|(k, v)| (k, v)),
                ),
            ),
            ("pid".into(), Json::Number(42)),
            ("terminal".into(), Json::Bool(true)),
            ("options".into(), Json::Array(vec![Json::string("ro")])),
            ("empty".into(), Json::Object(Vec::new())),
        ]);
        assert_eq!(
            value.to_compact(),
            r#"{"name":"a\u003cb\u003e","labels":{"a":"2","z":"1"},"pid":42,"terminal":true,"options":["ro"],"empty":{}}"#
        );
    }

    #[test]
    fn formats_times_like_go_time_string() {
        let at = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        assert_eq!(
            go_time_string(Some(&at(1_795_473_673, 846_192_938))),
            "2026-11-23 22:41:13.846192938 +0000 UTC"
        );
        assert_eq!(
            go_time_string(Some(&at(1_795_473_673, 34_771_000))),
            "2026-11-23 22:41:13.034771 +0000 UTC"
        );
        assert_eq!(
            go_time_string(Some(&at(1_795_473_673, 0))),
            "2026-11-23 22:41:13 +0000 UTC"
        );
        assert_eq!(go_time_string(None), "0001-01-01 00:00:00 +0000 UTC");
    }

    #[test]
    fn formats_times_like_go_rfc3339_nano() {
        let at = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        assert_eq!(
            rfc3339_nano(Some(&at(1_795_473_673, 846_192_938))),
            "2026-11-23T22:41:13.846192938Z"
        );
        assert_eq!(
            rfc3339_nano(Some(&at(1_795_473_673, 846_190_000))),
            "2026-11-23T22:41:13.84619Z"
        );
        assert_eq!(
            rfc3339_nano(Some(&at(1_795_473_673, 0))),
            "2026-11-23T22:41:13Z"
        );
        assert_eq!(rfc3339_nano(None), "0001-01-01T00:00:00Z");
    }
}
