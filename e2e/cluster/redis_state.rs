//! Reading Redis as it is, bypassing Hermes' store: every key with every
//! value it holds, so the run can prove what is (and is not) in there.

use std::collections::BTreeMap;

use anyhow::Context as _;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

/// A raw view of one Redis.
#[derive(Clone)]
pub struct RedisView {
    connection: MultiplexedConnection,
}

impl std::fmt::Debug for RedisView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisView").finish_non_exhaustive()
    }
}

impl RedisView {
    /// Connects to `url`.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).context("parsing the Redis URL")?;
        let connection = client
            .get_multiplexed_async_connection()
            .await
            .context("connecting to Redis")?;
        Ok(Self { connection })
    }

    /// Every key.
    pub async fn keys(&self) -> anyhow::Result<Vec<String>> {
        let mut connection = self.connection.clone();
        let mut keys = Vec::new();
        let mut iter: redis::AsyncIter<String> = connection.scan_match("*").await?;
        while let Some(key) = iter.next_item().await {
            keys.push(key?);
        }
        keys.sort();
        Ok(keys)
    }

    /// A string key's value.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        let mut connection = self.connection.clone();
        Ok(connection.get(key).await?)
    }

    /// Every key with everything it holds, flattened to text (strings,
    /// hash fields and values, list, set and sorted-set members, stream
    /// entries).
    pub async fn dump(&self) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
        let mut connection = self.connection.clone();
        let mut dump = BTreeMap::new();
        for key in self.keys().await? {
            let kind: String = redis::cmd("TYPE").arg(&key).query_async(&mut connection).await?;
            let values: Vec<String> = match kind.as_str() {
                "string" => connection
                    .get::<_, Option<String>>(&key)
                    .await?
                    .into_iter()
                    .collect(),
                "hash" => connection
                    .hgetall::<_, BTreeMap<String, String>>(&key)
                    .await?
                    .into_iter()
                    .flat_map(|(field, value)| [field, value])
                    .collect(),
                "list" => connection.lrange(&key, 0, -1).await?,
                "set" => connection.smembers(&key).await?,
                "zset" => connection.zrange(&key, 0, -1).await?,
                "stream" => {
                    let entries: redis::Value = redis::cmd("XRANGE")
                        .arg(&key)
                        .arg("-")
                        .arg("+")
                        .query_async(&mut connection)
                        .await?;
                    vec![format!("{entries:?}")]
                }
                _ => Vec::new(),
            };
            dump.insert(key, values);
        }
        Ok(dump)
    }
}

/// The keys of a dump that hold one of `secrets` in their value or name.
pub fn keys_holding(dump: &BTreeMap<String, Vec<String>>, secrets: &[String]) -> Vec<String> {
    dump.iter()
        .filter(|(key, values)| {
            secrets.iter().any(|secret| {
                key.contains(secret.as_str()) || values.iter().any(|v| v.contains(secret.as_str()))
            })
        })
        .map(|(key, _)| key.clone())
        .collect()
}

/// The keys of a dump that belong to `customer`: per-customer keys (with
/// its hash tag), routes it owns, and API-key index entries naming it.
pub fn keys_of_customer(dump: &BTreeMap<String, Vec<String>>, customer: &str) -> Vec<String> {
    let tag = format!("{{{customer}}}");
    dump.iter()
        .filter(|(key, values)| {
            key.contains(&tag)
                || values.iter().any(|value| value == customer)
                || (key.starts_with("customer:apikey:")
                    && values.iter().any(|value| {
                        serde_json::from_str::<serde_json::Value>(value)
                            .is_ok_and(|summary| summary["id"] == customer)
                    }))
        })
        .map(|(key, _)| key.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump() -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([
            (
                "creds:{acme}:whatsapp".to_owned(),
                vec![r#"{"v":1,"kid":"k1","nonce":"n","ct":"c"}"#.to_owned()],
            ),
            ("wa_phone_id:1065".to_owned(), vec!["acme".to_owned()]),
            (
                "customer:apikey:ab".to_owned(),
                vec![r#"{"id":"globex","plan":"free","active":true}"#.to_owned()],
            ),
            (
                "conn:{globex}".to_owned(),
                vec!["whatsapp".to_owned(), "{}".to_owned()],
            ),
        ])
    }

    #[test]
    fn a_customers_keys_are_found_by_tag_route_value_and_index_entry() {
        assert_eq!(
            keys_of_customer(&dump(), "acme"),
            vec!["creds:{acme}:whatsapp", "wa_phone_id:1065"]
        );
        assert_eq!(
            keys_of_customer(&dump(), "globex"),
            vec!["conn:{globex}", "customer:apikey:ab"]
        );
    }

    #[test]
    fn plaintext_secrets_are_found_anywhere_in_a_dump() {
        assert!(keys_holding(&dump(), &["sandbox-token".to_owned()]).is_empty());
        assert_eq!(
            keys_holding(&dump(), &["kid\":\"k1".to_owned()]),
            vec!["creds:{acme}:whatsapp"]
        );
    }
}
