//! Pure planning: what a Customer or PlatformConnection becomes in the store.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hermes_crds::{Customer, Platform, PlatformConnection, PlatformConnectionSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use zeroize::Zeroizing;

use super::credentials::to_json;
use super::{Credentials, SecretData, TenancyError, secret_requirements};
use crate::CustomerId;
use crate::keyspace;
use crate::store::{CustomerSummary, Route};
use crate::vault::Keyring;

/// What every generated API key starts with, so a leaked key is recognisable
/// to secret scanners.
pub const API_KEY_PREFIX: &str = "hk_";

/// How many random bytes a generated API key carries (256 bits).
const API_KEY_RANDOM_BYTES: usize = 32;

/// The length of those bytes in unpadded base64: ⌈32 × 4 / 3⌉.
const API_KEY_ENCODED_LEN: usize = 43;

/// The longest route id: a Telegram id is a namespace (63), a dot and a name (253).
const MAX_ROUTE_ID_LEN: usize = 317;

/// The namespace of a resource whose manifest names none, as `kubectl apply` assumes.
const DEFAULT_NAMESPACE: &str = "default";

/// What one PlatformConnection becomes: sealed credentials and inbound routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionPlan {
    /// The customer the connection belongs to.
    pub customer: CustomerId,
    /// The platform it reaches.
    pub platform: Platform,
    /// The plaintext document to seal into `creds:{<customer>}:<platform>`.
    pub credentials: Credentials,
    /// The inbound routes to claim for the customer, sorted.
    pub routes: Vec<Route>,
}

/// The input of a fingerprint, serialized canonically.
#[derive(Serialize)]
struct FingerprintInput<'a> {
    customer: &'a CustomerId,
    credentials: &'a Credentials,
    routes: &'a [Route],
}

impl ConnectionPlan {
    /// Whether the connection is a sandbox.
    pub fn sandbox(&self) -> bool {
        self.credentials.sandbox
    }

    /// A digest of what [`apply_connection`](super::apply_connection) would
    /// write, keyed under the keyring's primary key and prefixed with its id.
    ///
    /// Equal plans give equal fingerprints under one primary key, so a
    /// controller compares it with the one in status and skips the write
    /// when nothing changed. A rotated primary key changes every
    /// fingerprint, so rotation rewrites every connection under the new key.
    /// The digest reveals nothing of the credentials without the key, and
    /// two customers with the same token get different fingerprints.
    pub fn fingerprint(&self, keyring: &Keyring) -> String {
        let input = FingerprintInput {
            customer: &self.customer,
            credentials: &self.credentials,
            routes: &self.routes,
        };
        keyring.fingerprint(&to_json(&input))
    }

    /// The routes as their store keys (`wa_phone_id:…`), for status.
    pub fn route_keys(&self) -> Vec<String> {
        self.routes.iter().map(keyspace::route).collect()
    }
}

/// Turns a PlatformConnection, its Customer and the fields of the Secret its
/// `spec.secretRef` names into the state to write.
///
/// `secret` is that Secret as the caller read it, `None` when the spec names
/// no Secret or the Secret does not exist. Only fields the platform knows
/// (see [`secret_requirements`]) are kept; blank ones count as absent.
///
/// Checks, in order, each failing with its own [`TenancyError`]:
///
/// 1. `spec.customerRef` names this Customer, in the connection's namespace.
/// 2. The Customer's name is a valid [`CustomerId`].
/// 3. The spec carries the block of its platform and no other block (the
///    CRD's CEL rules check this too; `dev` mode has no API server to).
/// 4. Route ids and `spec.apiBase` are well formed.
/// 5. A connection that is not a sandbox has a Secret with every required
///    field. A sandbox needs no Secret, and a Secret it has is used as far
///    as it goes.
///
/// No error carries a secret value.
pub fn plan_connection(
    customer: &Customer,
    connection: &PlatformConnection,
    secret: Option<&SecretData>,
) -> Result<ConnectionPlan, TenancyError> {
    let spec = &connection.spec;
    let platform = spec.platform;

    let customer_name = customer.metadata.name.as_deref().unwrap_or_default();
    if spec.customer_ref != customer_name {
        return Err(TenancyError::CustomerRefMismatch {
            customer_ref: spec.customer_ref.clone(),
            customer: customer_name.to_owned(),
        });
    }
    let connection_namespace = namespace_of(&connection.metadata);
    let customer_namespace = namespace_of(&customer.metadata);
    if connection_namespace != customer_namespace {
        return Err(TenancyError::NamespaceMismatch {
            connection_namespace: connection_namespace.to_owned(),
            customer_namespace: customer_namespace.to_owned(),
        });
    }
    let customer_id = CustomerId::new(customer_name)?;

    let settings = platform_settings(spec)?;
    let routes = routes_of(connection)?;
    if let Some(api_base) = &spec.api_base {
        check_api_base(api_base)?;
    }

    let secrets = secret_fields(spec, secret)?;

    Ok(ConnectionPlan {
        customer: customer_id,
        platform,
        credentials: Credentials {
            platform,
            sandbox: spec.sandbox,
            api_base: spec.api_base.clone(),
            settings,
            secrets,
        },
        routes,
    })
}

