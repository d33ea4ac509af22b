//! containerd's filter syntax, parsed once and used by every List.
//!
//! A request carries zero or more filter strings; an object matches when any
//! of them matches (OR). One filter is selectors joined by `,` (AND). A
//! selector is a field path, optionally followed by an operator and a value:
//!
//! ```text
//! name==foo            equal            labels."a.b"==x    quoted path part
//! name!=foo            not equal        id~=^over          regexp match
//! labels.color         field present    name=="a/b:c"      quoted value
//! id~=/^a|b$/          regexp quoted with `/` or `|` (only after `~=`)
//! ```
//!
//! What a field path means is up to the object: it implements [`Fields`].
//!
//! The grammar and the error texts follow containerd 1.6: a parse error names
//! the filter and marks the offending character, as in
//! `filters: parse error: [r >|[|< ]: expected an operator ("=="|"!="|"~=")`,
//! so that clients print what containerd's would.

use crate::errdefs::{Error, Result};
use regex::Regex;

/// Resolves a field path (`["labels", "color"]`) to a value, if present.
pub trait Fields {
    fn field(&self, path: &[String]) -> Option<String>;
}

#[derive(Debug, Clone)]
enum Operator {
    Present,
    Equal(String),
    NotEqual(String),
    Matches(Regex),
}

#[derive(Debug, Clone)]
struct Selector {
    path: Vec<String>,
    operator: Operator,
}

impl Selector {
    fn matches(&self, object: &dyn Fields) -> bool {
        let value = object.field(&self.path);
        match &self.operator {
            Operator::Present => value.is_some(),
            Operator::Equal(v) => value.as_deref() == Some(v.as_str()),
            // containerd: an absent field counts as the empty string here.
            Operator::NotEqual(v) => value.as_deref().unwrap_or("") != v,
            Operator::Matches(re) => re.is_match(value.as_deref().unwrap_or("")),
        }
    }
}

/// Any of several filters, each all of its selectors. Empty matches all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    any: Vec<Vec<Selector>>,
}

impl Filter {
    /// Parses the filter strings of a request. An empty string matches
    /// everything (a blank one is a parse error, as in containerd).
    pub fn parse_all<S: AsRef<str>>(filters: &[S]) -> Result<Filter> {
        let mut any = Vec::new();
        for f in filters {
            let f = f.as_ref();
            if f.is_empty() {
                return Ok(Filter::default());
            }
            any.push(Parser::new(f).selectors().map_err(|e| {
                Error::invalid_argument(format!("filters: parse error: {}", e.describe(f)))
            })?);
        }
        Ok(Filter { any })
    }

    pub fn matches(&self, object: &dyn Fields) -> bool {
        self.any.is_empty()
            || self
                .any
                .iter()
                .any(|all| all.iter().all(|s| s.matches(object)))
    }
}

/// A parse failure: what was expected, and the byte offset it was found at.
#[derive(Debug)]
struct ParseError {
    at: usize,
    message: String,
}

impl ParseError {
    fn new(at: usize, message: impl Into<String>) -> Self {
        ParseError {
            at,
            message: message.into(),
        }
    }

    /// `[before >|c|< after]: message`, or `[input]: message` at the end.
    fn describe(&self, input: &str) -> String {
        match input.get(self.at..).and_then(|rest| rest.chars().next()) {
            Some(c) => {
                let after = self.at + c.len_utf8();
                format!(
                    "[{} >|{c}|< {}]: {}",
                    &input[..self.at],
                    &input[after..],
                    self.message
                )
            }
            None => format!("[{input}]: {}", self.message),
        }
    }
}

