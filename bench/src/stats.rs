//! Summaries of repeated measurements.

/// Smallest, middle and largest of a set of measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values; the median of an even count is the mean of the two middle values.
    pub fn of(values: &[f64]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => return None,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Some(Self {
            min: sorted[0],
            median,
            max: sorted[n - 1],
        })
    }
}

/// `a[i] / b[i]` for each pair (pairs are runs taken back to back).
pub fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(a, b)| a / b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_odd_and_even_counts() {
        let odd = Spread::of(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((odd.min, odd.median, odd.max), (1.0, 3.0, 5.0));
        let even = Spread::of(&[4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!((even.min, even.median, even.max), (1.0, 3.0, 10.0));
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn ratios_pair_values_by_position() {
        assert_eq!(ratios(&[1.0, 6.0], &[4.0, 3.0]), vec![0.25, 2.0]);
    }
}
