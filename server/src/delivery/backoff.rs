//! How long a failed delivery waits before its next attempt.

use std::time::Duration;

/// The wait after `failed` attempts (1 after the first failure): `base`
/// doubled for each further failure, capped at `max`, with "equal jitter":
/// half of it fixed and half spread by `jitter` (a number in `[0, 1)`), so
/// the deliveries of an endpoint that came back do not all return at once.
///
/// A `Retry-After` the endpoint sent raises the wait to it, still capped at `max`.
pub fn delay(
    failed: u32,
    base: Duration,
    max: Duration,
    jitter: f64,
    retry_after: Option<Duration>,
) -> Duration {
    let doublings = failed.saturating_sub(1).min(31);
    let exponential = base.saturating_mul(1_u32 << doublings).min(max);
    let half = exponential / 2;
    let jittered = half + half.mul_f64(jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(asked) => jittered.max(asked.min(max)),
        None => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(600);

    #[test]
    fn waits_double_with_each_failure_up_to_the_cap() {
        let waits: Vec<Duration> = (1..=12)
            .map(|failed| delay(failed, BASE, MAX, 1.0, None))
            .collect();

        assert_eq!(waits[0], Duration::from_secs(1));
        assert_eq!(waits[1], Duration::from_secs(2));
        assert_eq!(waits[5], Duration::from_secs(32));
        assert_eq!(waits[11], MAX);
        assert_eq!(delay(u32::MAX, BASE, MAX, 1.0, None), MAX);
    }

    #[test]
    fn jitter_spreads_the_upper_half_only() {
        assert_eq!(delay(4, BASE, MAX, 0.0, None), Duration::from_secs(4));
        assert_eq!(delay(4, BASE, MAX, 0.5, None), Duration::from_secs(6));
        assert_eq!(
            delay(4, BASE, MAX, 7.0, None),
            Duration::from_secs(8),
            "jitter is clamped"
        );
    }

    #[test]
    fn retry_after_raises_the_wait_within_the_cap() {
        let asked = Some(Duration::from_secs(30));
        assert_eq!(delay(1, BASE, MAX, 0.0, asked), Duration::from_secs(30));
        assert_eq!(
            delay(1, BASE, Duration::from_secs(10), 0.0, asked),
            Duration::from_secs(10)
        );
    }
}
