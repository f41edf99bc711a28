//! Schema inference: profiles of the columns of sampled records and the
//! narrowest column type every sampled value satisfies.
//!
//! A value "satisfies" a type when [`check_type`] — the very check a run
//! applies to it — accepts it, so a proposed type never rejects a value that
//! was sampled. The types form a lattice, narrowest first: `integer` <
//! `number`; `boolean`; `date`; `timestamp`; `uuid`; `email`; everything falls
//! back to `string`. Where two types fit every value (`0`/`1` is both an
//! integer and a boolean), the narrower one in that order wins. Empty values
//! (an empty field, an absent member, JSON `null`) are ignored for the type
//! and make the column not `required`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::format::{FieldsRef, RecordBody};
use crate::identifier::{Identifier, identifiers_for};
use crate::schema::{Column, ColumnType, MAX_COLUMNS, Schema};
use crate::validation::{check_type, json_value_text};

/// Sample values kept per column.
pub const MAX_SAMPLES: usize = 5;
/// Longest sample value kept, in characters (longer ones are cut).
pub const MAX_SAMPLE_CHARS: usize = 100;

/// The types tried, narrowest first; `string` is the fallback.
pub const LATTICE: [ColumnType; 7] = [
    ColumnType::Integer,
    ColumnType::Number,
    ColumnType::Boolean,
    ColumnType::Date,
    ColumnType::Timestamp,
    ColumnType::Uuid,
    ColumnType::Email,
];

/// A type fitting at least this share of a column's values (but not all of
/// them) is reported as the `closest` type of a `string` column.
pub const CLOSEST_SHARE: f64 = 0.5;

/// What has been seen of one column.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnProfile {
    /// The header name or JSON member (`column_N` for CSV without a header).
    pub header: String,
    /// Non-empty values seen.
    pub values: u64,
    /// Values of each [`LATTICE`] type that fit it.
    fits: [u64; LATTICE.len()],
    /// Longest value seen, in characters.
    pub max_chars: u64,
    /// The first distinct values seen (at most [`MAX_SAMPLES`]).
    pub samples: Vec<String>,
    /// A value with a leading zero that a numeric type would lose (`007`).
    pub leading_zero: Option<String>,
    /// A value holding a NUL character (no column can load it).
    pub nul: bool,
}

impl ColumnProfile {
    /// An empty profile of `header`.
    pub fn new(header: impl Into<String>) -> Self {
        Self {
            header: header.into(),
            values: 0,
            fits: [0; LATTICE.len()],
            max_chars: 0,
            samples: Vec::new(),
            leading_zero: None,
            nul: false,
        }
    }

    /// Takes one value into account (`None` or empty: ignored for the type;
    /// the caller counts rows, so emptiness is `rows - values`).
    pub fn observe(&mut self, value: Option<&str>) {
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return;
        };
        self.values += 1;
        if v.contains('\0') {
            self.nul = true;
        }
        let chars = v.chars().count() as u64;
        self.max_chars = self.max_chars.max(chars);
        for (fit, t) in self.fits.iter_mut().zip(LATTICE) {
            if check_type(t, v).is_ok() {
                *fit += 1;
            }
        }
        if self.leading_zero.is_none() && has_leading_zero(v) {
            self.leading_zero = Some(cut(v));
        }
        if self.samples.len() < MAX_SAMPLES && !self.samples.iter().any(|s| s == v) {
            self.samples.push(cut(v));
        }
    }

    /// The share of the non-empty values that fit `t` (1 with no value).
    pub fn share(&self, t: ColumnType) -> f64 {
        if self.values == 0 {
            return 1.0;
        }
        let fits = match LATTICE.iter().position(|&l| l == t) {
            Some(i) => self.fits.get(i).copied().unwrap_or(0),
            None => self.values,
        };
        fits as f64 / self.values as f64
    }

    /// The narrowest type every non-empty value fits, ignoring leading zeros
    /// (see [`ColumnProfile::proposed_type`]).
    fn narrowest(&self) -> ColumnType {
        if self.values == 0 {
            return ColumnType::String;
        }
        LATTICE
            .iter()
            .zip(self.fits)
            .find(|(_, fits)| *fits == self.values)
            .map_or(ColumnType::String, |(t, _)| *t)
    }

    /// The proposed type: the narrowest one, except that a numeric column
    /// with a leading zero stays `string` (an integer would lose the zero of
    /// a postcode or an account number), and a column without a value is
    /// `string`.
    pub fn proposed_type(&self) -> ColumnType {
        match self.narrowest() {
            ColumnType::Integer | ColumnType::Number if self.leading_zero.is_some() => {
                ColumnType::String
            }
            t => t,
        }
    }

    /// For a `string` column, the narrower type fitting the most values, when
    /// it fits at least [`CLOSEST_SHARE`] of them: the values that keep it a
    /// string are perhaps mistakes.
    pub fn closest(&self) -> Option<(ColumnType, f64)> {
        if self.proposed_type() != ColumnType::String || self.values == 0 {
            return None;
        }
        let (i, best) = self
            .fits
            .iter()
            .enumerate()
            .max_by_key(|(i, fits)| (**fits, std::cmp::Reverse(*i)))?;
        let share = *best as f64 / self.values as f64;
        (share >= CLOSEST_SHARE && *best < self.values)
            .then(|| LATTICE.get(i).map(|t| (*t, share)))
            .flatten()
    }
}

