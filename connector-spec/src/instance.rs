//! Instance files: one connection to an API through a connector.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connector::Scalar;

/// An instance: which connector, which auth method, and the values of its variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// Identifier of the instance. Defaults to the file name without its extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub instance: Option<String>,
    /// The connector: a path relative to this file (`../connectors/x.yaml`) or the id of a
    /// connector found under `connectors/`.
    pub connector: String,
    /// Name of the connector's auth method this instance uses.
    pub auth: String,
    /// Values of the connector's variables and of the chosen auth method's variables.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub values: IndexMap<String, InstanceValue>,
}

/// The value of a variable: written inline, or read from the environment or a file. A secret
/// is never written inline in a checked-in file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum InstanceValue {
    /// Read from an environment variable.
    Env(FromEnv),
    /// Read from a file (trailing newline removed).
    File(FromFile),
    /// Written inline.
    Inline(Scalar),
}

/// A value read from an environment variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromEnv {
    /// Name of the environment variable.
    pub env: String,
}

/// A value read from a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FromFile {
    /// Path of the file, relative to the instance file.
    pub file: String,
}
