//! Secrets: credentials that are never printed.

use std::fmt;

/// A credential: a client secret, a password, an access token, an API key.
///
/// It has no `Deref` and no `AsRef`: the only way to the value is [`Secret::expose`], so every
/// place that reads one is visible in the code. `Debug` and `Display` print
/// `<redacted string(N)>`, N being the number of characters, so a secret that ends up in a log
/// line, an error or a `{:?}` dump shows only its length.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself.
    ///
    /// **Security**: the value must go only where it is needed (a request header, a form
    /// field); never into a log line, an error message or any output.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Number of characters.
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted string({})>", self.len())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Replaces every occurrence of a known secret in `text` by its redacted form: a last line of
/// defence for text that came from elsewhere (a server's error body) before it is shown.
pub fn scrub<'a>(text: &str, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        // Very short values would redact ordinary words; they are never echoed verbatim by the
        // code paths that call this anyway.
        if s.0.len() >= 4 && out.contains(&s.0) {
            out = out.replace(&s.0, &s.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("hunter2-is-long");
        assert_eq!(format!("{s:?}"), "<redacted string(15)>");
        assert_eq!(format!("{s}"), "<redacted string(15)>");
        assert_eq!(format!("{:?}", Some(&s)), "Some(<redacted string(15)>)");
        assert_eq!(s.expose(), "hunter2-is-long");
    }

    #[test]
    fn scrub_replaces_known_values() {
        let s = Secret::new("abcd1234");
        assert_eq!(
            scrub("token abcd1234 was refused", [&s]),
            "token <redacted string(8)> was refused"
        );
    }
}