/// The id of a Telegram connection's route: `<namespace>.<name>` of the
/// PlatformConnection.
///
/// Telegram webhooks carry no account id Hermes could route by, so the
/// server registers `/webhook/telegram/<this id>` with the Bot API and
/// resolves the customer from the `tg_connection:<this id>` route. The id
/// is unambiguous (a namespace has no dots) and URL-safe (object names are
/// lowercase alphanumerics, `-` and `.`). It is not a secret: the webhook is
/// authenticated by the connection's `webhookSecretToken`.
///
/// # Errors
///
/// [`TenancyError::NameMissing`] when the connection has no name.
pub fn telegram_connection_id(connection: &PlatformConnection) -> Result<String, TenancyError> {
    let name = connection
        .metadata
        .name
        .as_deref()
        .filter(|name| !name.is_empty())
        .ok_or(TenancyError::NameMissing {
            kind: "PlatformConnection",
        })?;
    Ok(format!("{}.{name}", namespace_of(&connection.metadata)))
}

/// Parses a route key as [`ConnectionPlan::route_keys`] writes it back into
/// a [`Route`]; `None` for anything else.
pub fn route_from_key(key: &str) -> Option<Route> {
    Platform::ALL.into_iter().find_map(|platform| {
        let prefix = keyspace::route(&Route {
            platform,
            id: String::new(),
        });
        let id = key.strip_prefix(&prefix).filter(|id| !id.is_empty())?;
        Some(Route {
            platform,
            id: id.to_owned(),
        })
    })
}

/// What the API-key index stores for a Customer: its id, plan, whether it is
/// active (not suspended) and its limit overrides.
///
/// # Errors
///
/// [`TenancyError::InvalidCustomerId`] when the name is not a valid id.
pub fn customer_summary(customer: &Customer) -> Result<CustomerSummary, TenancyError> {
    let id = CustomerId::new(customer.metadata.name.as_deref().unwrap_or_default())?;
    let limits = customer.spec.limits.clone().unwrap_or_default();
    Ok(CustomerSummary {
        id,
        plan: customer.spec.plan,
        active: !customer.spec.suspended,
        requests_per_minute: limits.requests_per_minute,
        tool_calls_per_month: limits.tool_calls_per_month,
    })
}

/// A new API key: [`API_KEY_PREFIX`] and 32 random bytes from the thread's
/// cryptographically secure generator, URL-safe base64 without padding
/// (46 characters in all).
pub fn generate_api_key() -> Zeroizing<String> {
    let mut random = Zeroizing::new([0u8; API_KEY_RANDOM_BYTES]);
    rand::fill(&mut random[..]);

    let mut key = Zeroizing::new(String::with_capacity(API_KEY_PREFIX.len() + API_KEY_ENCODED_LEN));
    key.push_str(API_KEY_PREFIX);
    URL_SAFE_NO_PAD.encode_string(&random[..], &mut key);
    key
}

/// The namespace a resource lives in, defaulted as `kubectl` does.
fn namespace_of(metadata: &ObjectMeta) -> &str {
    metadata
        .namespace
        .as_deref()
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
}

