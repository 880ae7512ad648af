//! The Hermes operator: two controllers that turn Customer and
//! PlatformConnection resources into the encrypted runtime state the server
//! reads.
//!
//! Where things live:
//!
//! - [`customer`] and [`connection`]: the controllers. Each has a `status`
//!   module with the pure decisions (who holds a name, whether to write,
//!   what the status says) and a `mod.rs` with the I/O around them.
//! - [`triggers`]: which objects a change to a Secret, Customer or
//!   connection re-reconciles.
//! - [`controllers`]: the watches and the two `Controller`s, run together.
//! - [`leader`]: the Lease that lets one replica run them.
//! - [`probes`] and [`metrics`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`config`]: the command line and its environment fallbacks.
//!
//! Start reading at [`connection::reconcile`]: it shows the whole path
//! from a manifest and its Secret to sealed credentials in the store.

pub mod backoff;
pub mod conditions;
pub mod config;
pub mod connection;
pub mod context;
pub mod controllers;
pub mod customer;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod probes;
pub mod telegram;
pub mod telemetry;
pub mod triggers;

#[cfg(test)]
mod fixtures;

pub use error::{Error, Result};
