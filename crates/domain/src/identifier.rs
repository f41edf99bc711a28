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

/// The identifier a header name suggests: lower case, accents folded
/// (`é` → `e`, `ß` → `ss`), every run of other characters one `_`, no `_` at
/// either end, `_` before a leading digit, at most 63 bytes, and a name
/// starting with the reserved `_sluice_` prefix loses its underscore. An
/// empty result is `column_{position}` (1-based). SQL keywords are kept:
/// identifiers are always quoted, so `order` is a valid column name.
///
/// ```
/// use sluice_domain::identifier::suggest_identifier;
/// assert_eq!(suggest_identifier("Customer E-Mail", 1).as_str(), "customer_e_mail");
/// assert_eq!(suggest_identifier("Straße Nº", 2).as_str(), "strasse_no");
/// assert_eq!(suggest_identifier("2024 total", 3).as_str(), "_2024_total");
/// assert_eq!(suggest_identifier("---", 4).as_str(), "column_4");
/// assert_eq!(suggest_identifier("Order", 5).as_str(), "order");
/// ```
pub fn suggest_identifier(header: &str, position: usize) -> Identifier {
    let mut out = String::new();
    let mut gap = false;
    for c in header.chars() {
        let folded = fold(c);
        for f in folded.chars() {
            if f.is_ascii_alphanumeric() {
                if gap && !out.is_empty() {
                    out.push('_');
                }
                gap = false;
                out.push(f.to_ascii_lowercase());
            } else {
                gap = true;
            }
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    truncate_to(&mut out, MAX_IDENTIFIER_LEN);
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() || out == "_" {
        out = format!("column_{position}");
    }
    Identifier::parse(&out).unwrap_or_else(|_| Identifier(format!("column_{position}")))
}

/// Identifiers for a whole header (or a JSON object's members, in first-seen
/// order): [`suggest_identifier`] for each, a repeated one suffixed `_2`,
/// `_3`, … (cut to stay within 63 bytes), so every name is distinct.
///
/// ```
/// use sluice_domain::identifier::identifiers_for;
/// let names = identifiers_for(&["Name", "name", "NAME ", ""]);
/// let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
/// assert_eq!(names, ["name", "name_2", "name_3", "column_4"]);
/// ```
pub fn identifiers_for<S: AsRef<str>>(headers: &[S]) -> Vec<Identifier> {
    identifiers_after(&[], headers)
}

/// [`identifiers_for`] new columns beside `taken` ones: no name repeats
/// one of `taken`, and `column_N` counts on from them.
///
/// ```
/// use sluice_domain::identifier::{Identifier, identifiers_after};
/// let taken = [Identifier::parse("name")?];
/// let names = identifiers_after(&taken, &["Name", "City", ""]);
/// let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
/// assert_eq!(names, ["name_2", "city", "column_4"]);
/// # Ok::<(), sluice_domain::DomainError>(())
/// ```
pub fn identifiers_after<S: AsRef<str>>(taken: &[Identifier], headers: &[S]) -> Vec<Identifier> {
    let mut taken: std::collections::HashSet<String> = taken.iter().map(|t| t.0.clone()).collect();
    let offset = taken.len();
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let base = suggest_identifier(h.as_ref(), offset + i + 1);
            let mut candidate = base.0.clone();
            let mut n = 2;
            while !taken.insert(candidate.clone()) {
                let suffix = format!("_{n}");
                let mut stem = base.0.clone();
                truncate_to(&mut stem, MAX_IDENTIFIER_LEN - suffix.len());
                candidate = format!("{stem}{suffix}");
                n += 1;
            }
            Identifier(candidate)
        })
        .collect()
}

fn truncate_to(s: &mut String, max: usize) {
    // Only ASCII is ever pushed, so any byte index is a char boundary.
    if s.len() > max {
        s.truncate(max);
    }
}

/// The ASCII letters an accented Latin letter stands for (itself otherwise).
fn fold(c: char) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow;
    let s: &'static str = match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'æ' | 'Æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' | 'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "c",
        'ď' | 'đ' | 'Ď' | 'Đ' | 'ð' | 'Ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' | 'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "g",
        'ĥ' | 'ħ' | 'Ĥ' | 'Ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ĵ' | 'Ĵ' => "j",
        'ķ' | 'Ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' | 'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' | 'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' | 'º' => "o",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'œ' | 'Œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' | 'Ŕ' | 'Ŗ' | 'Ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'Ś' | 'Ŝ' | 'Ş' | 'Š' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'Ţ' | 'Ť' | 'Ŧ' => "t",
        'þ' | 'Þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ŵ' | 'Ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' | 'Ý' | 'Ÿ' | 'Ŷ' => "y",
        'ź' | 'ż' | 'ž' | 'Ź' | 'Ż' | 'Ž' => "z",
        _ => return Cow::Owned(c.to_string()),
    };
    Cow::Borrowed(s)
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
    fn header_names_become_valid_identifiers() {
        let cases = [
            ("id", "id"),
            ("Customer ID", "customer_id"),
            ("  Total (EUR)  ", "total_eur"),
            ("Café Crème", "cafe_creme"),
            ("Größe", "grosse"),
            ("Ærø", "aero"),
            ("order", "order"),
            ("SELECT", "select"),
            ("user-name", "user_name"),
            ("a__b", "a_b"),
            ("_sluice_row", "sluice_row"),
            ("9lives", "_9lives"),
            ("日本", "column_1"),
            ("", "column_1"),
            ("😀 smile", "smile"),
        ];
        for (header, want) in cases {
            let got = suggest_identifier(header, 1);
            assert_eq!(got.as_str(), want, "{header:?}");
            assert!(Identifier::parse(got.as_str()).is_ok());
        }
        let long = "Word ".repeat(40);
        let got = suggest_identifier(&long, 1);
        assert!(got.as_str().len() <= MAX_IDENTIFIER_LEN);
        assert!(!got.as_str().ends_with('_'));
    }

    #[test]
    fn duplicate_headers_get_distinct_names_within_the_limit() {
        let long = "x".repeat(70);
        let headers = [long.as_str(), long.as_str(), "A", "a", "a_2", ""];
        let names = identifiers_for(&headers);
        let strs: Vec<&str> = names.iter().map(Identifier::as_str).collect();
        assert_eq!(strs[0], "x".repeat(63));
        assert_eq!(strs[1], format!("{}_2", "x".repeat(61)));
        assert_eq!(&strs[2..], ["a", "a_2", "a_2_2", "column_6"]);
        let unique: std::collections::HashSet<_> = strs.iter().collect();
        assert_eq!(unique.len(), strs.len());
        for n in &names {
            assert!(Identifier::parse(n.as_str()).is_ok(), "{n}");
        }
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<Identifier>("\"ok_name\"").is_ok());
        assert!(serde_json::from_str::<Identifier>("\"x; DROP TABLE y\"").is_err());
    }
}
