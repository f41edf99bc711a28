//! Row validation: every value of a record checked against its column, with
//! short fixed messages, and valid rows normalised into a [`ValidBatch`].
//!
//! Checks are strict by design: a value is accepted only in a form that the
//! destination database is certain to accept too, so a batch that passed
//! validation never fails to load because of one of its values.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::format::{FieldsRef, Problem, RecordBody};
use crate::identifier::Identifier;
use crate::schema::{ColumnType, Schema, compile_pattern};
use crate::time::days_in_month;

/// Column name used for errors that concern a whole row.
pub const ROW_COLUMN: &str = "*";

/// Longest error value kept, in characters; longer values are cut.
pub const MAX_ERROR_VALUE_CHARS: usize = 1_000;

/// The fixed messages of validation errors.
pub mod messages {
    /// A required value is empty or absent.
    pub const REQUIRED: &str = "Required value missing";
    /// Not a 64-bit integer.
    pub const INTEGER: &str = "Expected integer";
    /// Not a decimal number.
    pub const NUMBER: &str = "Expected number";
    /// Not a boolean.
    pub const BOOLEAN: &str = "Expected boolean";
    /// Not a `YYYY-MM-DD` date.
    pub const DATE: &str = "Expected date (YYYY-MM-DD)";
    /// Not an RFC 3339 timestamp.
    pub const TIMESTAMP: &str = "Expected timestamp (RFC 3339)";
    /// Not an e-mail address.
    pub const EMAIL: &str = "Invalid email format";
    /// Not a canonical UUID.
    pub const UUID: &str = "Invalid UUID format";
    /// Does not match the column pattern.
    pub const PATTERN: &str = "Does not match pattern";
    /// Not one of the allowed values.
    pub const ALLOWED: &str = "Not an allowed value";
    /// Bytes that are not UTF-8.
    pub const UTF8: &str = "Invalid UTF-8";
    /// A NUL character, which text columns cannot hold.
    pub const NUL: &str = "Contains a NUL character";
    /// A JSON Lines record that is not JSON.
    pub const JSON: &str = "Invalid JSON";
    /// A JSON Lines record that is not an object.
    pub const JSON_OBJECT: &str = "Expected a JSON object";
    /// A value of a `json` column that is not JSON text.
    pub const JSON_VALUE: &str = "Expected JSON";
    /// A `json` value with a `\u0000` escape, which `jsonb` cannot hold.
    pub const JSON_NUL: &str = "JSON with a \\u0000 escape (jsonb cannot hold it)";
}

/// The message for a value longer than `maxLength`.
pub fn max_length_message(max: u32) -> String {
    format!("Longer than maxLength {max}")
}

/// The message for a CSV record with the wrong number of fields.
pub fn column_count_message(expected: usize, found: usize) -> String {
    format!("Wrong number of columns: expected {expected}, found {found}")
}

/// One rejected value or row: `{row, column, value, error}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RowError {
    /// Row number in source order (1-based, header lines excluded).
    pub row: u64,
    /// Column name, or `*` for the whole row.
    pub column: String,
    /// The offending value, cut at 1,000 characters.
    pub value: String,
    /// A short fixed message.
    pub error: String,
}

impl RowError {
    /// Builds an error, cutting the value to [`MAX_ERROR_VALUE_CHARS`].
    pub fn new(row: u64, column: &str, value: &str, error: impl Into<String>) -> Self {
        Self {
            row,
            column: column.to_owned(),
            value: cut(value),
            error: error.into(),
        }
    }
}

fn cut(value: &str) -> String {
    match value.char_indices().nth(MAX_ERROR_VALUE_CHARS) {
        Some((i, _)) => value.get(..i).unwrap_or(value).to_owned(),
        None => value.to_owned(),
    }
}

/// Which field of a record feeds each schema column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    /// Fields a record must have (`None` for JSON Lines, matched by name).
    expected_fields: Option<usize>,
    /// Field index per schema column; `None` when the file lacks the column.
    index: Vec<Option<usize>>,
    /// Header fields no schema column reads: their position and name.
    extra: Vec<(usize, String)>,
}

