//! The authoring formats of connectors and instances, as Rust types.
//!
//! These types are the single source of truth for the format: the JSON Schemas in `schemas/`
//! are generated from them ([`connector_schema`], [`instance_schema`]) and their doc comments
//! become the schemas' descriptions, which editors show on hover. This crate does no I/O.

pub mod auth;
pub mod connector;
pub mod endpoint;
pub mod instance;
mod schema;

pub use auth::AuthMethod;
pub use connector::{Connector, Scalar, ValueType, Variable};
pub use endpoint::{Body, Endpoint, Method, Pagination};
pub use instance::{Instance, InstanceValue};
pub use schema::{connector_schema, instance_schema, schema_text};