/// `007`, `-01`, `00.5`: digits (after a sign) starting with a zero that is
/// not the only digit before the decimal point.
fn has_leading_zero(v: &str) -> bool {
    let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
    let int = digits.split(['.', 'e', 'E']).next().unwrap_or("");
    int.len() > 1 && int.starts_with('0') && int.bytes().all(|b| b.is_ascii_digit())
}

fn cut(v: &str) -> String {
    v.chars().take(MAX_SAMPLE_CHARS).collect()
}

/// One column as inference proposes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InferredColumn {
    /// The proposed column name.
    pub name: Identifier,
    /// The header name or JSON member it reads, when it differs from `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The narrowest type every sampled non-empty value satisfies.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// No sampled row had it empty or absent.
    pub required: bool,
    /// The longest sampled value, in characters: a hint, not put in the
    /// proposed schema (a longer value later would be rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Up to 5 distinct sampled values (each cut at 100 characters).
    pub samples: Vec<String>,
    /// Sampled rows (empty values included).
    pub seen: u64,
    /// Non-empty sampled values.
    pub values: u64,
    /// Share of the non-empty values that satisfy `type` (1 when there were
    /// none).
    pub fit_share: f64,
    /// For a `string` column: the narrower type most of its values satisfy,
    /// and their share, when at least half do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closest: Option<ClosestType>,
}

/// A narrower type most values of a `string` column satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ClosestType {
    /// The type.
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    /// Share of the non-empty values that satisfy it.
    pub share: f64,
}

/// A header name and the column name proposed for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NameMapping {
    /// As in the file.
    pub header: String,
    /// The identifier proposed.
    pub name: Identifier,
}

/// What inference found in the sampled records.
#[derive(Debug, Clone, PartialEq)]
pub struct Inferred {
    /// The proposed columns, in first-seen order.
    pub columns: Vec<InferredColumn>,
    /// Every header name and its column name.
    pub mapping: Vec<NameMapping>,
    /// What a user should look at before using the proposal.
    pub warnings: Vec<String>,
    /// Records sampled (malformed ones included).
    pub rows: u64,
    /// Records that no schema could load (a broken quote, a line that is not
    /// a JSON object, a CSV record of another width than its header).
    pub malformed: u64,
}

impl Inferred {
    /// The proposed schema: name, source, type and `required` of each
    /// column (no `maxLength`, pattern or allowed values).
    pub fn schema(&self) -> Schema {
        Schema {
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    source: c.source.clone(),
                    required: c.required,
                    ..Column::new(c.name.clone(), c.column_type)
                })
                .collect(),
        }
    }
}

