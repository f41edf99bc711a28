//! SQL identifiers for destination tables and columns.
//!
//! Names must match `^[a-z_][a-z0-9_]{0,62}$` (PostgreSQL's 63-byte limit, lower
//! case so that quoting never changes their meaning) and are always quoted when
//! rendered into SQL, so a reserved word such as `order` is still safe.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{DomainError, echo};

/// A validated table or column name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier(String);

/// Longest identifier PostgreSQL keeps without truncating.
pub const MAX_IDENTIFIER_LEN: usize = 63;

impl Identifier {
    /// Validates `s` against `^[a-z_][a-z0-9_]{0,62}$`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let reject = |reason| DomainError::InvalidIdentifier {
            value: echo(s),
            reason,
        };
        let mut chars = s.chars();
        let Some(first) = chars.next() else {
            return Err(reject("must not be empty"));
        };
        if s.len() > MAX_IDENTIFIER_LEN {
            return Err(reject("must be at most 63 characters"));
        }
        if !(first.is_ascii_lowercase() || first == '_') {
            return Err(reject("must start with a lower-case letter or `_`"));
        }
        if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(reject(
                "may contain only lower-case letters, digits and `_`",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The bare name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name in double quotes, ready to be placed in SQL. The character set
    /// enforced by [`Identifier::parse`] contains no quote, so no escaping is needed.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Identifier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Identifier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Identifier {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z_][a-z0-9_]{0,62}$"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Identifier {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for ok in ["a", "_", "customers", "order", "_private", "t1", "a_b_c_9"] {
            let id = Identifier::parse(ok).expect(ok);
            assert_eq!(id.as_str(), ok);
            assert_eq!(id.quoted(), format!("\"{ok}\""));
        }
        let longest = "a".repeat(63);
        assert!(Identifier::parse(&longest).is_ok());
    }

    #[test]
    fn rejects_injection_quotes_unicode_and_length() {
        for bad in [
            "",
            "x; DROP TABLE y",
            "x\"; DROP TABLE y; --",
            "\"quoted\"",
            "it's",
            "Customers",
            "café",
            "ｔａｂｌｅ",
            "1abc",
            "a-b",
            "a b",
            "a.b",
            "tab\tle",
            "semi;",
            "emoji😀",
        ] {
            assert!(
                matches!(
                    Identifier::parse(bad),
                    Err(DomainError::InvalidIdentifier { .. })
                ),
                "{bad:?} must be rejected"
            );
        }
        assert!(Identifier::parse(&"a".repeat(64)).is_err());
        assert!(Identifier::parse(&"a".repeat(1000)).is_err());
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<Identifier>("\"ok_name\"").is_ok());
        assert!(serde_json::from_str::<Identifier>("\"x; DROP TABLE y\"").is_err());
    }
}