/// One lexical token of a filter.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    End,
    /// `[A-Za-z0-9_]+` outside a value.
    Field(&'a str),
    /// Anything up to `,` or white space, right after an operator.
    Value(&'a str),
    /// A string between `"`, `/` or `|`, delimiters included.
    Quoted(&'a str),
    /// `,` or `.`.
    Separator,
    /// A run of `=`, `!` and `~`.
    Operator(&'a str),
    /// A malformed quoted string or a NUL; the scanner keeps the reason.
    Illegal,
    /// Any other character.
    Unexpected,
}

fn is_field_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_operator_char(c: char) -> bool {
    matches!(c, '=' | '!' | '~')
}

fn is_quote_char(c: char) -> bool {
    matches!(c, '"' | '/' | '|')
}

fn is_value_char(c: char) -> bool {
    c != ',' && !c.is_whitespace() && !c.is_control()
}

/// Splits a filter into tokens. Like containerd's, it knows one piece of
/// context: the token after an operator is a value, which may hold any
/// printable character but `,`.
struct Scanner<'a> {
    input: &'a str,
    /// Byte offset of the next unread character.
    next: usize,
    after_operator: bool,
    /// The first reason a token was illegal.
    error: Option<&'static str>,
}

impl<'a> Scanner<'a> {
    fn new(input: &'a str) -> Self {
        Scanner {
            input,
            next: 0,
            after_operator: false,
            error: None,
        }
    }

    /// The next character, white space included, without consuming it.
    fn peek(&self) -> Option<char> {
        self.input[self.next..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.next += c.len_utf8();
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }

    fn fail(&mut self, reason: &'static str) {
        self.error.get_or_insert(reason);
    }

    /// The next token and the byte offset it starts at (the input's length
    /// at the end), skipping white space before it.
    fn scan(&mut self) -> (usize, Token<'a>) {
        self.bump_while(char::is_whitespace);
        let start = self.next;
        let Some(c) = self.bump() else {
            return (start, Token::End);
        };
        let text = |s: &Self| &s.input[start..s.next];
        let token = match c {
            '\0' => {
                self.fail("unexpected null");
                Token::Illegal
            }
            c if is_quote_char(c) => {
                if self.quoted_rest(c) {
                    Token::Quoted(text(self))
                } else {
                    Token::Illegal
                }
            }
            ',' | '.' => {
                self.after_operator = false;
                Token::Separator
            }
            c if is_operator_char(c) => {
                self.bump_while(is_operator_char);
                self.after_operator = true;
                Token::Operator(text(self))
            }
            _ if self.after_operator => {
                self.bump_while(is_value_char);
                self.after_operator = false;
                Token::Value(text(self))
            }
            c if is_field_char(c) => {
                self.bump_while(is_field_char);
                Token::Field(text(self))
            }
            _ => Token::Unexpected,
        };
        (start, token)
    }

    /// Consumes a quoted string after its opening `quote`; false if it is
    /// unterminated or has a malformed escape.
    fn quoted_rest(&mut self, quote: char) -> bool {
        let mut legal = true;
        loop {
            match self.bump() {
                Some(c) if c == quote => return legal,
                None | Some('\n') => {
                    self.fail("quoted literal not terminated");
                    return false;
                }
                Some('\0') => {
                    self.fail("unexpected null");
                    return false;
                }
                Some('\\') => legal &= self.escape_rest(quote),
                Some(_) => {}
            }
        }
    }

    /// Consumes an escape after its backslash.
    fn escape_rest(&mut self, quote: char) -> bool {
        let digits = |radix: u32, count: usize, s: &mut Self| {
            for _ in 0..count {
                if !s.peek().is_some_and(|c| c.is_digit(radix)) {
                    s.fail("illegal numeric escape sequence");
                    return false;
                }
                s.bump();
            }
            true
        };
        match self.peek() {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => {
                self.bump();
                true
            }
            Some(c) if c == quote => {
                self.bump();
                true
            }
            Some('0'..='7') => digits(8, 3, self),
            Some(c @ ('x' | 'u' | 'U')) => {
                self.bump();
                let count = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                digits(16, count, self)
            }
            // The character stays unread: the quoted loop judges it.
            _ => {
                self.fail("illegal escape sequence");
                false
            }
        }
    }
}

/// Decodes a quoted string that the scanner accepted (delimiters included).
fn unquote(quoted: &str) -> std::result::Result<String, &'static str> {
    const SYNTAX: &str = "quote syntax error";
    let inner = &quoted[1..quoted.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars.next().ok_or(SYNTAX)?;
        let code = |count: usize, radix: u32, chars: &mut std::str::Chars| {
            let digits: String = chars.by_ref().take(count).collect();
            u32::from_str_radix(&digits, radix).map_err(|_| SYNTAX)
        };
        let decoded = match escaped {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            'x' => char::from(code(2, 16, &mut chars)? as u8),
            'u' => char::from_u32(code(4, 16, &mut chars)?).ok_or(SYNTAX)?,
            'U' => char::from_u32(code(8, 16, &mut chars)?).ok_or(SYNTAX)?,
            '0'..='7' => {
                let rest = code(2, 8, &mut chars)?;
                let value = (escaped as u32 - '0' as u32) * 64 + rest;
                char::from(u8::try_from(value).map_err(|_| SYNTAX)?)
            }
            other => other,
        };
        out.push(decoded);
    }
    Ok(out)
}

type Parsed<T> = std::result::Result<T, ParseError>;

/// selectors := selector ("," selector)*
/// selector  := fieldpath (operator value)?
/// fieldpath := field ("." field)*
struct Parser<'a> {
    scanner: Scanner<'a>,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            scanner: Scanner::new(input),
        }
    }

    fn illegal(&self, at: usize) -> ParseError {
        ParseError::new(at, self.scanner.error.unwrap_or("illegal token"))
    }

    fn selectors(mut self) -> Parsed<Vec<Selector>> {
        let mut selectors = vec![self.selector()?];
        loop {
            // Like containerd, nothing (not even white space) may follow a
            // selector but `,` or the end.
            match self.scanner.peek() {
                None => return Ok(selectors),
                Some(',') => {
                    self.scanner.scan();
                    selectors.push(self.selector()?);
                }
                Some(c) => {
                    let c = if c == '\0' { '\u{fffd}' } else { c };
                    return Err(ParseError::new(
                        self.scanner.next,
                        format!("unexpected input: {c}"),
                    ));
                }
            }
        }
    }

    fn selector(&mut self) -> Parsed<Selector> {
        let path = self.field_path()?;
        if matches!(self.scanner.peek(), None | Some(',')) {
            return Ok(Selector {
                path,
                operator: Operator::Present,
            });
        }
        let (at, token) = self.scanner.scan();
        let op = match token {
            Token::Operator(op @ ("==" | "!=" | "~=")) => op,
            Token::Operator(op) => {
                return Err(ParseError::new(at, format!("unsupported operator {op:?}")))
            }
            Token::Illegal => return Err(self.illegal(at)),
            _ => {
                return Err(ParseError::new(
                    at,
                    r#"expected an operator ("=="|"!="|"~=")"#,
                ))
            }
        };
        let (at, value) = self.value(op == "~=")?;
        let operator = match op {
            "==" => Operator::Equal(value),
            "!=" => Operator::NotEqual(value),
            // containerd compiles late and lets a bad expression match
            // nothing; we refuse it up front, which says more.
            _ => Operator::Matches(Regex::new(&value).map_err(|e| {
                ParseError::new(at, format!("bad regular expression {value:?}: {e}"))
            })?),
        };
        Ok(Selector { path, operator })
    }

    fn field_path(&mut self) -> Parsed<Vec<String>> {
        let mut path = vec![self.field()?];
        while self.scanner.peek() == Some('.') {
            self.scanner.scan();
            path.push(self.field()?);
        }
        Ok(path)
    }

    fn field(&mut self) -> Parsed<String> {
        let (at, token) = self.scanner.scan();
        match token {
            Token::Field(field) => Ok(field.to_string()),
            Token::Quoted(quoted) => self.unquote(at, quoted, false),
            Token::Illegal => Err(self.illegal(at)),
            _ => Err(ParseError::new(at, "expected field or quoted")),
        }
    }

    /// The value and where it starts; `/` and `|` quote only expressions.
    fn value(&mut self, expression: bool) -> Parsed<(usize, String)> {
        let (at, token) = self.scanner.scan();
        let value = match token {
            Token::Value(value) | Token::Field(value) => value.to_string(),
            Token::Quoted(quoted) => self.unquote(at, quoted, expression)?,
            Token::Illegal => return Err(self.illegal(at)),
            _ => return Err(ParseError::new(at, "expected value or quoted")),
        };
        Ok((at, value))
    }

    fn unquote(&self, at: usize, quoted: &str, other_quotes: bool) -> Parsed<String> {
        if !other_quotes && !quoted.starts_with('"') {
            return Err(ParseError::new(at, "invalid quote encountered"));
        }
        unquote(quoted).map_err(|e| ParseError::new(at, format!("unquoting failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Obj(BTreeMap<&'static str, &'static str>);
    impl Fields for Obj {
        fn field(&self, path: &[String]) -> Option<String> {
            self.0.get(path.join(".").as_str()).map(|v| v.to_string())
        }
    }

    fn obj() -> Obj {
        Obj(BTreeMap::from([
            ("name", "a/b:c"),
            ("type", "io.containerd.snapshotter.v1"),
            ("labels.x.y", "1"),
        ]))
    }

    fn m(filters: &[&str]) -> bool {
        Filter::parse_all(filters).unwrap().matches(&obj())
    }

    #[test]
    fn operators() {
        assert!(m(&[]));
        assert!(m(&[r#"name=="a/b:c""#]));
        assert!(m(&["type==io.containerd.snapshotter.v1"]));
        assert!(!m(&["type==io.containerd.content.v1"]));
        assert!(m(&["type!=io.containerd.content.v1"]));
        assert!(m(&["type~=snapshotter"]));
        assert!(!m(&["type~=^snap"]));
        assert!(m(&[r#"labels."x.y"==1"#]));
        assert!(m(&["labels.x.y"]));
        assert!(!m(&["labels.z"]));
        assert!(m(&["missing!=v"]));
    }

    #[test]
    fn and_or() {
        assert!(m(&["type~=snap,name~=b"]));
        assert!(!m(&["type~=snap,name~=zz"]));
        assert!(m(&["name==nope", "type~=snap"]));
    }

    #[test]
    fn parse_errors_are_invalid_argument() {
        for bad in ["name==", "==x", "name==\"open", "a~=("] {
            let e = Filter::parse_all(&[bad]).unwrap_err();
            assert_eq!(e.kind, crate::errdefs::Kind::InvalidArgument, "{bad}");
        }
        let e = Filter::parse_all(&["name=="]).unwrap_err();
        assert_eq!(
            e.message,
            "filters: parse error: [name==]: expected value or quoted"
        );
    }

    fn parse_error(filter: &str) -> String {
        Filter::parse_all(&[filter]).unwrap_err().message
    }

    #[test]
    fn parse_errors_mark_the_offending_character_like_containerd() {
        let cases = [
            ("r[", r#"[r >|[|< ]: expected an operator ("=="|"!="|"~=")"#),
            (
                "bad[",
                r#"[bad >|[|< ]: expected an operator ("=="|"!="|"~=")"#,
            ),
            ("==x", "[ >|=|< =x]: expected field or quoted"),
            ("a===b", r#"[a >|=|< ==b]: unsupported operator "===""#),
            ("a==b c", "[a==b >| |< c]: unexpected input:  "),
            ("a==b ", "[a==b >| |< ]: unexpected input:  "),
            ("a!x", r#"[a >|!|< x]: unsupported operator "!""#),
            (
                r#"labels."x"#,
                r#"[labels. >|"|< x]: quoted literal not terminated"#,
            ),
            ("a==b,", "[a==b,]: expected field or quoted"),
            ("a.", "[a.]: expected field or quoted"),
            (" ", "[ ]: expected field or quoted"),
            ("a==,b", "[a== >|,|< b]: expected value or quoted"),
            (
                r#"name=="open"#,
                r#"[name== >|"|< open]: quoted literal not terminated"#,
            ),
            (r#"a=="\q""#, r#"[a== >|"|< \q"]: illegal escape sequence"#),
            (
                r#"a=="\x4""#,
                r#"[a== >|"|< \x4"]: illegal numeric escape sequence"#,
            ),
            (
                r#"a=="\777""#,
                r#"[a== >|"|< \777"]: unquoting failed: quote syntax error"#,
            ),
            ("a==/x/", "[a== >|/|< x/]: invalid quote encountered"),
            ("/x/==a", "[ >|/|< x/==a]: invalid quote encountered"),
            // Before the 1.7 grammar, `-` is no field character.
            (
                "my-label",
                "[my >|-|< label]: expected an operator (\"==\"|\"!=\"|\"~=\")",
            ),
        ];
        for (filter, expected) in cases {
            assert_eq!(
                parse_error(filter),
                format!("filters: parse error: {expected}"),
                "{filter}"
            );
        }
    }

    #[test]
    fn quoting_and_white_space() {
        assert!(m(&[r#"labels."x.y" == "1""#]));
        assert!(m(&[" name==a/b:c"]));
        assert!(m(&["type~=/^io[.]containerd/"]));
        // containerd knows no `\.` escape, not even between slashes.
        assert!(Filter::parse_all(&[r"type~=/^io\.containerd/"]).is_err());
        assert!(m(&["type~=|snapshotter.v1$|"]));
        assert!(!m(&["type~=|^snapshotter|"]));
        assert!(m(&[r#"name=="\x61/b\072c""#]));
        assert!(m(&[r#"name=="\u0061/b:c""#]));
        assert!(m(&["name==a/b:c,labels.x.y==1"]));
        // Values hold anything printable but `,`.
        assert!(!m(&["name==a/b:c=d"]));
        // Only an empty filter matches all; other filters still parse.
        assert!(m(&["", "nope"]));
    }
}
