//! The top level of a connector file and its variables.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::auth::AuthMethod;
use crate::endpoint::Endpoint;

/// A connector: how to authenticate against one API and how to call its endpoints.
///
/// Strings written as `"... {{ ns.name }} ..."` are templates. The namespaces are `vars.*`
/// (connector and auth method variables, i.e. an instance's values), `auth.*` (fields of the
/// auth response), `input.*` (endpoint inputs) and `page.*` (pagination state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connector {
    /// Identifier of the connector: lower case letters, digits, `-` and `_`. Instances name
    /// their connector by this id.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"))]
    pub connector: String,
    /// Human-readable name, shown to users.
    pub name: String,
    /// What the API is and what this connector does with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Base URL that relative endpoint URLs are joined to, e.g. `"{{ vars.api_url }}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Connection variables, reusable by every auth method and endpoint as `vars.NAME`. Users
    /// fill them in when they add an instance.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub variables: IndexMap<String, Variable>,
    /// Auth methods, by name; an instance picks one.
    pub auth: IndexMap<String, AuthMethod>,
    /// Endpoints, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub endpoints: IndexMap<String, Endpoint>,
}

/// A variable: a value an instance supplies (connection and auth variables) or a caller passes
/// (endpoint inputs).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Label shown to users when they add an instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text shown beside the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Type of the value. Defaults to `string`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<ValueType>,
    /// Value used when the instance gives none. A string default may itself be a template
    /// over other variables, e.g. `"https://api.{{ vars.region }}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Scalar>,
    /// The instance must give a value (a required variable has no default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// The value is a credential: never logged, never shown, never given a default, and read
    /// from the environment or a file rather than written in an instance file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// The only values allowed.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Scalar>>,
}

/// The type of a variable or input value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// Text (the default).
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
}

impl ValueType {
    /// The name written in connector files.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Number => "number",
            ValueType::Boolean => "boolean",
        }
    }
}

/// A plain value: string, number or boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Integer(i64),
    /// A number with a fraction.
    Number(f64),
    /// Text.
    String(String),
}

impl Scalar {
    /// The type this value has.
    pub fn value_type(&self) -> ValueType {
        match self {
            Scalar::Bool(_) => ValueType::Boolean,
            Scalar::Integer(_) => ValueType::Integer,
            Scalar::Number(_) => ValueType::Number,
            Scalar::String(_) => ValueType::String,
        }
    }

    /// Whether this value may stand where a value of type `ty` is expected.
    pub fn fits(&self, ty: ValueType) -> bool {
        matches!(
            (self, ty),
            (Scalar::Bool(_), ValueType::Boolean)
                | (Scalar::Integer(_), ValueType::Integer | ValueType::Number)
                | (Scalar::Number(_), ValueType::Number)
                | (Scalar::String(_), ValueType::String)
        )
    }
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Integer(i) => write!(f, "{i}"),
            Scalar::Number(n) => write!(f, "{n}"),
            Scalar::String(s) => f.write_str(s),
        }
    }
}
