//! One connection type over a single Redis and a Redis Cluster.
//!
//! Both kinds implement [`ConnectionLike`], and so does [`Connection`], by
//! handing each command to the kind it holds: the store builds commands,
//! pipelines and script calls once and runs them on either. On a cluster
//! each command goes to the node owning its key's slot; every key of one
//! customer shares a hash tag, so a pipeline or a script over them stays on
//! one node.
//!
//! The one command that does not route by key is `SCAN`, which walks a
//! single node's keyspace: [`Connection::scan_page`] sends it to the node
//! that owns a given slot.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};

/// How long to wait for a TCP connection to a Redis node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait for the answer to one command. Every command the store
/// sends is bounded (no blocking reads, `SCAN` pages of bounded size).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a single-Redis connection retries to connect (with exponential
/// backoff from 100 ms) before the command waiting for it fails. Each later
/// command starts a new round, so a Redis that comes back is picked up; a
/// caller facing a Redis that is down gets an error in under a second rather
/// than after a long hang.
const CONNECT_RETRIES: usize = 3;

/// How many keys one `SCAN` step inspects.
const SCAN_COUNT: usize = 1000;

/// A connection to a single Redis or to a Redis Cluster. Cheap to clone:
/// clones share the underlying connections.
#[derive(Clone)]
pub(super) enum Connection {
    /// One Redis, through a manager that reconnects after failures.
    Single(ConnectionManager),
    /// A Redis Cluster, with connections to every master and a slot map.
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects to one Redis at `url`.
    pub(super) async fn single(url: &str) -> RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(CONNECT_RETRIES);
        let manager = client.get_connection_manager_with_config(config).await?;
        Ok(Self::Single(manager))
    }

    /// Connects to the Redis Cluster that `seeds` belong to.
    pub(super) async fn cluster(seeds: &[&str]) -> RedisResult<Self> {
        let client = ClusterClientBuilder::new(seeds.iter().copied())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .build()?;
        Ok(Self::Cluster(client.get_async_connection().await?))
    }

    /// A short name of the connection kind, for `Debug`.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Single(_) => "single",
            Self::Cluster(_) => "cluster",
        }
    }

    /// One `SCAN` step over the keys matching `pattern`, on the node that
    /// holds `slot_key` (on a single Redis, on that Redis). Returns the next
    /// cursor (0 when the walk is over) and the keys found.
    ///
    /// On a cluster the walk covers only that node, which is complete for a
    /// pattern whose keys all share `slot_key`'s hash tag, unless the slot
    /// migrates to another node during the walk.
    pub(super) async fn scan_page(
        &mut self,
        cursor: u64,
        pattern: &str,
        slot_key: &str,
    ) -> RedisResult<(u64, Vec<String>)> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        match self {
            Self::Single(manager) => scan.query_async(manager).await,
            Self::Cluster(cluster) => {
                let node = Route::with_key(slot_key, SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(node));
                let reply = cluster.route_command(scan, routing).await?;
                Ok(redis::from_redis_value(reply)?)
            }
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(manager) => manager.req_packed_command(cmd),
            Self::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(manager) => manager.req_packed_commands(pipeline, offset, count),
            Self::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(manager) => manager.get_db(),
            Self::Cluster(cluster) => cluster.get_db(),
        }
    }
}
