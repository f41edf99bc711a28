//! Keeping connector credentials out of `Debug` output and error text.

use std::fmt;

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
/// Azure SAS tokens travel in request URLs.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    secrets: Vec<String>,
}

/// What replaces a credential in scrubbed text.
pub(crate) const REDACTED: &str = "[redacted]";

impl Redactor {
    pub(crate) fn new<'a>(values: impl Iterator<Item = &'a str>) -> Self {
        let mut secrets: Vec<String> = values
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        // Longest first, so a secret containing another is removed whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every credential value replaced by `[redacted]`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_values() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let r = Redactor::new(["hunter2"].into_iter());
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn scrub_removes_every_value_longest_first() {
        let r = Redactor::new(["abc", "abcdef", ""].into_iter());
        assert_eq!(
            r.scrub("key abcdef and abc here"),
            "key [redacted] and [redacted] here"
        );
        assert_eq!(r.scrub("nothing"), "nothing");
    }
}
