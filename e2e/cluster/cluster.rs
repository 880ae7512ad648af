//! Talking to the cluster: installing the CRDs, applying manifests,
//! waiting for readiness, creating and deleting test objects.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use hermes_crds::{Customer, PlatformConnection};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The field manager of everything the run applies.
pub const FIELD_MANAGER: &str = "hermes-cluster-e2e";

/// How often readiness is polled.
pub const POLL: Duration = Duration::from_secs(1);

/// Server-side applies `object` (forced: the run owns what it applies).
pub async fn apply<K>(api: &Api<K>, object: &K) -> anyhow::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let name = object
        .meta()
        .name
        .clone()
        .context("an applied object has a name")?;
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .with_context(|| format!("applying {} {name}", K::kind(&())))
}

/// Installs (or updates) both CRDs and waits until the API serves them.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [Customer::crd(), PlatformConnection::crd()] {
        let name = crd.name_any();
        apply(&crds, &crd).await?;
        let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(60), established)
            .await
            .with_context(|| format!("CRD {name} was not established within 60 s"))?
            .with_context(|| format!("watching CRD {name}"))?;
    }
    Ok(())
}

/// Creates a namespace (or keeps it if it exists).
pub async fn ensure_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.to_owned());
    namespace.metadata.labels =
        Some([("app.kubernetes.io/part-of".to_owned(), "hermes-e2e".to_owned())].into());
    apply(&namespaces, &namespace).await?;
    Ok(())
}

