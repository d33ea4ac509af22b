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
//! ```
//!
//! What a field path means is up to the object: it implements [`Fields`].

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
    /// Parses the filter strings of a request. Empty strings match everything.
    pub fn parse_all<S: AsRef<str>>(filters: &[S]) -> Result<Filter> {
        let mut any = Vec::new();
        for f in filters {
            let f = f.as_ref();
            if f.trim().is_empty() {
                return Ok(Filter::default());
            }
            any.push(Parser::new(f).parse().map_err(|e| {
                Error::invalid_argument(format!("filters: parse error: [{f}]: {e}"))
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

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser { input, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.input[self.pos..]
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.input.len() - trimmed.len();
    }

    fn parse(mut self) -> std::result::Result<Vec<Selector>, String> {
        let mut selectors = Vec::new();
        loop {
            selectors.push(self.selector()?);
            self.skip_space();
            match self.rest().chars().next() {
                None => return Ok(selectors),
                Some(',') => self.pos += 1,
                Some(c) => return Err(format!("unexpected {c:?} at {}", self.pos)),
            }
        }
    }

    fn selector(&mut self) -> std::result::Result<Selector, String> {
        let path = self.field_path()?;
        self.skip_space();
        let rest = self.rest();
        let op = ["==", "!=", "~="]
            .into_iter()
            .find(|op| rest.starts_with(op));
        let Some(op) = op else {
            return Ok(Selector {
                path,
                operator: Operator::Present,
            });
        };
        self.pos += 2;
        self.skip_space();
        let value = self.value()?;
        let operator = match op {
            "==" => Operator::Equal(value),
            "!=" => Operator::NotEqual(value),
            _ => Operator::Matches(
                Regex::new(&value).map_err(|e| format!("bad regular expression {value:?}: {e}"))?,
            ),
        };
        Ok(Selector { path, operator })
    }

    fn field_path(&mut self) -> std::result::Result<Vec<String>, String> {
        let mut path = Vec::new();
        loop {
            self.skip_space();
            let part = if self.rest().starts_with('"') {
                self.quoted()?
            } else {
                let len = self
                    .rest()
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(self.rest().len());
                if len == 0 {
                    return Err("expected field or quoted".into());
                }
                let part = self.rest()[..len].to_string();
                self.pos += len;
                part
            };
            path.push(part);
            if self.rest().starts_with('.') {
                self.pos += 1;
            } else {
                return Ok(path);
            }
        }
    }

    fn value(&mut self) -> std::result::Result<String, String> {
        if self.rest().starts_with('"') {
            return self.quoted();
        }
        let len = self.rest().find(',').unwrap_or(self.rest().len());
        let value = self.rest()[..len].trim_end();
        if value.is_empty() {
            return Err("expected value or quoted".into());
        }
        self.pos += len;
        Ok(value.to_string())
    }

    /// A double-quoted string with backslash escapes.
    fn quoted(&mut self) -> std::result::Result<String, String> {
        let mut out = String::new();
        let mut chars = self.rest().char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err("unterminated quoted string".into())
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
}
