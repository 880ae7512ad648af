//! The Hermes server: MCP, REST and webhooks for every customer, from the
//! state the operator wrote.
//!
//! A request flows through these modules, in order:
//!
//! - [`config`]: the `serve` and `dev` command lines (every flag has an env fallback).
//! - [`app`]: [`AppState`](app::AppState), what every handler shares, and the router.
//! - [`auth`]: API key → [`Tenant`](auth::Tenant), through a short-lived cache, Redis and SQL.
//! - [`meter`]: plans, the shared rate limit and the monthly quota.
//! - [`mcp`]: the MCP Streamable HTTP endpoint (both protocol eras, stateless).
//! - [`rest`]: the same tools and the tenant's data as REST, with `/openapi.json`.
//! - [`tools`]: the one tool registry MCP and REST share; [`platforms`] holds
//!   one client module per platform, called by the tools.
//! - [`audit`]: what every tool call leaves in its customer's log.
//! - [`ops`]: health, readiness and Prometheus metrics.
//! - [`dev`]: `hermes-server dev`, the whole service from a folder of manifests.
//! - [`webhook`]: inbound webhooks (Meta, Telegram), verified and stored in
//!   the customer's inbox; [`inbox`] reads it back; [`delivery`] forwards
//!   it, signed, to the customer's own endpoint.

pub mod app;
pub mod audit;
pub mod auth;
pub mod config;
pub mod delivery;
pub mod dev;
pub mod error;
pub mod inbox;
pub mod mcp;
pub mod meter;
pub mod ops;
pub mod platforms;
pub mod rest;
pub mod tools;
pub mod webhook;
