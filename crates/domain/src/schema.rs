//! Row schemas: column types and constraints, as a pipeline declares them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::identifier::Identifier;

/// Most columns a schema may declare (PostgreSQL allows 1,600 per table; the
/// lineage columns need room too).
pub const MAX_COLUMNS: usize = 1_000;

/// Longest `source` of a column, in characters.
pub const MAX_SOURCE_CHARS: usize = 1_000;

/// Prefix reserved for Sluice's lineage columns.
pub const RESERVED_PREFIX: &str = "_sluice_";

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Any UTF-8 text without NUL characters.
    String,
    /// A 64-bit signed integer.
    Integer,
    /// A decimal number (`-12.5`, `3e4`); stored exactly.
    Number,
    /// `true`/`false`, `t`/`f`, `yes`/`no`, `1`/`0` (any case).
    Boolean,
    /// A calendar date `YYYY-MM-DD`.
    Date,
    /// An RFC 3339 timestamp with an offset.
    Timestamp,
    /// An e-mail address.
    Email,
    /// A UUID in its canonical 8-4-4-4-12 hexadecimal form.
    Uuid,
    /// Any JSON value (an object, an array, a string, a number, `true`,
    /// `false`), stored as `jsonb`. A JSON Lines member is taken as it is; a
    /// CSV field must hold JSON text.
    Json,
}

impl ColumnType {
    /// Every type, for exhaustive tests.
    pub const ALL: [ColumnType; 9] = [
        Self::String,
        Self::Integer,
        Self::Number,
        Self::Boolean,
        Self::Date,
        Self::Timestamp,
        Self::Email,
        Self::Uuid,
        Self::Json,
    ];

    /// The type's name as a schema spells it (`"integer"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Date => "date",
            Self::Timestamp => "timestamp",
            Self::Email => "email",
            Self::Uuid => "uuid",
            Self::Json => "json",
        }
    }
}

/// One column of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Column {
    /// Column name in the destination table (and, with a CSV header, in the file).
    pub name: Identifier,
    /// The header field (CSV) or member (JSON Lines) this column reads, when
    /// it is not the column's name (`"Customer E-Mail"` for `customer_e_mail`).
    /// Ignored by CSV files without a header, which are read by position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 1000))]
    pub source: Option<String>,
    /// Value type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// An empty or absent value is an error.
    #[serde(default)]
    pub required: bool,
    /// Longest accepted value, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub max_length: Option<u32>,
    /// A regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The only accepted values (compared exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub allowed_values: Option<Vec<String>>,
}

/// The columns of a pipeline's rows, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schema {
    /// Columns in file order (1 to 1,000).
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 1000))]
    pub columns: Vec<Column>,
}

/// Whether `header` can be a column's `source`: 1 to [`MAX_SOURCE_CHARS`]
/// characters, none of them a control character.
pub fn is_valid_source(header: &str) -> bool {
    !header.is_empty()
        && header.chars().count() <= MAX_SOURCE_CHARS
        && !header.chars().any(|c| c.is_control() || c == '\u{FFFD}')
}

/// What [`Schema::evolve`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evolution {
    /// The columns added, in the order given.
    pub added: Vec<Column>,
    /// Header fields left out: a column could not read them by `source`
    /// (control characters, or longer than [`MAX_SOURCE_CHARS`]), or the
    /// schema had no room left.
    pub left_out: Vec<String>,
}

