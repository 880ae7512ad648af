//! The contract between the Hermes operator and server.
//!
//! The operator writes tenant configuration; the server reads it and writes
//! usage, audit and inbox events. Everything both sides must agree on lives
//! here:
//!
//! - [`keyspace`] spells every Redis key, in one place.
//! - [`vault`] seals credentials with AES-256-GCM under a rotating keyring.
//! - [`store`] is the [`Store`](store::Store) trait with its Redis and
//!   embedded implementations.
//! - [`sql`] is the customers table and the usage ledger (MySQL or SQLite).
//! - [`tenancy`] turns Customer and PlatformConnection resources into the
//!   state to write, shared by the operator and `dev` mode.
//!
//! Start with [`tenancy`] to see what a connection becomes, then [`store`].

pub mod clock;
pub mod id;
pub mod keyspace;
pub mod sql;
pub mod store;
pub mod tenancy;
pub mod vault;

pub use id::{ApiKeyHash, CustomerId, InvalidCustomerId};
