//! The Redis store: one Redis or a Redis Cluster.

/// Placeholder until the Redis store lands.
#[derive(Debug)]
pub struct RedisStore;