/// Deletes namespaces and waits (bounded) until they are gone. The operator
/// must still run: its finalizers hold every Customer and connection.
pub async fn delete_namespaces(client: &Client, names: &[String], timeout: Duration) -> anyhow::Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for name in names {
        match namespaces.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(error) => return Err(error).with_context(|| format!("deleting namespace {name}")),
        }
    }
    let started = Instant::now();
    for name in names {
        while namespaces.get_opt(name).await?.is_some() {
            if started.elapsed() > timeout {
                bail!("namespace {name} was not deleted within {timeout:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(())
}

/// The example manifests, moved into `namespace`.
#[derive(Debug, Default)]
pub struct Examples {
    /// The credential Secrets.
    pub secrets: Vec<Secret>,
    /// The Customers.
    pub customers: Vec<Customer>,
    /// The PlatformConnections.
    pub connections: Vec<PlatformConnection>,
}

impl Examples {
    /// Reads every `*.yaml` of `dir` and puts each object into `namespace`.
    pub fn load(dir: &Path, namespace: &str) -> anyhow::Result<Self> {
        let mut examples = Self::default();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        files.sort();

        for path in files {
            let text = std::fs::read_to_string(&path)?;
            let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
                .with_context(|| format!("{} is not valid YAML", path.display()))?;
            for mut document in documents.into_iter().filter(|d| !d.is_null()) {
                document["metadata"]["namespace"] = namespace.into();
                let kind = document["kind"].as_str().unwrap_or_default().to_owned();
                let context = || format!("{}: a {kind} does not parse", path.display());
                match kind.as_str() {
                    "Secret" => examples
                        .secrets
                        .push(serde_json::from_value(document).with_context(context)?),
                    "Customer" => examples
                        .customers
                        .push(serde_json::from_value(document).with_context(context)?),
                    "PlatformConnection" => examples
                        .connections
                        .push(serde_json::from_value(document).with_context(context)?),
                    other => bail!("{}: unexpected kind {other:?} among the examples", path.display()),
                }
            }
        }
        if examples.customers.is_empty() || examples.connections.is_empty() {
            bail!("{} holds no Customer or no PlatformConnection", dir.display());
        }
        Ok(examples)
    }

    /// Every secret value the examples hold, to prove none reaches Redis.
    pub fn secret_values(&self) -> Vec<String> {
        self.secrets
            .iter()
            .flat_map(|secret| {
                let strings = secret.string_data.clone().unwrap_or_default().into_values();
                let bytes = secret
                    .data
                    .clone()
                    .unwrap_or_default()
                    .into_values()
                    .map(|b| String::from_utf8_lossy(&b.0).into_owned());
                strings.chain(bytes).collect::<Vec<_>>()
            })
            .filter(|value| value.len() >= 8)
            .collect()
    }
}

/// Fails when a Customer of one of `names` exists outside `namespace`: it
/// would hold the customer id and the run's copy would be a duplicate.
pub async fn check_names_free(client: &Client, names: &[String], namespace: &str) -> anyhow::Result<()> {
    let customers: Api<Customer> = Api::all(client.clone());
    for customer in customers.list(&ListParams::default()).await? {
        let ns = customer.namespace().unwrap_or_default();
        if names.contains(&customer.name_any()) && ns != namespace {
            bail!(
                "Customer {} already exists in namespace {ns}; customer ids are cluster-wide, \
                 so the run's Customer would be refused as a duplicate. Delete it or use another cluster",
                customer.name_any()
            );
        }
    }
    Ok(())
}

/// Whether a condition list says `Ready=True`.
pub fn is_ready(conditions: &[hermes_crds::Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == hermes_crds::ConditionStatus::True)
}

/// The Ready reason of a condition list, for error messages.
pub fn ready_reason(conditions: &[hermes_crds::Condition]) -> String {
    conditions.iter().find(|c| c.type_ == "Ready").map_or_else(
        || "no Ready condition".to_owned(),
        |c| format!("{}: {}", c.reason, c.message),
    )
}

/// Waits until every connection in `namespace` named in `names` is Ready.
pub async fn wait_connections_ready(
    client: &Client,
    namespace: &str,
    names: &BTreeSet<String>,
    timeout: Duration,
) -> anyhow::Result<Vec<PlatformConnection>> {
    let api: Api<PlatformConnection> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    loop {
        let listed = api.list(&ListParams::default()).await?;
        let wanted: Vec<_> = listed
            .items
            .into_iter()
            .filter(|c| names.contains(&c.name_any()))
            .collect();
        let pending: Vec<String> = wanted
            .iter()
            .filter(|c| !c.status.as_ref().is_some_and(|s| is_ready(&s.conditions)))
            .map(|c| {
                let reason = c
                    .status
                    .as_ref()
                    .map_or_else(|| "no status".to_owned(), |s| ready_reason(&s.conditions));
                format!("{} ({reason})", c.name_any())
            })
            .collect();
        if wanted.len() == names.len() && pending.is_empty() {
            return Ok(wanted);
        }
        if started.elapsed() > timeout {
            bail!("connections not Ready after {timeout:?}: {}", pending.join(", "));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the Customer is Ready and returns it.
pub async fn wait_customer_ready(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Customer> {
    let api: Api<Customer> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    loop {
        if let Some(customer) = api.get_opt(name).await?
            && customer.status.as_ref().is_some_and(|s| is_ready(&s.conditions))
        {
            return Ok(customer);
        }
        if started.elapsed() > timeout {
            bail!("Customer {namespace}/{name} not Ready after {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How many PlatformConnections of `namespace` are Ready (listed in pages).
pub async fn count_ready_connections(client: &Client, namespace: &str) -> anyhow::Result<usize> {
    let api: Api<PlatformConnection> = Api::namespaced(client.clone(), namespace);
    let mut ready = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        ready += page
            .items
            .iter()
            .filter(|c| c.status.as_ref().is_some_and(|s| is_ready(&s.conditions)))
            .count();
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(ready),
        }
    }
}

/// Creates objects with up to `parallel` requests in flight.
pub async fn apply_all<K>(api: &Api<K>, objects: Vec<K>, parallel: usize) -> anyhow::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    futures::stream::iter(objects)
        .map(|object| {
            let api = api.clone();
            async move { apply(&api, &object).await.map(drop) }
        })
        .buffer_unordered(parallel)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
