//! Medians and latency percentiles.

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Percentiles {
    /// Percentiles of latency samples in nanoseconds (nearest rank).
    pub fn of(samples: &mut [u64]) -> Percentiles {
        samples.sort_unstable();
        let at = |q: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            samples[rank - 1] as f64 / 1_000.0
        };
        Percentiles { p50: at(0.50), p99: at(0.99), p999: at(0.999) }
    }

    /// The median of each percentile over several runs.
    pub fn median_of(runs: &[Percentiles]) -> Percentiles {
        Percentiles {
            p50: median(runs.iter().map(|p| p.p50)),
            p99: median(runs.iter().map(|p| p.p99)),
            p999: median(runs.iter().map(|p| p.p999)),
        }
    }
}

/// The median (the mean of the middle two for an even count; 0 for none).
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median([]), 0.0);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut samples: Vec<u64> = (1..=1000).map(|i| i * 1_000).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!((p.p50, p.p99, p.p999), (500.0, 990.0, 999.0));
    }
}
