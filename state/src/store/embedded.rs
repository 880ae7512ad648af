//! The in-process store for `dev` mode and tests.

/// Placeholder until the embedded store lands.
#[derive(Debug, Default)]
pub struct EmbeddedStore;
