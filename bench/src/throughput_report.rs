//! Markdown tables comparing rcontainerd with containerd figure by figure, where higher is better.

use crate::stats::{ratios, Spread};
use std::fmt::Write;

/// One measured figure: a value per round for each daemon.
pub struct Row {
    pub label: String,
    pub unit: &'static str,
    pub ours: Vec<f64>,
    pub theirs: Vec<f64>,
    /// The ratio ours / containerd the issue asks for, if any.
    pub aim: Option<f64>,
}

pub fn table(ours_name: &str, theirs_name: &str, rows: &[Row]) -> String {
    let mut out = format!(
        "| figure | unit | {ours_name} min / median / max | {theirs_name} min / median / max \
         | ratio min / median / max (round by round) | aim | met (median) |\n\
         |---|---|---:|---:|---:|---:|---|\n"
    );
    for row in rows {
        let ratio = Spread::of(&ratios(&row.ours, &row.theirs));
        let (aim, met) = match (row.aim, ratio) {
            (Some(aim), Some(r)) => (
                format!("≥ {aim}×"),
                if r.median >= aim { "yes" } else { "no" },
            ),
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
            aim: Some(2.0),
        }];
        let text = table("a", "b", &rows);
        assert!(
            text.contains("| x | ops/s | 10.0 / 20.0 / 30.0 | 10.0 / 10.0 / 10.0 | 1.00 / 2.00 / 3.00 | ≥ 2× | yes |"),
            "{text}"
        );
    }
}
