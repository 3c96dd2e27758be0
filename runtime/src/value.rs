//! Values at run time: what templates are rendered from.

use compiler::ir::{Ref, Scalar, ValueType};
use indexmap::IndexMap;

use crate::secret::Secret;

/// A value of a variable, an input, an auth response field or the pagination state.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A plain JSON value: a string, a number, a boolean or null.
    Plain(serde_json::Value),
    /// A credential.
    Secret(Secret),
}

impl Value {
    /// A plain string.
    pub fn text(s: impl Into<String>) -> Self {
        Value::Plain(serde_json::Value::String(s.into()))
    }

    /// A scalar of the connector format.
    pub fn scalar(s: &Scalar) -> Self {
        Value::Plain(scalar_json(s))
    }

    /// Whether the value is a credential.
    pub fn is_secret(&self) -> bool {
        matches!(self, Value::Secret(_))
    }

    /// The value as text: strings as they are, numbers and booleans as JSON writes them, null
    /// as the empty string. A secret's text is the secret itself: the caller puts it into a
    /// request only.
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Value::Plain(serde_json::Value::String(s)) => s.as_str().into(),
            Value::Plain(serde_json::Value::Null) => "".into(),
            Value::Plain(v) => v.to_string().into(),
            Value::Secret(s) => s.expose().into(),
        }
    }

    /// The value as JSON, keeping its type.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Plain(v) => v.clone(),
            Value::Secret(s) => serde_json::Value::String(s.expose().to_owned()),
        }
    }

    /// The value as it may be shown: secrets redacted.
    pub fn shown(&self) -> serde_json::Value {
        match self {
            Value::Plain(v) => v.clone(),
            Value::Secret(s) => serde_json::Value::String(s.to_string()),
        }
    }
}

/// The JSON form of a scalar.
pub fn scalar_json(s: &Scalar) -> serde_json::Value {
    serde_json::to_value(s).unwrap_or(serde_json::Value::Null)
}

/// Reads `text` as a value of type `kind` (a value from the environment, a file or the
/// command line). `None` when it is not one.
pub fn parse_typed(text: &str, kind: ValueType) -> Option<serde_json::Value> {
    let t = text.trim();
    Some(match kind {
        ValueType::String => serde_json::Value::String(text.to_owned()),
        ValueType::Integer => serde_json::Value::from(t.parse::<i64>().ok()?),
        ValueType::Number => {
            if let Ok(i) = t.parse::<i64>() {
                serde_json::Value::from(i)
            } else {
                let f = t.parse::<f64>().ok().filter(|f| f.is_finite())?;
                serde_json::Value::from(f)
            }
        }
        ValueType::Boolean => match t {
            "true" => serde_json::Value::Bool(true),
            "false" => serde_json::Value::Bool(false),
            _ => return None,
        },
    })
}

/// Values by name (hashed with foldhash: looked up on every render, and the names are the
/// connector's own).
pub type Values = IndexMap<String, Value, foldhash::fast::RandomState>;

/// Everything a template may reference.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// `vars.*`: the instance's values.
    pub vars: Option<&'a Values>,
    /// `auth.*`: fields of the auth response.
    pub auth: Option<&'a Values>,
    /// `input.*`: the endpoint's inputs.
    pub input: Option<&'a Values>,
    /// `page.*`: the pagination state.
    pub page: Option<&'a Values>,
}

impl<'a> Scope<'a> {
    /// The value a reference names, if it has one.
    pub fn get(&self, r: &Ref) -> Option<&'a Value> {
        let (values, name) = match r {
            Ref::Vars(n) => (self.vars, n),
            Ref::Auth(n) => (self.auth, n),
            Ref::Input(n) => (self.input, n),
            Ref::Page(n) => (self.page, n),
        };
        values.and_then(|v| v.get(name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_parsing() {
        assert_eq!(parse_typed("42", ValueType::Integer), Some(42.into()));
        assert_eq!(parse_typed("4.5", ValueType::Integer), None);
        assert_eq!(parse_typed("4.5", ValueType::Number), Some(4.5.into()));
        assert_eq!(parse_typed("true", ValueType::Boolean), Some(true.into()));
        assert_eq!(parse_typed("yes", ValueType::Boolean), None);
        assert_eq!(parse_typed(" a ", ValueType::String), Some(" a ".into()));
    }

    #[test]
    fn text_of_values() {
        assert_eq!(Value::Plain(3.into()).as_text(), "3");
        assert_eq!(Value::Plain(serde_json::Value::Null).as_text(), "");
        assert_eq!(Value::Plain(false.into()).as_text(), "false");
    }
}
