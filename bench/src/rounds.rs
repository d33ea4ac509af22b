//! The order the subjects run in within a round. It alternates: on this machine's virtual disk
//! the first 1 GiB written after a pause goes ~30 % faster than the next (measured: the same
//! build written first and second in each round, 4 rounds either way round), so a fixed order
//! would hand the first subject an advantage that is the disk's, not the daemon's.

use crate::daemon::Subject;
use crate::workdir::WorkDir;
use anyhow::Context;

/// Indexes of `subjects` subjects in the order they run in round `round` (1-based): odd rounds
/// in the given order, even rounds reversed.
pub fn order(round: u32, subjects: usize) -> Vec<usize> {
    let forward = 0..subjects;
    if round % 2 == 1 {
        forward.collect()
    } else {
        forward.rev().collect()
    }
}

/// Measures every subject once per round, in [`order`], and returns `results[s][r]` (subject `s`,
/// round `r`). `measure(round, s, spent)` runs one measurement of `subjects[s]` and hands its run
/// directory to `spent`: run directories are removed after the last round, because deleting one
/// daemon's tens of thousands of directories while the next one runs would slow every mkdir of the
/// latter (ext4 without a journal skips recently deleted inodes when it allocates one) — the
/// benchmark's cost, not a daemon's. Each result is printed to stderr as it comes, with
/// `precision` decimals.
pub fn alternate<R: std::fmt::Debug>(
    subjects: &[Subject],
    rounds: u32,
    precision: usize,
    mut measure: impl FnMut(u32, usize, &mut Vec<WorkDir>) -> anyhow::Result<R>,
) -> anyhow::Result<Vec<Vec<R>>> {
    for subject in subjects {
        crate::boot::check_binary(subject.binary())?;
    }
    let mut results: Vec<Vec<R>> = subjects.iter().map(|_| Vec::new()).collect();
    let mut spent = Vec::new();
    for round in 1..=rounds {
        for s in order(round, subjects.len()) {
            let subject = &subjects[s];
            let result = measure(round, s, &mut spent)
                .with_context(|| format!("round {round} of {subject}"))?;
            eprintln!("round {round:>2}  {subject:<27} {result:.precision$?}");
            results[s].push(result);
        }
    }
    for dir in spent {
        dir.remove()?;
    }
    Ok(results)
}

/// How the order is described in reports.
pub fn describe(names: &[String]) -> String {
    let forward = names.join(" → ");
    let backward: Vec<&str> = names.iter().rev().map(String::as_str).collect();
    format!("odd rounds {forward}, even rounds {}", backward.join(" → "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_alternate_the_order() {
        assert_eq!(order(1, 2), [0, 1]);
        assert_eq!(order(2, 2), [1, 0]);
        assert_eq!(order(3, 2), [0, 1]);
        assert_eq!(order(4, 3), [2, 1, 0]);
        assert_eq!(
            describe(&["a".into(), "b".into()]),
            "odd rounds a → b, even rounds b → a"
        );
    }
}