impl Schema {
    /// Adds a nullable `string` column for each of `headers` (header fields
    /// no column reads, `schemaDrift: evolve`), named as inference would name
    /// it ([`crate::identifier::identifiers_after`], distinct from the
    /// schema's names) and reading the field by `source` when the name
    /// differs from it.
    ///
    /// ```
    /// use sluice_domain::schema::Schema;
    ///
    /// let mut schema: Schema =
    ///     serde_json::from_str(r#"{"columns": [{"name": "id", "type": "integer"}]}"#)?;
    /// let evolution = schema.evolve(&["Phone Number".to_owned(), "ID".to_owned()]);
    /// let added: Vec<(&str, Option<&str>)> = evolution
    ///     .added
    ///     .iter()
    ///     .map(|c| (c.name.as_str(), c.source.as_deref()))
    ///     .collect();
    /// assert_eq!(added, [("phone_number", Some("Phone Number")), ("id_2", Some("ID"))]);
    /// assert_eq!(schema.columns.len(), 3);
    /// schema.validate()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn evolve(&mut self, headers: &[String]) -> Evolution {
        let mut evolution = Evolution::default();
        let room = MAX_COLUMNS.saturating_sub(self.columns.len());
        let (usable, unusable): (Vec<&String>, Vec<&String>) =
            headers.iter().partition(|h| is_valid_source(h));
        evolution.left_out.extend(unusable.into_iter().cloned());
        let taken: Vec<Identifier> = self.columns.iter().map(|c| c.name.clone()).collect();
        let names = crate::identifier::identifiers_after(&taken, &usable);
        for (i, (header, name)) in usable.into_iter().zip(names).enumerate() {
            if i >= room {
                evolution.left_out.push(header.clone());
                continue;
            }
            let column = Column {
                source: (name.as_str() != header).then(|| header.clone()),
                name,
                column_type: ColumnType::String,
                required: false,
                max_length: None,
                pattern: None,
                allowed_values: None,
            };
            self.columns.push(column.clone());
            evolution.added.push(column);
        }
        evolution
    }

    /// Checks the rules a schema must satisfy; errors name the field as
    /// `schema.columns[i].…`.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.columns.is_empty() {
            return Err(DomainError::field(
                "schema.columns",
                "must declare at least one column",
            ));
        }
        if self.columns.len() > MAX_COLUMNS {
            return Err(DomainError::field(
                "schema.columns",
                format!("must declare at most {MAX_COLUMNS} columns"),
            ));
        }
        let mut seen = HashSet::new();
        for (i, col) in self.columns.iter().enumerate() {
            let at = |f: &str| format!("schema.columns[{i}].{f}");
            if col.name.as_str().starts_with(RESERVED_PREFIX) {
                return Err(DomainError::field(
                    at("name"),
                    format!(
                        "names starting with `{RESERVED_PREFIX}` are reserved for lineage columns"
                    ),
                ));
            }
            if !seen.insert(col.name.as_str()) {
                return Err(DomainError::field(
                    at("name"),
                    format!("duplicate column `{}`", col.name),
                ));
            }
            if let Some(source) = &col.source {
                if source.is_empty() || source.chars().count() > MAX_SOURCE_CHARS {
                    return Err(DomainError::field(
                        at("source"),
                        format!("must be 1 to {MAX_SOURCE_CHARS} characters"),
                    ));
                }
                if !is_valid_source(source) {
                    return Err(DomainError::field(
                        at("source"),
                        "must not contain control characters",
                    ));
                }
            }
            if col.max_length == Some(0) {
                return Err(DomainError::field(at("maxLength"), "must be at least 1"));
            }
            if let Some(p) = &col.pattern {
                compile_pattern(p).map_err(|m| DomainError::field(at("pattern"), m))?;
            }
            if let Some(values) = &col.allowed_values {
                if values.is_empty() {
                    return Err(DomainError::field(at("allowedValues"), "must not be empty"));
                }
            }
        }
        Ok(())
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name.as_str() == name)
    }
}

impl Column {
    /// A column of type `t`, nothing else set.
    pub fn new(name: Identifier, t: ColumnType) -> Self {
        Self {
            name,
            source: None,
            column_type: t,
            required: false,
            max_length: None,
            pattern: None,
            allowed_values: None,
        }
    }

    /// The header field or JSON member this column reads: its `source`, or
    /// else its name.
    pub fn source_name(&self) -> &str {
        self.source.as_deref().unwrap_or(self.name.as_str())
    }
}