/// Profiles sampled records, file after file, in bounded memory: one
/// [`ColumnProfile`] per column (at most [`MAX_COLUMNS`]), nothing per row.
///
/// ```
/// use sluice_domain::format::{FieldsRef, RecordBody};
/// use sluice_domain::inference::SampleProfiler;
/// use sluice_domain::schema::ColumnType;
///
/// let mut p = SampleProfiler::new();
/// p.header("a.csv", &["ID".to_owned(), "Amount".to_owned()]);
/// p.record(RecordBody::Fields(FieldsRef::new(b"712.50", &[1, 6])));
/// p.record(RecordBody::Fields(FieldsRef::new(b"8", &[1, 1])));
/// let inferred = p.finish();
/// assert_eq!(inferred.columns[0].name.as_str(), "id");
/// assert_eq!(inferred.columns[0].source.as_deref(), Some("ID"));
/// assert_eq!(inferred.columns[0].column_type, ColumnType::Integer);
/// assert!(inferred.columns[0].required);
/// assert_eq!(inferred.columns[1].column_type, ColumnType::Number);
/// assert!(!inferred.columns[1].required);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SampleProfiler {
    profiles: Vec<ColumnProfile>,
    by_header: HashMap<String, usize>,
    /// Profile index of each field of the current file's header.
    current: Vec<Option<usize>>,
    /// The current file has a header (else fields are positional).
    headed: bool,
    /// The first file's key and header, to compare the others with.
    first_header: Option<(String, Vec<String>)>,
    /// Per-profile count of rows a file held without that column.
    rows: u64,
    malformed: u64,
    too_many_columns: bool,
    warnings: Vec<String>,
}

impl SampleProfiler {
    /// A profiler without records.
    pub fn new() -> Self {
        Self::default()
    }

    fn profile_of(&mut self, name: &str) -> Option<usize> {
        if let Some(&i) = self.by_header.get(name) {
            return Some(i);
        }
        if self.profiles.len() >= MAX_COLUMNS {
            self.too_many_columns = true;
            return None;
        }
        self.profiles.push(ColumnProfile::new(name));
        let i = self.profiles.len() - 1;
        self.by_header.insert(name.to_owned(), i);
        Some(i)
    }

    /// A CSV file's header: its fields are matched to columns by name from
    /// now on. A header differing from the first file's is a warning.
    pub fn header(&mut self, file: &str, header: &[String]) {
        self.headed = true;
        let mut seen_here = HashMap::new();
        self.current = header
            .iter()
            .map(|h| {
                // A name repeated within one header is another column.
                let n = seen_here.entry(h.clone()).or_insert(0u32);
                *n += 1;
                let key = if *n == 1 {
                    h.clone()
                } else {
                    format!("{h}\u{0}{n}")
                };
                self.profile_of(&key)
            })
            .collect();
        match &self.first_header {
            None => self.first_header = Some((file.to_owned(), header.to_vec())),
            Some((first, theirs)) if theirs != header => {
                let added: Vec<&str> = header
                    .iter()
                    .filter(|h| !theirs.contains(h))
                    .map(String::as_str)
                    .collect();
                let lacks: Vec<&str> = theirs
                    .iter()
                    .filter(|h| !header.contains(h))
                    .map(String::as_str)
                    .collect();
                let mut what = Vec::new();
                if !added.is_empty() {
                    what.push(format!("adds {}", added.join(", ")));
                }
                if !lacks.is_empty() {
                    what.push(format!("lacks {}", lacks.join(", ")));
                }
                if what.is_empty() {
                    what.push("orders its columns differently".to_owned());
                }
                self.warnings.push(format!(
                    "The header of {file} differs from the header of {first}: it {}",
                    what.join(" and ")
                ));
            }
            Some(_) => {}
        }
    }

    /// One decoded record.
    pub fn record(&mut self, body: RecordBody<'_>) {
        self.rows += 1;
        match body {
            RecordBody::Malformed(_) => self.malformed += 1,
            RecordBody::Fields(fields) => self.fields(fields),
            RecordBody::Json(line) => self.json(line),
        }
    }