impl FieldMapping {
    /// CSV without a header: column `i` is field `i`.
    pub fn positional(schema: &Schema) -> Self {
        Self {
            expected_fields: Some(schema.columns.len()),
            index: (0..schema.columns.len()).map(Some).collect(),
            extra: Vec::new(),
        }
    }

    /// CSV with a header: columns are matched to header names (exactly, then
    /// ignoring case and surrounding spaces), a column by its `source` when
    /// it has one, else by its name. Returns the mapping and the schema
    /// columns the header lacks.
    pub fn from_header(schema: &Schema, header: &[String]) -> (Self, Vec<Identifier>) {
        let mut missing = Vec::new();
        let index = schema
            .columns
            .iter()
            .map(|c| {
                let name = c.source_name();
                let found = header.iter().position(|h| h == name).or_else(|| {
                    header
                        .iter()
                        .position(|h| h.trim().eq_ignore_ascii_case(name))
                });
                if found.is_none() {
                    missing.push(c.name.clone());
                }
                found
            })
            .collect::<Vec<_>>();
        let extra = header
            .iter()
            .enumerate()
            .filter(|(i, _)| !index.contains(&Some(*i)))
            .map(|(i, h)| (i, h.clone()))
            .collect();
        (
            Self {
                expected_fields: Some(header.len()),
                index,
                extra,
            },
            missing,
        )
    }

    /// The header fields (by position) that feed no schema column: columns
    /// a file adds to the schema. Empty without a header.
    pub fn unmatched_fields(&self) -> Vec<usize> {
        self.extra.iter().map(|(i, _)| *i).collect()
    }

    /// JSON Lines: values are looked up by column `source`, else by name.
    pub fn by_name(schema: &Schema) -> Self {
        Self {
            expected_fields: None,
            index: vec![None; schema.columns.len()],
            extra: Vec::new(),
        }
    }
}

/// A schema prepared for validation (patterns compiled once).
#[derive(Debug, Clone)]
pub struct CompiledSchema {
    columns: Vec<CompiledColumn>,
    /// Under `schemaDrift: rescue`, the header names and members the columns
    /// read; every other field of a row is rescued.
    rescue: Option<HashSet<String>>,
}

#[derive(Debug, Clone)]
struct CompiledColumn {
    name: Identifier,
    source: Option<String>,
    column_type: ColumnType,
    required: bool,
    max_length: Option<u32>,
    pattern: Option<regex::Regex>,
    allowed: Option<HashSet<String>>,
}