/// Compiles a column pattern, anchored so it must match the whole value, with
/// a size limit so a hostile pattern cannot exhaust memory.
pub(crate) fn compile_pattern(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "pattern is too large".to_owned(),
            _ => "is not a valid regular expression".to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, t: ColumnType) -> Column {
        Column {
            name: Identifier::parse(name).expect("identifier"),
            source: None,
            column_type: t,
            required: false,
            max_length: None,
            pattern: None,
            allowed_values: None,
        }
    }

    #[test]
    fn a_sound_schema_validates() {
        let s = Schema {
            columns: vec![
                col("id", ColumnType::Integer),
                col("email", ColumnType::Email),
            ],
        };
        assert_eq!(s.validate(), Ok(()));
        assert!(s.column("email").is_some());
    }

    #[test]
    fn schema_errors_name_the_field() {
        let field_of = |s: Schema| match s.validate() {
            Err(DomainError::InvalidField { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        };
        assert_eq!(field_of(Schema { columns: vec![] }), "schema.columns");
        let dup = Schema {
            columns: vec![col("a", ColumnType::String), col("a", ColumnType::String)],
        };
        assert_eq!(field_of(dup), "schema.columns[1].name");
        let reserved = Schema {
            columns: vec![col("_sluice_row", ColumnType::String)],
        };
        assert_eq!(field_of(reserved), "schema.columns[0].name");
        let mut bad_pattern = col("a", ColumnType::String);
        bad_pattern.pattern = Some("(".into());
        assert_eq!(
            field_of(Schema {
                columns: vec![bad_pattern]
            }),
            "schema.columns[0].pattern"
        );
        let mut huge = col("a", ColumnType::String);
        huge.pattern = Some("\\w{1000}{1000}".into());
        assert_eq!(
            field_of(Schema {
                columns: vec![huge]
            }),
            "schema.columns[0].pattern"
        );
        for bad in ["", "tab\there", &"x".repeat(1001)] {
            let mut c = col("a", ColumnType::String);
            c.source = Some(bad.to_owned());
            assert_eq!(
                field_of(Schema { columns: vec![c] }),
                "schema.columns[0].source",
                "{bad:?}"
            );
        }
        let mut zero = col("a", ColumnType::String);
        zero.max_length = Some(0);
        assert_eq!(
            field_of(Schema {
                columns: vec![zero]
            }),
            "schema.columns[0].maxLength"
        );
        let mut none_allowed = col("a", ColumnType::String);
        none_allowed.allowed_values = Some(vec![]);
        assert_eq!(
            field_of(Schema {
                columns: vec![none_allowed]
            }),
            "schema.columns[0].allowedValues"
        );
    }

    #[test]
    fn wire_format_is_camel_case_with_type() {
        let json = r#"{"columns":[{"name":"age","type":"integer","required":true,"maxLength":3,"allowedValues":["1"]}]}"#;
        let s: Schema = serde_json::from_str(json).expect("parse");
        assert_eq!(s.columns[0].column_type, ColumnType::Integer);
        assert_eq!(s.columns[0].max_length, Some(3));
        assert_eq!(s.columns[0].source, None);
        assert_eq!(s.columns[0].source_name(), "age");
        let sourced: Schema = serde_json::from_str(
            r#"{"columns":[{"name":"customer_e_mail","source":"Customer E-Mail","type":"email"}]}"#,
        )
        .expect("parse");
        assert_eq!(sourced.validate(), Ok(()));
        assert_eq!(sourced.columns[0].source_name(), "Customer E-Mail");
        let back = serde_json::to_string(&sourced).expect("serialize");
        assert!(back.contains(r#""source":"Customer E-Mail""#), "{back}");
        assert!(
            !serde_json::to_string(&s)
                .expect("serialize")
                .contains("source")
        );
        assert!(
            serde_json::from_str::<Schema>(r#"{"columns":[{"name":"a","type":"blob"}]}"#).is_err()
        );
        assert!(
            serde_json::from_str::<Schema>(r#"{"columns":[{"name":"A b","type":"string"}]}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<Schema>(
                r#"{"columns":[{"name":"a","type":"string","extra":1}]}"#
            )
            .is_err()
        );
    }
}
