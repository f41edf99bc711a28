//! Keeping connector credentials out of `Debug` output and error text.

use std::fmt;
use std::sync::{Arc, RwLock};

/// A credential value. Its `Debug` form never shows the value, so a settings
/// struct holding one can derive `Debug` safely.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for handing to a store builder only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Removes a connector's credential values from text that came from outside
/// this crate (a server's error body, a driver's error message), which could
/// echo one: S3 puts the access key id in `SignatureDoesNotMatch` bodies, and
/// Azure SAS tokens travel in request URLs. Clones share one list, so
/// credentials fetched later (a role's temporary keys) can be added.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

/// What replaces a credential in scrubbed text.
pub(crate) const REDACTED: &str = "[redacted]";

/// Most values a redactor keeps: temporary credentials are added at every
/// refresh, the oldest (long expired) are forgotten.
const MAX_SECRETS: usize = 64;

impl Redactor {
    pub(crate) fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let r = Self::default();
        r.add(values);
        r
    }

    /// Adds values to remove from now on.
    pub(crate) fn add<'a>(&self, values: impl IntoIterator<Item = &'a str>) {
        let Ok(mut secrets) = self.secrets.write() else {
            return;
        };
        for v in values.into_iter().filter(|v| !v.is_empty()) {
            if !secrets.iter().any(|s| s == v) {
                secrets.push(v.to_owned());
            }
        }
        let excess = secrets.len().saturating_sub(MAX_SECRETS);
        secrets.drain(..excess);
    }

    /// `text` with every credential value replaced by `[redacted]`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let Ok(secrets) = self.secrets.read() else {
            return out;
        };
        // Longest first, so a secret containing another is removed whole.
        let mut sorted: Vec<&String> = secrets.iter().collect();
        sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for s in sorted {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.secrets.read().map(|s| s.len()).unwrap_or_default();
        f.debug_struct("Redactor").field("secrets", &count).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_values() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let r = Redactor::new(["hunter2"]);
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn scrub_removes_every_value_longest_first() {
        let r = Redactor::new(["abc", "abcdef", ""]);
        assert_eq!(
            r.scrub("key abcdef and abc here"),
            "key [redacted] and [redacted] here"
        );
        assert_eq!(r.scrub("nothing"), "nothing");
    }
}
