//! The filter parser: any list of strings parses or fails with an InvalidArgument, never panics;
//! a filter that parsed matches any object without panicking.

use arbitrary::{Arbitrary, Unstructured};
use rcontainerd_pkg::errdefs::Kind;
use rcontainerd_pkg::filters::{Fields, Filter};

/// Pieces filters are made of, so that random inputs are mostly near-valid ones.
const PIECES: &[&str] = &[
    "name",
    "labels",
    ".",
    "\"",
    "'",
    "==",
    "!=",
    "~=",
    "=",
    "!",
    "~",
    ",",
    "/",
    "|",
    "^",
    "$",
    "a",
    "b.c",
    "x y",
    "\\",
    "\"a.b\"",
    "[",
    "(",
    "*",
    "+",
    "?",
    "{2}",
    "é",
    "\u{0}",
    " ",
    "\t",
    "labels.\"k\"",
    "id",
    "topic",
    "/^a|b$/",
    "|x|",
];

#[derive(Debug, Arbitrary)]
enum Piece {
    Known(u8),
    Raw(String),
}

/// One filter string of a request.
fn filter_string(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let pieces: Vec<Piece> = u.arbitrary()?;
    Ok(pieces
        .into_iter()
        .map(|p| match p {
            Piece::Known(i) => PIECES[i as usize % PIECES.len()].to_string(),
            Piece::Raw(s) => s,
        })
        .collect())
}

/// An object whose every field is present, with a value from the input.
struct AnyFields(Vec<String>);

impl Fields for AnyFields {
    fn field(&self, path: &[String]) -> Option<String> {
        if self.0.is_empty() {
            return None;
        }
        let i = path.iter().map(String::len).sum::<usize>() % self.0.len();
        Some(self.0[i].clone())
    }
}

/// One case: parse the filters the bytes describe, then match them.
pub fn case(bytes: &[u8]) {
    let mut u = Unstructured::new(bytes);
    let count = u.int_in_range(0..=3).unwrap_or(0);
    let mut filters = Vec::new();
    for _ in 0..count {
        match filter_string(&mut u) {
            Ok(f) => filters.push(f),
            Err(_) => break,
        }
    }
    let values: Vec<String> = u.arbitrary().unwrap_or_default();
    match Filter::parse_all(&filters) {
        Ok(filter) => {
            let _ = filter.matches(&AnyFields(values));
        }
        Err(e) => assert_eq!(e.kind, Kind::InvalidArgument, "{filters:?}: {e:?}"),
    }
}