/// The spec's platform block as camelCase JSON, after checking it is the
/// only block and belongs to `spec.platform`.
fn platform_settings(spec: &PlatformConnectionSpec) -> Result<serde_json::Value, TenancyError> {
    // Serializing these plain structs cannot fail; `Value` has a variant for everything they hold.
    fn json(block: impl Serialize) -> serde_json::Value {
        serde_json::to_value(block).expect("settings structs serialize to JSON")
    }

    let blocks: [(Platform, Option<serde_json::Value>); 8] = [
        (Platform::Email, spec.email.as_ref().map(json)),
        (Platform::Whatsapp, spec.whatsapp.as_ref().map(json)),
        (Platform::Linkedin, spec.linkedin.as_ref().map(json)),
        (Platform::Telegram, spec.telegram.as_ref().map(json)),
        (Platform::Discord, spec.discord.as_ref().map(json)),
        (Platform::Instagram, spec.instagram.as_ref().map(json)),
        (Platform::X, spec.x.as_ref().map(json)),
        (Platform::Obsidian, spec.obsidian.as_ref().map(json)),
    ];

    let mut own = None;
    let mut foreign = Vec::new();
    for (platform, block) in blocks {
        match block {
            Some(block) if platform == spec.platform => own = Some(block),
            Some(_) => foreign.push(platform),
            None => {}
        }
    }

    if !foreign.is_empty() {
        return Err(TenancyError::PlatformBlockMismatch {
            platform: spec.platform,
            blocks: foreign,
        });
    }
    own.ok_or(TenancyError::PlatformBlockMissing {
        platform: spec.platform,
    })
}

/// The inbound routes of a connection whose platform block has been checked.
fn routes_of(connection: &PlatformConnection) -> Result<Vec<Route>, TenancyError> {
    let spec = &connection.spec;
    let route = |id: String, field: &'static str| -> Result<Vec<Route>, TenancyError> {
        check_route_id(&id, field)?;
        Ok(vec![Route {
            platform: spec.platform,
            id,
        }])
    };

    match (spec.platform, &spec.whatsapp, &spec.instagram) {
        (Platform::Whatsapp, Some(whatsapp), _) => {
            route(whatsapp.phone_number_id.clone(), "spec.whatsapp.phoneNumberId")
        }
        (Platform::Instagram, _, Some(instagram)) => {
            route(instagram.user_id.clone(), "spec.instagram.userId")
        }
        (Platform::Telegram, _, _) => route(telegram_connection_id(connection)?, "metadata.name"),
        _ => Ok(Vec::new()),
    }
}

/// Route ids become part of a store key and, for Telegram, of a URL path.
fn check_route_id(id: &str, field: &'static str) -> Result<(), TenancyError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if (1..=MAX_ROUTE_ID_LEN).contains(&id.len()) && id.chars().all(allowed) {
        Ok(())
    } else {
        Err(TenancyError::InvalidSetting {
            field,
            reason: format!("must be 1 to {MAX_ROUTE_ID_LEN} characters of A-Z, a-z, 0-9, '.', '_' or '-'"),
        })
    }
}

fn check_api_base(api_base: &str) -> Result<(), TenancyError> {
    let rest = api_base
        .strip_prefix("https://")
        .or_else(|| api_base.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !api_base.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(TenancyError::InvalidSetting {
            field: "spec.apiBase",
            reason: "must be an http:// or https:// URL".into(),
        }),
    }
}

/// The secret fields to seal, after checking a non-sandbox connection has all it needs.
fn secret_fields(
    spec: &PlatformConnectionSpec,
    secret: Option<&SecretData>,
) -> Result<BTreeMap<String, String>, TenancyError> {
    let requirements = secret_requirements(spec.platform);

    let Some(secret) = secret else {
        if spec.sandbox {
            return Ok(BTreeMap::new());
        }
        return Err(TenancyError::SecretRequired {
            platform: spec.platform,
            secret_name: spec.secret_ref.as_ref().map(|secret_ref| secret_ref.name.clone()),
        });
    };

    if !spec.sandbox
        && let Some(missing) = requirements.missing(|field| secret.non_blank(field).is_some())
    {
        return Err(TenancyError::MissingSecretFields {
            platform: spec.platform,
            fields: missing.into_iter().map(str::to_owned).collect(),
        });
    }

    Ok(requirements
        .known_fields()
        .filter_map(|field| Some((field.to_owned(), secret.non_blank(field)?.to_owned())))
        .collect())
}

#[cfg(test)]
mod tests;
