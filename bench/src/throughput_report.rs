//! Markdown tables comparing rcontainerd with containerd figure by figure, each against the ratio
//! the issue aims at (higher is better for throughputs, lower for times).

use crate::stats::{ratios, Spread};
use std::fmt::Write;

/// One measured figure: a value per round for each daemon.
pub struct Row {
    pub label: String,
    pub unit: &'static str,
    pub ours: Vec<f64>,
    pub theirs: Vec<f64>,
    /// The ratio ours / containerd the issue asks for, if any.
    pub aim: Option<Aim>,
}

/// The ratio ours / containerd a figure should reach.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aim {
    /// At least this (throughputs).
    AtLeast(f64),
    /// At most this (times, memory).
    AtMost(f64),
}

impl Aim {
    fn text(self) -> String {
        match self {
            Aim::AtLeast(aim) => format!("≥ {aim}×"),
            Aim::AtMost(aim) => format!("≤ {aim}×"),
        }
    }

    fn met(self, ratio: f64) -> bool {
        match self {
            Aim::AtLeast(aim) => ratio >= aim,
            Aim::AtMost(aim) => ratio <= aim,
        }
    }
}

pub fn table(ours_name: &str, theirs_name: &str, rows: &[Row]) -> String {
    table_paired(ours_name, theirs_name, rows, "round by round")
}

/// [`table`], saying how the values of a row were paired into ratios (`pairing`).
pub fn table_paired(ours_name: &str, theirs_name: &str, rows: &[Row], pairing: &str) -> String {
    let mut out = format!(
        "| figure | unit | {ours_name} min / median / max | {theirs_name} min / median / max \
         | ratio min / median / max ({pairing}) | aim | met (median) |\n\
         |---|---|---:|---:|---:|---:|---|\n"
    );
    for row in rows {
        let ratio = Spread::of(&ratios(&row.ours, &row.theirs));
        let (aim, met) = match (row.aim, ratio) {
            (Some(aim), Some(r)) => (aim.text(), if aim.met(r.median) { "yes" } else { "no" }),
            _ => ("–".to_string(), "–"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {aim} | {met} |",
            row.label,
            row.unit,
            spread(&row.ours, 1),
            spread(&row.theirs, 1),
            spread_ratio(ratio),
        );
    }
    out
}

pub fn spread(values: &[f64], decimals: usize) -> String {
    match Spread::of(values) {
        Some(s) => format!(
            "{:.*} / {:.*} / {:.*}",
            decimals, s.min, decimals, s.median, decimals, s.max
        ),
        None => "–".to_string(),
    }
}

fn spread_ratio(ratio: Option<Spread>) -> String {
    match ratio {
        Some(s) => format!("{:.2} / {:.2} / {:.2}", s.min, s.median, s.max),
        None => "–".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pairs_rounds_and_judges_the_median_ratio() {
        let rows = [Row {
            label: "x".into(),
            unit: "ops/s",
            ours: vec![10.0, 30.0, 20.0],
            theirs: vec![10.0, 10.0, 10.0],
            aim: Some(Aim::AtLeast(2.0)),
        }];
        let text = table("a", "b", &rows);
        assert!(
            text.contains("| x | ops/s | 10.0 / 20.0 / 30.0 | 10.0 / 10.0 / 10.0 | 1.00 / 2.00 / 3.00 | ≥ 2× | yes |"),
            "{text}"
        );
    }

    #[test]
    fn lower_is_better_aims_are_met_at_or_below_the_ratio() {
        let rows = [Row {
            label: "t".into(),
            unit: "ms",
            ours: vec![3.0, 2.0],
            theirs: vec![10.0, 10.0],
            aim: Some(Aim::AtMost(0.3)),
        }];
        let text = table("a", "b", &rows);
        assert!(
            text.contains("| t | ms | 2.0 / 2.5 / 3.0 | 10.0 / 10.0 / 10.0 | 0.20 / 0.25 / 0.30 | ≤ 0.3× | yes |"),
            "{text}"
        );
    }
}
