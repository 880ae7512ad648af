//! The Hermes Kubernetes API: the resources platform operators apply.
//!
//! - [`Customer`]: one tenant. Its `metadata.name` is the customer id used
//!   everywhere else (API keys, Redis keys, logs).
//! - [`PlatformConnection`]: one customer's account on one [`Platform`]. The
//!   secret half lives in a referenced `Secret`; the spec carries only what
//!   may be committed to Git.
//!
//! Both are `hermes.squaremcp.com/v1alpha1` and namespaced. [`crd_yaml`]
//! renders the CustomResourceDefinitions that `manifests/crds/` commits.

mod condition;
mod customer;
mod platform;
mod platform_connection;

pub use condition::{Condition, ConditionStatus};
pub use customer::{
    Customer, CustomerSpec, CustomerStatus, Delivery, LimitOverrides, Plan, SecretKeyRef, UsageStatus,
};
pub use platform::Platform;
pub use platform_connection::{
    CertificateVerification, DiscordSettings, EmailSettings, InstagramLogin, InstagramSettings,
    LinkedinSettings, ObsidianSettings, PlatformConnection, PlatformConnectionSpec, PlatformConnectionStatus,
    SecretRef, SmtpTls, TelegramSettings, WhatsappSettings, XSettings,
};

/// The API group of every Hermes resource.
pub const GROUP: &str = "hermes.squaremcp.com";

/// The finalizer both controllers put on the resources they write state for.
pub const FINALIZER: &str = "hermes.squaremcp.com/cleanup";
