//! Prometheus metrics of the controllers, served on `/metrics`.
//!
//! | metric | labels | meaning |
//! |---|---|---|
//! | `hermes_operator_reconciles_total` | `controller` | reconciles started |
//! | `hermes_operator_reconcile_errors_total` | `controller`, `error` | reconciles that failed, by error kind |
//! | `hermes_operator_reconcile_duration_seconds` | `controller` | how long reconciles took |
//! | `hermes_operator_leader` | | 1 while this replica holds the Lease |

use std::sync::atomic::AtomicI64;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The labels of the per-controller series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `customer` or `platformconnection`.
    pub controller: &'static str,
}

/// The labels of the error series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `customer` or `platformconnection`.
    pub controller: &'static str,
    /// The error variant, e.g. `StateWriteFailed`.
    pub error: &'static str,
}

/// Reconcile durations from 5 ms to about 40 s.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The operator's metrics and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    leader: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hermes_operator");

        let reconciles = Family::<ControllerLabels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles started, per controller",
            reconciles.clone(),
        );

        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, per controller and error kind",
            errors.clone(),
        );

        let durations = Family::<ControllerLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long reconciles took, per controller",
            durations.clone(),
        );

        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );

        Self {
            registry,
            reconciles,
            errors,
            durations,
            leader,
        }
    }
}

impl Metrics {
    /// Counts a reconcile of `controller` and returns a guard that records
    /// its duration when dropped.
    pub fn reconcile_started(&self, controller: &'static str) -> ReconcileTimer<'_> {
        self.reconciles
            .get_or_create(&ControllerLabels { controller })
            .inc();
        ReconcileTimer {
            metrics: self,
            controller,
            started: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, controller: &'static str, error: &'static str) {
        self.errors
            .get_or_create(&ErrorLabels { controller, error })
            .inc();
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// The metrics in the Prometheus text format.
    ///
    /// # Errors
    ///
    /// Only if formatting into a `String` fails, which it does not.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Records a reconcile's duration when dropped.
#[derive(Debug)]
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    controller: &'static str,
    started: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        let labels = ControllerLabels {
            controller: self.controller,
        };
        self.metrics
            .durations
            .get_or_create(&labels)
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconcile_is_counted_and_timed_per_controller() {
        let metrics = Metrics::default();

        drop(metrics.reconcile_started("customer"));
        metrics.reconcile_failed("customer", "StateWriteFailed");
        metrics.set_leader(true);

        let text = metrics.render().expect("rendering into a String succeeds");
        assert!(
            text.contains(r#"hermes_operator_reconciles_total{controller="customer"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"hermes_operator_reconcile_errors_total{controller="customer",error="StateWriteFailed"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"hermes_operator_reconcile_duration_seconds_count{controller="customer"} 1"#),
            "{text}"
        );
        assert!(text.contains("hermes_operator_leader 1"), "{text}");
    }
}
