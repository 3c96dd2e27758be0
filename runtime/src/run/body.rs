//! A page's JSON read without building it: the whole body is checked to be one JSON value,
//! records are slices of it ([`RawValue`]), and a JSON pointer is followed by skipping every
//! member it does not name. A page of 100 records costs one list of 100 slices, where a
//! `serde_json::Value` would allocate every key and string of every record.
//!
//! Records keep the upstream's text: numbers of any size and precision, escapes and key
//! order as sent. [`compact`] removes the whitespace between tokens for one-line output.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// A response body read as JSON.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// The value, `None` when the body is empty or `null`.
    root: Option<&'a RawValue>,
}

impl<'a> Body<'a> {
    /// Checks that `bytes` is one JSON value (an empty body is `null`).
    pub fn parse(bytes: &'a [u8]) -> serde_json::Result<Self> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body { root: None });
        }
        let root: &RawValue = serde_json::from_slice(bytes)?;
        Ok(Body {
            root: (root.get() != "null").then_some(root),
        })
    }

    /// The whole value, unless it is `null`.
    pub fn root(&self) -> Option<&'a RawValue> {
        self.root
    }

    /// The value at a JSON pointer (RFC 6901), unless it is missing.
    pub fn pointer(&self, pointer: &str) -> Option<&'a RawValue> {
        if pointer.is_empty() {
            return self.root;
        }
        let mut at = self.root?;
        for token in pointer.strip_prefix('/')?.split('/') {
            let token: Cow<'_, str> = if token.contains('~') {
                token.replace("~1", "/").replace("~0", "~").into()
            } else {
                token.into()
            };
            at = child(at, &token)?;
        }
        Some(at)
    }

    /// The value at a JSON pointer, built (for the small values a pager reads).
    pub fn value(&self, pointer: &str) -> Option<serde_json::Value> {
        self.pointer(pointer)
            .and_then(|v| serde_json::from_str(v.get()).ok())
    }
}

/// What kind of JSON value a record or a pointer's target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `{…}`.
    Object,
    /// `[…]`.
    List,
    /// `"…"`.
    String,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
    /// A number.
    Number,
}

impl Kind {
    /// The kind of `v` (read from its first character: `v` is valid JSON).
    pub fn of(v: &RawValue) -> Kind {
        match v.get().as_bytes().first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::List,
            Some(b'"') => Kind::String,
            Some(b't' | b'f') => Kind::Boolean,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Object => "an object",
            Kind::List => "a list",
            Kind::String => "a string",
            Kind::Boolean => "a boolean",
            Kind::Null => "null",
            Kind::Number => "a number",
        })
    }
}

/// The items of a list, as slices.
pub fn items(v: &RawValue) -> serde_json::Result<Vec<&RawValue>> {
    serde_json::from_str(v.get())
}

/// `v` without whitespace between tokens (strings untouched): one line, as a JSON lines
/// output needs. Borrowed when there is none.
pub fn compact(v: &RawValue) -> Cow<'_, str> {
    let text = v.get();
    if !text
        .bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The member `token` of an object, or the item at index `token` of a list (the last one
/// when a key is repeated, as a built value would keep).
fn child<'a>(v: &'a RawValue, token: &str) -> Option<&'a RawValue> {
    let mut de = serde_json::Deserializer::from_str(v.get());
    de.deserialize_any(Child { token }).ok().flatten()
}

struct Child<'t> {
    token: &'t str,
}

impl<'de> Visitor<'de> for Child<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(hit) = map.next_key_seed(KeyIs(self.token))? {
            if hit {
                found = Some(map.next_value::<&RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // RFC 6901: an index is `0` or digits without a leading zero.
        let index = match self.token.as_bytes() {
            [b'0'] => Some(0),
            [b'1'..=b'9', rest @ ..] if rest.iter().all(u8::is_ascii_digit) => {
                self.token.parse::<usize>().ok()
            }
            _ => None,
        };
        let mut found = None;
        let mut i = 0usize;
        loop {
            if Some(i) == index {
                match seq.next_element::<&RawValue>()? {
                    Some(v) => found = Some(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i += 1;
        }
        Ok(found)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether a key is `.0`, compared without copying it.
struct KeyIs<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Body<'_> {
        Body::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn pointers_follow_members_and_indexes() {
        let text =
            r#" {"data": {"items": [{"id": 1}, {"id": 2, "a/b": {"~k": "x"}}]}, "total": 2} "#;
        let b = body(text);
        assert_eq!(b.value("/total"), Some(2.into()));
        assert_eq!(b.value("/data/items/1/id"), Some(2.into()));
        assert_eq!(b.value("/data/items/1/a~1b/~0k"), Some("x".into()));
        assert!(b.pointer("/data/items/2").is_none());
        assert!(b.pointer("/data/items/01").is_none());
        assert!(b.pointer("/data/items/-").is_none());
        assert!(b.pointer("/total/x").is_none());
        assert!(b.pointer("/missing").is_none());
        assert!(b.pointer("total").is_none());
        let items = items(b.pointer("/data/items").unwrap()).unwrap();
        assert_eq!(
            items.iter().map(|i| i.get()).collect::<Vec<_>>(),
            [r#"{"id": 1}"#, r#"{"id": 2, "a/b": {"~k": "x"}}"#]
        );
    }

    #[test]
    fn the_last_of_repeated_keys_and_escaped_keys() {
        let b = body(r#"{"k": 1, "k": 2, "\u0061": 3}"#);
        assert_eq!(b.value("/k"), Some(2.into()));
        assert_eq!(b.value("/a"), Some(3.into()));
    }

    #[test]
    fn the_whole_body_must_be_json() {
        for bad in [
            "{\"a\": 1} x",
            "{\"a\": [1, 2}",
            "{\"a\": \"\u{1}\"}",
            "[1, 2,]",
            "{\"a\" 1}",
        ] {
            assert!(Body::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(Body::parse(b"\xff").is_err());
        assert!(body("  ").root().is_none());
        assert!(body("null").root().is_none());
    }

    #[test]
    fn compact_keeps_strings_and_numbers() {
        let b = body("{ \"a b\" : [ 1 ,\n 2.50 ], \"s\": \"x \\\" y\\\\\" , \"n\": 12345678901234567890123 }");
        assert_eq!(
            compact(b.root().unwrap()),
            r#"{"a b":[1,2.50],"s":"x \" y\\","n":12345678901234567890123}"#
        );
        let c = body(r#"{"a":1}"#);
        assert!(matches!(compact(c.root().unwrap()), Cow::Borrowed(_)));
        assert_eq!(Kind::of(b.root().unwrap()), Kind::Object);
    }
}