    fn fields(&mut self, fields: FieldsRef<'_>) {
        if !self.headed && self.current.is_empty() {
            // Without a header, the first record's width sets the columns.
            self.current = (1..=fields.len())
                .map(|i| self.profile_of(&format!("column_{i}")))
                .collect();
        }
        if fields.len() != self.current.len() {
            // A run rejects it whatever the schema: not evidence of a type.
            self.malformed += 1;
            return;
        }
        for (i, slot) in self.current.iter().enumerate() {
            let Some(p) = slot.and_then(|p| self.profiles.get_mut(p)) else {
                continue;
            };
            let value = fields.get(i).map(String::from_utf8_lossy);
            p.observe(value.as_deref());
        }
    }

    fn json(&mut self, line: &[u8]) {
        let Ok(Members(members)) = serde_json::from_slice::<Members>(line) else {
            self.malformed += 1;
            return;
        };
        for (key, value) in &members {
            let Some(i) = self.profile_of(key) else {
                continue;
            };
            if let Some(p) = self.profiles.get_mut(i) {
                p.observe(json_value_text(value).as_deref());
            }
        }
    }

    /// The proposal.
    pub fn finish(self) -> Inferred {
        let loadable = self.rows - self.malformed;
        let headers: Vec<&str> = self
            .profiles
            .iter()
            .map(|p| p.header.split('\u{0}').next().unwrap_or(""))
            .collect();
        let names = identifiers_for(&headers);
        let mut warnings = self.warnings;
        let mut columns = Vec::with_capacity(self.profiles.len());
        let mut mapping = Vec::with_capacity(self.profiles.len());
        for ((p, name), header) in self.profiles.iter().zip(names).zip(headers) {
            let t = p.proposed_type();
            if p.values == 0 {
                warnings.push(format!(
                    "Column {name} is empty in every sampled row: proposed as string"
                ));
            }
            if let (Some(v), ColumnType::String) = (&p.leading_zero, t) {
                if matches!(p.narrowest(), ColumnType::Integer | ColumnType::Number) {
                    warnings.push(format!(
                        "Column {name} holds numbers with leading zeros (such as {v}), which a \
                         numeric column would drop: proposed as string"
                    ));
                }
            }
            if p.nul {
                warnings.push(format!(
                    "Column {name} has values with a NUL character, which no column can load: \
                     those rows will be rejected"
                ));
            }
            let closest = p
                .closest()
                .map(|(column_type, share)| ClosestType { column_type, share });
            if let Some(c) = closest {
                warnings.push(format!(
                    "Column {name}: {:.0}% of its values are {}, the others keep it a string",
                    c.share * 100.0,
                    c.column_type.as_str()
                ));
            }
            let source = (header != name.as_str()).then(|| header.to_owned());
            mapping.push(NameMapping {
                header: header.to_owned(),
                name: name.clone(),
            });
            columns.push(InferredColumn {
                name,
                source,
                column_type: t,
                required: p.values > 0 && p.values == loadable,
                max_length: (p.max_chars > 0).then_some(p.max_chars),
                samples: p.samples.clone(),
                seen: loadable,
                values: p.values,
                fit_share: p.share(t),
                closest,
            });
        }
        if self.too_many_columns {
            warnings.push(format!(
                "The samples have more than {MAX_COLUMNS} columns: only the first {MAX_COLUMNS} are proposed"
            ));
        }
        if self.malformed > 0 {
            warnings.push(format!(
                "{} of {} sampled records cannot be loaded whatever the schema (malformed, or of \
                 another width than the header): a run rejects them",
                self.malformed, self.rows
            ));
        }
        Inferred {
            columns,
            mapping,
            warnings,
            rows: self.rows,
            malformed: self.malformed,
        }
    }
}

/// A JSON object's members in file order (a `serde_json` map sorts them).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Members, A::Error> {
                let mut out: Vec<(String, serde_json::Value)> = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, serde_json::Value>()? {
                    // A repeated member: the last one counts, as for a run.
                    match out.iter_mut().find(|(seen, _)| *seen == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[cfg(test)]
#[path = "inference_tests.rs"]
mod tests;