impl CompiledSchema {
    /// Compiles a schema; fails like [`Schema::validate`].
    pub fn new(schema: &Schema) -> Result<Self, DomainError> {
        schema.validate()?;
        let columns = schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pattern = match &c.pattern {
                    Some(p) => Some(compile_pattern(p).map_err(|m| {
                        DomainError::field(format!("schema.columns[{i}].pattern"), m)
                    })?),
                    None => None,
                };
                Ok(CompiledColumn {
                    name: c.name.clone(),
                    source: c.source.clone(),
                    column_type: c.column_type,
                    required: c.required,
                    max_length: c.max_length,
                    pattern,
                    allowed: c
                        .allowed_values
                        .as_ref()
                        .map(|v| v.iter().cloned().collect()),
                })
            })
            .collect::<Result<Vec<_>, DomainError>>()?;
        Ok(Self {
            columns,
            rescue: None,
        })
    }

    /// Rescues what no column reads (`schemaDrift: rescue`): each valid row
    /// gets one more value after its columns, a JSON object of the header
    /// fields (CSV, as strings) or members (JSON Lines, as they are) that no
    /// schema column reads, or NULL when there are none. NUL characters,
    /// which `jsonb` cannot hold, become U+FFFD; bytes that are not UTF-8
    /// are replaced likewise.
    ///
    /// ```
    /// use sluice_domain::format::{FieldsRef, RecordBody};
    /// use sluice_domain::schema::Schema;
    /// use sluice_domain::validation::{CompiledSchema, FieldMapping, ValidBatch};
    ///
    /// let schema: Schema =
    ///     serde_json::from_str(r#"{"columns": [{"name": "id", "type": "integer"}]}"#)?;
    /// let compiled = CompiledSchema::new(&schema)?.rescuing();
    /// let header = ["id".to_owned(), "phone".to_owned()];
    /// let (mapping, _) = FieldMapping::from_header(&schema, &header);
    /// let mut batch = ValidBatch::new(compiled.width());
    /// let mut errors = Vec::new();
    /// let fields = RecordBody::Fields(FieldsRef::new(b"7555-0100", &[1, 9]));
    /// assert!(compiled.check_record(1, fields, &mapping, &mut batch, &mut errors));
    /// let (_, values) = batch.rows().next().expect("a row");
    /// assert_eq!(
    ///     values.iter().collect::<Vec<_>>(),
    ///     [Some("7"), Some(r#"{"phone":"555-0100"}"#)]
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn rescuing(mut self) -> Self {
        let known = self
            .columns
            .iter()
            .map(|c| c.source_name().to_owned())
            .collect();
        self.rescue = Some(known);
        self
    }

    /// Values per valid row: one per column, plus the rescued fields when
    /// [`Self::rescuing`].
    pub fn width(&self) -> usize {
        self.columns.len() + usize::from(self.rescue.is_some())
    }

    /// Validates one decoded record. A valid row is appended to `batch`; every
    /// problem is appended to `errors`. Returns true when the row is valid.
    ///
    /// A CSV file with a header, whose columns come in another order than the
    /// schema's, and a JSON Lines record, checked against the same schema:
    ///
    /// ```
    /// use sluice_domain::format::{FieldsRef, RecordBody};
    /// use sluice_domain::schema::Schema;
    /// use sluice_domain::validation::{CompiledSchema, FieldMapping, RowError, ValidBatch};
    ///
    /// let schema: Schema = serde_json::from_str(
    ///     r#"{"columns": [
    ///         {"name": "id", "type": "integer", "required": true},
    ///         {"name": "country", "type": "string", "allowedValues": ["DE", "FR"]}
    ///     ]}"#,
    /// )
    /// .expect("a schema");
    /// let compiled = CompiledSchema::new(&schema)?;
    /// let (mapping, missing) =
    ///     FieldMapping::from_header(&schema, &["country".to_owned(), "id".to_owned()]);
    /// assert!(missing.is_empty());
    /// let mut batch = ValidBatch::new(compiled.width());
    /// let mut errors = Vec::new();
    ///
    /// // The fields of the record `FR,7`: its bytes and where each field ends.
    /// let fields = RecordBody::Fields(FieldsRef::new(b"FR7", &[2, 3]));
    /// assert!(compiled.check_record(1, fields, &mapping, &mut batch, &mut errors));
    /// let (row, values) = batch.rows().next().expect("one valid row");
    /// assert_eq!(row, 1);
    /// assert_eq!(values.iter().collect::<Vec<_>>(), [Some("7"), Some("FR")]);
    ///
    /// let line = RecordBody::Json(br#"{"id": "seven", "country": "IT"}"#);
    /// let by_name = FieldMapping::by_name(&schema);
    /// assert!(!compiled.check_record(2, line, &by_name, &mut batch, &mut errors));
    /// assert_eq!(
    ///     errors,
    ///     [
    ///         RowError::new(2, "id", "seven", "Expected integer"),
    ///         RowError::new(2, "country", "IT", "Not an allowed value"),
    ///     ]
    /// );
    /// # Ok::<(), sluice_domain::DomainError>(())
    /// ```
    pub fn check_record(
        &self,
        row: u64,
        body: RecordBody<'_>,
        mapping: &FieldMapping,
        batch: &mut ValidBatch,
        errors: &mut Vec<RowError>,
    ) -> bool {
        match body {
            RecordBody::Malformed(problem) => {
                errors.push(RowError::new(row, ROW_COLUMN, "", problem.message()));
                false
            }
            RecordBody::Fields(fields) => self.check_fields(row, fields, mapping, batch, errors),
            RecordBody::Json(line) => self.check_json(row, line, batch, errors),
        }
    }

    fn check_fields(
        &self,
        row: u64,
        fields: FieldsRef<'_>,
        mapping: &FieldMapping,
        batch: &mut ValidBatch,
        errors: &mut Vec<RowError>,
    ) -> bool {
        if let Some(expected) = mapping.expected_fields {
            if fields.len() != expected {
                let encoded = encode_canonical_csv(fields.iter());
                let raw = String::from_utf8_lossy(&encoded);
                errors.push(RowError::new(
                    row,
                    ROW_COLUMN,
                    raw.trim_end_matches('\n'),
                    column_count_message(expected, fields.len()),
                ));
                return false;
            }
        }
        let before = errors.len();
        let mark = batch.begin_row();
        // Checking UTF-8 once for the whole record is much cheaper than per
        // field; a field is then a slice of it, unless a multi-byte character
        // straddles two fields (then that field is invalid on its own).
        let whole = std::str::from_utf8(fields.bytes()).ok();
        for (col, idx) in self.columns.iter().zip(&mapping.index) {
            let raw = idx.and_then(|i| fields.get(i));
            let checked = match (whole, idx.and_then(|i| fields.range(i))) {
                (Some(w), Some(range)) => w.get(range).map(Ok),
                _ => None,
            };
            let text = match checked.or_else(|| raw.map(std::str::from_utf8)) {
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(_)) => {
                    let lossy = String::from_utf8_lossy(raw.unwrap_or_default());
                    errors.push(RowError::new(
                        row,
                        col.name.as_str(),
                        &lossy,
                        messages::UTF8,
                    ));
                    continue;
                }
            };
            match col.check(text) {
                Ok(v) => batch.push_value(v.as_deref()),
                Err(msg) => errors.push(RowError::new(
                    row,
                    col.name.as_str(),
                    text.unwrap_or_default(),
                    msg,
                )),
            }
        }
        if self.rescue.is_some() {
            batch.push_value(rescued_fields(&fields, &mapping.extra).as_deref());
        }
        self.end_row(row, before, mark, batch, errors)
    }

    fn check_json(
        &self,
        row: u64,
        line: &[u8],
        batch: &mut ValidBatch,
        errors: &mut Vec<RowError>,
    ) -> bool {
        let lossy = || String::from_utf8_lossy(line).into_owned();
        let value: serde_json::Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) => {
                let msg = if std::str::from_utf8(line).is_err() {
                    messages::UTF8
                } else {
                    messages::JSON
                };
                errors.push(RowError::new(row, ROW_COLUMN, &lossy(), msg));
                return false;
            }
        };
        let serde_json::Value::Object(map) = value else {
            errors.push(RowError::new(
                row,
                ROW_COLUMN,
                &lossy(),
                messages::JSON_OBJECT,
            ));
            return false;
        };
        let before = errors.len();
        let mark = batch.begin_row();
        for col in &self.columns {
            let member = map.get(col.source_name());
            let text = match (col.column_type, member) {
                // A `json` column takes the member itself, strings included.
                (ColumnType::Json, Some(v)) if !v.is_null() => Some(Cow::Owned(v.to_string())),
                (_, member) => member.and_then(json_value_text),
            };
            match col.check(text.as_deref()) {
                Ok(v) => batch.push_value(v.as_deref()),
                Err(msg) => errors.push(RowError::new(
                    row,
                    col.name.as_str(),
                    text.as_deref().unwrap_or_default(),
                    msg,
                )),
            }
        }
        if let Some(known) = &self.rescue {
            let rescued: serde_json::Map<String, serde_json::Value> = map
                .into_iter()
                .filter(|(k, _)| !known.contains(k))
                .map(|(k, v)| (without_nul(&k), json_without_nul(v)))
                .collect();
            let text =
                (!rescued.is_empty()).then(|| serde_json::Value::Object(rescued).to_string());
            batch.push_value(text.as_deref());
        }
        self.end_row(row, before, mark, batch, errors)
    }

    fn end_row(
        &self,
        row: u64,
        errors_before: usize,
        mark: RowMark,
        batch: &mut ValidBatch,
        errors: &[RowError],
    ) -> bool {
        if errors.len() == errors_before {
            batch.commit_row(row, mark);
            true
        } else {
            batch.rollback_row(mark);
            false
        }
    }
}

