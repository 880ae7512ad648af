//! Per-object exponential backoff for retries.
//!
//! A reconcile that fails, or that waits on something outside its control
//! (a Customer that is not Ready yet), is retried after 1 s, then 2 s, 4 s …
//! up to 5 minutes. Each object keeps its own count, so one broken object
//! never slows the others; a successful reconcile resets the count.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The first retry delay.
pub const INITIAL_DELAY: Duration = Duration::from_secs(1);

/// The longest retry delay.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// The delay before retry number `attempt` (0 for the first retry).
pub fn delay(attempt: u32) -> Duration {
    // 2^9 s already exceeds the cap; clamping the exponent keeps the shift in range.
    let factor = 1_u32 << attempt.min(9);
    INITIAL_DELAY.saturating_mul(factor).min(MAX_DELAY)
}

/// Retry counts per object, keyed by `namespace/name`.
#[derive(Debug, Default)]
pub struct Backoff {
    attempts: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// The delay before the next retry of `key`, counting this retry.
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut attempts = self.lock();
        let attempt = attempts.entry(key.to_owned()).or_insert(0);
        let wait = delay(*attempt);
        *attempt = attempt.saturating_add(1);
        wait
    }

    /// Forgets the retries of `key` after it reconciled successfully.
    pub fn reset(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A panic while holding this lock leaves only counters behind, which
        // are still usable: recover them instead of propagating the poison.
        self.attempts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_one_second_up_to_five_minutes() {
        let delays: Vec<u64> = (0..12).map(|attempt| delay(attempt).as_secs()).collect();

        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn each_object_backs_off_on_its_own_and_success_resets_it() {
        let backoff = Backoff::default();

        let first = [
            backoff.next_delay("ns/a"),
            backoff.next_delay("ns/a"),
            backoff.next_delay("ns/a"),
        ];
        let other = backoff.next_delay("ns/b");
        backoff.reset("ns/a");
        let after_reset = backoff.next_delay("ns/a");

        assert_eq!(first.map(|d| d.as_secs()), [1, 2, 4]);
        assert_eq!(other, INITIAL_DELAY);
        assert_eq!(after_reset, INITIAL_DELAY);
    }
}
