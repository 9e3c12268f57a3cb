//! How the ramp went: the rate the first starts actually achieved.

use std::time::Duration;

/// Sustained rate of a sequence of start instants (sorted, from the ramp's start): the inverse
/// of the least-squares slope of start time against start number.
///
/// A drifting schedule (the reference tool's sequential sleeps) shows as a lower slope; a few
/// late starts on a busy machine do not dominate it the way they would a first-to-last
/// quotient. How late the latest start was is reported separately (`ramp_lag_max`).
#[must_use]
#[allow(clippy::cast_precision_loss)]
pub fn achieved_rate(starts: &[Duration]) -> Option<f64> {
    let n = starts.len();
    if n < 2 {
        return None;
    }
    let mean_i = (n - 1) as f64 / 2.0;
    let mean_t = starts.iter().map(Duration::as_secs_f64).sum::<f64>() / n as f64;
    let (mut cov, mut var) = (0.0, 0.0);
    for (i, t) in starts.iter().enumerate() {
        let di = i as f64 - mean_i;
        cov += di * (t.as_secs_f64() - mean_t);
        var += di * di;
    }
    let slope = cov / var;
    (slope > 0.0).then(|| 1.0 / slope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn achieved_rate_sees_drift_but_not_one_late_start() {
        // Sequential sleeps of interval + jitter (the reference's way) drift: 20 % low.
        let drifting: Vec<Duration> = (0..100).map(|i| Duration::from_millis(i * 250)).collect();
        assert!((achieved_rate(&drifting).unwrap() - 4.0).abs() < 1e-9);
        // On schedule at 5/s but the last start 300 ms late.
        let mut late: Vec<Duration> = (0..100).map(|i| Duration::from_millis(i * 200)).collect();
        late[99] += Duration::from_millis(300);
        let r = achieved_rate(&late).unwrap();
        assert!((r / 5.0 - 1.0).abs() < 0.01, "{r}");
    }
    #[test]
    fn achieved_rate_edge_cases() {
        assert_eq!(achieved_rate(&[]), None);
        assert_eq!(achieved_rate(&[Duration::ZERO]), None);
        assert_eq!(achieved_rate(&[Duration::ZERO, Duration::from_millis(500)]), Some(2.0));
    }
}