/// The rescued fields of a CSV record: a JSON object of the `extra` header
/// fields and their values (strings), `None` when the header has none.
fn rescued_fields(fields: &FieldsRef<'_>, extra: &[(usize, String)]) -> Option<String> {
    if extra.is_empty() {
        return None;
    }
    let members: serde_json::Map<String, serde_json::Value> = extra
        .iter()
        .map(|(i, name)| {
            let value = String::from_utf8_lossy(fields.get(*i).unwrap_or_default());
            (
                without_nul(name),
                serde_json::Value::String(without_nul(&value)),
            )
        })
        .collect();
    Some(serde_json::Value::Object(members).to_string())
}

/// `s` with NUL characters, which PostgreSQL's text and `jsonb` cannot
/// hold, replaced by U+FFFD.
fn without_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// `value` with every NUL character in its strings and member names replaced.
fn json_without_nul(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) if s.contains('\0') => Value::String(without_nul(&s)),
        Value::Array(items) => Value::Array(items.into_iter().map(json_without_nul).collect()),
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(k, v)| (without_nul(&k), json_without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

/// The text a JSON member's value is validated as: `null` is absent, a
/// string its contents, anything else its JSON text.
pub fn json_value_text(value: &serde_json::Value) -> Option<Cow<'_, str>> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(Cow::Borrowed(s)),
        serde_json::Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

impl CompiledColumn {
    fn source_name(&self) -> &str {
        self.source.as_deref().unwrap_or(self.name.as_str())
    }

    /// Checks one value; returns the normalised value to load (`None` = NULL).
    fn check<'v>(&self, value: Option<&'v str>) -> Result<Option<Cow<'v, str>>, Cow<'static, str>> {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return if self.required {
                Err(messages::REQUIRED.into())
            } else {
                Ok(None)
            };
        };
        if v.contains('\0') {
            return Err(messages::NUL.into());
        }
        if let Some(max) = self.max_length {
            if v.chars().count() > max as usize {
                return Err(max_length_message(max).into());
            }
        }
        let normalised = check_type(self.column_type, v)?;
        if let Some(allowed) = &self.allowed {
            if !allowed.contains(v) {
                return Err(messages::ALLOWED.into());
            }
        }
        if let Some(p) = &self.pattern {
            if !p.is_match(v) {
                return Err(messages::PATTERN.into());
            }
        }
        Ok(Some(normalised))
    }
}

