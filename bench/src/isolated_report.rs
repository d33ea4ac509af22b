//! The isolated-driver subject (`--isolated`) against the same daemon with its drivers in-process
//! and against containerd, figure by figure, each against the aim for isolation.

use crate::throughput_report::{table, Aim, Row};

/// Where the subjects stand in a plan's list: the two-daemon benchmarks' pair first, so their
/// reports are unchanged, and the isolated subject after them.
pub const IN_PROCESS: usize = 0;
pub const CONTAINERD: usize = 1;
pub const ISOLATED: usize = 2;

/// Snapshot operations: at most 15 % slower than in-process, i.e. a throughput of at least
/// 1 / 1.15 of it.
pub const SNAPSHOT_AIM: Aim = Aim::AtLeast(0.87);
/// The large write: at most 10 % slower (1 / 1.1).
pub const LARGE_WRITE_AIM: Aim = Aim::AtLeast(0.91);
/// Against containerd: still ahead on every figure.
const CONTAINERD_AIM: Aim = Aim::AtLeast(1.0);

/// One throughput figure: its values per round for every subject (`values[s][r]`), and the least
/// ratio isolated / in-process the issue accepts, if it names one.
pub struct Figure {
    pub label: String,
    pub unit: &'static str,
    pub values: Vec<Vec<f64>>,
    pub aim: Option<Aim>,
}

/// The two tables (isolated / in-process, isolated / containerd), or nothing when the plan has no
/// isolated subject.
pub fn render(names: &[String], figures: &[Figure]) -> String {
    if names.len() <= ISOLATED {
        return String::new();
    }
    let versus = |other: usize, aim: &dyn Fn(&Figure) -> Option<Aim>| -> Vec<Row> {
        figures
            .iter()
            .map(|f| Row {
                label: f.label.clone(),
                unit: f.unit,
                ours: f.values[ISOLATED].clone(),
                theirs: f.values[other].clone(),
                aim: aim(f),
            })
            .collect()
    };
    let mut out = String::from("\nIsolated drivers against the same drivers in-process:\n\n");
    out.push_str(&table(
        &names[ISOLATED],
        &names[IN_PROCESS],
        &versus(IN_PROCESS, &|f| f.aim),
    ));
    out.push_str("\nIsolated drivers against containerd:\n\n");
    out.push_str(&table(
        &names[ISOLATED],
        &names[CONTAINERD],
        &versus(CONTAINERD, &|_| Some(CONTAINERD_AIM)),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        ["in", "ctd", "iso"][..n]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn two_subjects_render_nothing() {
        assert_eq!(render(&names(2), &[]), "");
    }

    #[test]
    fn isolated_figures_are_paired_with_each_other_subject() {
        let figures = [Figure {
            label: "w".into(),
            unit: "MB/s",
            values: vec![vec![100.0], vec![50.0], vec![90.0]],
            aim: Some(LARGE_WRITE_AIM),
        }];
        let text = render(&names(3), &figures);
        assert!(
            text.contains("| w | MB/s | 90.0 / 90.0 / 90.0 | 100.0 / 100.0 / 100.0 | 0.90 / 0.90 / 0.90 | ≥ 0.91× | no |"),
            "{text}"
        );
        assert!(
            text.contains("| w | MB/s | 90.0 / 90.0 / 90.0 | 50.0 / 50.0 / 50.0 | 1.80 / 1.80 / 1.80 | ≥ 1× | yes |"),
            "{text}"
        );
    }
}
