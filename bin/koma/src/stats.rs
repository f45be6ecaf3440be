//! Small statistics shared by the benchmarks.

/// The `p`-quantile (0..=1) of sorted figures, nearest rank; 0 for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0).max(0.0) * p).round() as usize)
        .copied()
        .unwrap_or(0.0)
}