/// Checks `v` (non-empty) against a column type and returns the form to load.
pub fn check_type(t: ColumnType, v: &str) -> Result<Cow<'_, str>, Cow<'static, str>> {
    let ok = |good: bool, msg: &'static str| {
        if good {
            Ok(Cow::Borrowed(v))
        } else {
            Err(Cow::Borrowed(msg))
        }
    };
    match t {
        ColumnType::String => Ok(Cow::Borrowed(v)),
        ColumnType::Integer => ok(is_integer(v), messages::INTEGER),
        ColumnType::Number => ok(is_number(v), messages::NUMBER),
        ColumnType::Boolean => parse_boolean(v)
            .map(|b| Cow::Borrowed(if b { "true" } else { "false" }))
            .ok_or(Cow::Borrowed(messages::BOOLEAN)),
        ColumnType::Date => ok(parse_date(v).is_some(), messages::DATE),
        ColumnType::Timestamp => {
            if parse_rfc3339(v).is_none() {
                return Err(messages::TIMESTAMP.into());
            }
            // Canonical separators: `T` and `Z` in upper case.
            if v.bytes().any(|b| b == b't' || b == b'z' || b == b' ') {
                Ok(Cow::Owned(
                    v.chars()
                        .map(|c| match c {
                            't' | ' ' => 'T',
                            'z' => 'Z',
                            c => c,
                        })
                        .collect(),
                ))
            } else {
                Ok(Cow::Borrowed(v))
            }
        }
        ColumnType::Email => ok(is_email(v), messages::EMAIL),
        ColumnType::Uuid => ok(is_uuid(v), messages::UUID),
        ColumnType::Json => check_json_text(v).map(|()| Cow::Borrowed(v)),
    }
}

/// Whether `v` is JSON text `jsonb` can store: it parses, and no string in
/// it holds U+0000 (`jsonb` refuses `\u0000`).
fn check_json_text(v: &str) -> Result<(), Cow<'static, str>> {
    if !v.contains("\\u0000") {
        return serde_json::from_str::<serde::de::IgnoredAny>(v)
            .map(|_| ())
            .map_err(|_| messages::JSON_VALUE.into());
    }
    // Rare: `\u0000` may also be an escaped backslash before `u0000`, so
    // only a full parse tells.
    let value: serde_json::Value =
        serde_json::from_str(v).map_err(|_| Cow::Borrowed(messages::JSON_VALUE))?;
    if holds_nul(&value) {
        Err(messages::JSON_NUL.into())
    } else {
        Ok(())
    }
}

fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(members) => members
            .iter()
            .any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// A signed decimal integer that fits in 64 bits.
pub fn is_integer(v: &str) -> bool {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && v.parse::<i64>().is_ok()
}

/// Most digits and largest exponent accepted in a number, well inside what
/// PostgreSQL's `numeric` can store.
const MAX_NUMBER_DIGITS: usize = 1_000;
const MAX_NUMBER_EXPONENT: i64 = 1_000;

/// A decimal number: `[+-]digits[.digits][e[+-]digits]` (or `.5`), no NaN or infinity.
pub fn is_number(v: &str) -> bool {
    let s = v.strip_prefix(['+', '-']).unwrap_or(v);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (s.get(..i).unwrap_or(""), Some(s.get(i + 1..).unwrap_or(""))),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    let digit_count = int.len() + frac.map_or(0, str::len);
    if digit_count == 0 || digit_count > MAX_NUMBER_DIGITS || !all_digits(int) {
        return false;
    }
    if let Some(f) = frac {
        if !all_digits(f) {
            return false;
        }
    }
    match exponent {
        None => true,
        Some(e) => {
            let body = e.strip_prefix(['+', '-']).unwrap_or(e);
            !body.is_empty()
                && body.len() <= 6
                && all_digits(body)
                && e.parse::<i64>()
                    .is_ok_and(|x| x.abs() <= MAX_NUMBER_EXPONENT)
        }
    }
}

/// `true/false`, `t/f`, `yes/no`, `y/n`, `1/0`, in any case.
pub fn parse_boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

fn digits<T: std::str::FromStr>(s: &str, range: std::ops::Range<usize>) -> Option<T> {
    let part = s.get(range)?;
    if part.bytes().all(|b| b.is_ascii_digit()) {
        part.parse().ok()
    } else {
        None
    }
}

/// A calendar date `YYYY-MM-DD` with a year from 0001 to 9999.
pub fn parse_date(v: &str) -> Option<(i64, u32, u32)> {
    let b = v.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let y: i64 = digits(v, 0..4)?;
    let m: u32 = digits(v, 5..7)?;
    let d: u32 = digits(v, 8..10)?;
    (y >= 1 && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)).then_some((y, m, d))
}

/// The parts of an RFC 3339 timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339 {
    /// Year (1–9999).
    pub year: i64,
    /// Month (1–12).
    pub month: u32,
    /// Day of month.
    pub day: u32,
    /// Hour (0–23).
    pub hour: u32,
    /// Minute (0–59).
    pub minute: u32,
    /// Second (0–60, 60 being a leap second).
    pub second: u32,
    /// Milliseconds of the fraction.
    pub millis: u32,
    /// Offset from UTC in minutes.
    pub offset_minutes: i32,
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `t`, `z` and a space as the
/// date-time separator are accepted (RFC 3339 §5.6 note).
pub fn parse_rfc3339(v: &str) -> Option<Rfc3339> {
    let b = v.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let (year, month, day) = parse_date(v.get(0..10)?)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let hour: u32 = digits(v, 11..13)?;
    let minute: u32 = digits(v, 14..16)?;
    let second: u32 = digits(v, 17..19)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = v.get(19..)?;
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        let ms_digits = frac.get(..n.min(3))?;
        millis = ms_digits.parse::<u32>().ok()? * 10u32.pow(3 - u32::try_from(n.min(3)).ok()?);
        rest = frac.get(n..)?;
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb.get(3) != Some(&b':') {
                return None;
            }
            let sign = match rb.first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let oh: i32 = digits(rest, 1..3)?;
            let om: i32 = digits(rest, 4..6)?;
            // PostgreSQL refuses offsets beyond ±15:59.
            if oh > 15 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    Some(Rfc3339 {
        year,
        month,
        day,
        hour,
        minute,
        second,
        millis,
        offset_minutes,
    })
}

/// A pragmatic e-mail check: `local@domain.tld` in ASCII, RFC 5321 lengths.
pub fn is_email(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() > 254 {
        return false;
    }
    let Some(at) = memchr::memchr(b'@', b) else {
        return false;
    };
    let (local, domain) = b.split_at(at);
    let domain = domain.get(1..).unwrap_or_default();
    if local.is_empty()
        || local.len() > 64
        || local.first() == Some(&b'.')
        || local.last() == Some(&b'.')
    {
        return false;
    }
    // One pass per part over a byte-class table, no allocation: this runs
    // for every value of an email column.
    let mut prev_dot = false;
    for &c in local {
        let dot = c == b'.';
        if EMAIL_CLASS[usize::from(c)] & LOCAL_BYTE == 0 || dot && prev_dot {
            return false;
        }
        prev_dot = dot;
    }
    let mut labels = 0;
    let mut last: &[u8] = &[];
    for label in domain.split(|&c| c == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.first() != Some(&b'-')
            && label.last() != Some(&b'-')
            && label
                .iter()
                .all(|&c| EMAIL_CLASS[usize::from(c)] & DOMAIN_BYTE != 0);
        if !ok {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2
        && (last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
            || last.starts_with(b"xn--"))
}

const LOCAL_BYTE: u8 = 1;
const DOMAIN_BYTE: u8 = 2;

/// Which bytes may appear in the local part (letters, digits and
/// ``!#$%&'*+/=?^_`{|}~.-``) and in a domain label (letters, digits, `-`).
static EMAIL_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        #[allow(clippy::cast_possible_truncation)]
        let c = i as u8;
        if c.is_ascii_alphanumeric() || c == b'-' {
            table[i] = LOCAL_BYTE | DOMAIN_BYTE;
        }
        i += 1;
    }
    let specials = b"!#$%&'*+/=?^_`{|}~.";
    let mut j = 0;
    while j < specials.len() {
        table[specials[j] as usize] = LOCAL_BYTE;
        j += 1;
    }
    table
};

/// A UUID in canonical form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any case).
pub fn is_uuid(v: &str) -> bool {
    v.len() == 36
        && v.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Valid rows of a batch, normalised, stored compactly: one text buffer and a
/// span per cell, so a batch costs a handful of allocations however many rows
/// it holds.
#[derive(Debug, Clone, Default)]
pub struct ValidBatch {
    width: usize,
    rows: Vec<u64>,
    text: String,
    cells: Vec<(u32, u32)>,
}

/// Where a row began in a [`ValidBatch`], to undo it if a value fails.
#[derive(Debug, Clone, Copy)]
pub struct RowMark {
    text: usize,
    cells: usize,
}

const NULL_CELL: u32 = u32::MAX;

impl ValidBatch {
    /// An empty batch of rows with `width` columns.
    pub fn new(width: usize) -> Self {
        Self {
            width,
            ..Self::default()
        }
    }

    /// Columns per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True without rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bytes of value text held, to bound batch memory.
    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }

    /// Every value of the batch, concatenated: a writer can check in one
    /// pass whether any value holds a byte it would have to escape.
    pub fn all_text(&self) -> &str {
        &self.text
    }

    /// Removes every row, keeping the allocations.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.text.clear();
        self.cells.clear();
    }

    fn begin_row(&mut self) -> RowMark {
        RowMark {
            text: self.text.len(),
            cells: self.cells.len(),
        }
    }

    fn push_value(&mut self, v: Option<&str>) {
        match v {
            None => self.cells.push((NULL_CELL, 0)),
            Some(s) => {
                let start = u32::try_from(self.text.len()).unwrap_or(NULL_CELL - 1);
                let len = u32::try_from(s.len()).unwrap_or(0);
                self.text.push_str(s);
                self.cells.push((start, len));
            }
        }
    }

    fn commit_row(&mut self, row: u64, _mark: RowMark) {
        self.rows.push(row);
    }

    fn rollback_row(&mut self, mark: RowMark) {
        self.text.truncate(mark.text);
        self.cells.truncate(mark.cells);
    }

    /// Appends a row of already valid values (tests and fakes).
    pub fn push_row<'a>(&mut self, row: u64, values: impl IntoIterator<Item = Option<&'a str>>) {
        let mark = self.begin_row();
        for v in values {
            self.push_value(v);
        }
        self.commit_row(row, mark);
    }

    /// The source row numbers, in batch order.
    pub fn row_numbers(&self) -> &[u64] {
        &self.rows
    }

    /// The rows: source row number and one value per column (`None` = NULL).
    pub fn rows(&self) -> impl Iterator<Item = (u64, RowValues<'_>)> + '_ {
        self.rows.iter().enumerate().map(move |(i, &row)| {
            let cells = self
                .cells
                .get(i * self.width..(i + 1) * self.width)
                .unwrap_or_default();
            (
                row,
                RowValues {
                    text: &self.text,
                    cells,
                },
            )
        })
    }
}

/// The values of one row of a [`ValidBatch`].
#[derive(Debug, Clone, Copy)]
pub struct RowValues<'a> {
    text: &'a str,
    cells: &'a [(u32, u32)],
}

impl<'a> RowValues<'a> {
    /// The values, `None` for NULL.
    pub fn iter(&self) -> impl Iterator<Item = Option<&'a str>> + 'a {
        let text = self.text;
        self.cells.iter().map(move |&(start, len)| {
            if start == NULL_CELL {
                None
            } else {
                text.get(start as usize..(start as usize + len as usize))
            }
        })
    }
}

/// Encodes fields as one RFC 4180 CSV line (comma, double quotes, `\n`),
/// quoting only where needed. Rejected CSV rows are kept in this canonical
/// form so a retry can decode them whatever the source dialect was.
pub fn encode_canonical_csv<'a>(fields: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let needs_quotes =
            f.is_empty() && i == 0 || f.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
        if needs_quotes {
            out.push(b'"');
            for &b in f {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(f);
        }
    }
    out.push(b'\n');
    out
}

/// The problem message for a malformed record (re-exported for callers that
/// only see [`Problem`]).
pub fn problem_message(p: Problem) -> &'static str {
    p.message()
}

#[cfg(test)]
#[path = "validation_tests.rs"]
mod tests;
