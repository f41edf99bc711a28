//! Pipelines: which files, what schema, which destination, how to load.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::connector::validate_name;
use crate::error::DomainError;
use crate::format::{CsvDialect, RecordFormat};
use crate::identifier::Identifier;
use crate::ids::{ConnectorId, PipelineId};
use crate::ledger::FileSelection;
use crate::schema::{Column, ColumnType, Schema};
use crate::time::Timestamp;

/// Most partitions a run may be cut into.
pub const MAX_PARTITIONS: u32 = 64;

/// How valid rows reach the destination table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LoadStrategy {
    /// Insert; with key columns, rows whose key exists are skipped.
    Append,
    /// Insert or update by key; the last occurrence in file order wins.
    Upsert,
    /// Load into a shadow table and swap it in when the run completes.
    Replace,
}

impl LoadStrategy {
    /// Every strategy.
    pub const ALL: [LoadStrategy; 3] = [Self::Append, Self::Upsert, Self::Replace];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Append => "append",
            Self::Upsert => "upsert",
            Self::Replace => "replace",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// True if a retry resumes after the checkpoints (append, upsert) rather
    /// than starting over (replace).
    pub fn is_resumable(self) -> bool {
        matches!(self, Self::Append | Self::Upsert)
    }
}

impl fmt::Display for LoadStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run does when a file's header does not match the schema: it adds
/// columns the schema lacks, or lacks columns the schema declares (a renamed
/// column is both). Missing columns load as NULL (or are a `Required value
/// missing` reject) under every policy but `fail`; the policies differ in
/// what becomes of added ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SchemaDrift {
    /// The run fails before loading anything, naming the columns.
    Fail,
    /// Added columns are not loaded; the run's log lists added and missing
    /// columns.
    #[default]
    Ignore,
    /// Added columns (JSON Lines: members no column reads) are kept per row,
    /// as a JSON object, in the destination's `jsonb` column
    /// `_sluice_rescued` (NULL for rows without any).
    Rescue,
    /// Added columns become nullable `string` columns of the pipeline's
    /// schema (its stored definition changes) and of the table, before the
    /// run loads, and load like the others.
    Evolve,
}

impl SchemaDrift {
    fn is_ignore(&self) -> bool {
        *self == Self::Ignore
    }

    /// The policy as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fail => "fail",
            Self::Ignore => "ignore",
            Self::Rescue => "rescue",
            Self::Evolve => "evolve",
        }
    }
}

/// Whether a pipeline may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PipelineStatus {
    /// Runs may start (by hand, API or polling).
    #[default]
    Active,
    /// No run starts; polling skips the pipeline.
    Paused,
}

/// The file format of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    /// Delimited text.
    #[default]
    Csv,
    /// JSON Lines.
    Jsonl,
}

/// Decompression of source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip when the key ends in `.gz`, otherwise none.
    #[default]
    Auto,
    /// Never decompress.
    None,
    /// Always gunzip.
    Gzip,
}

impl Compression {
    /// True if the object at `key` must be gunzipped.
    pub fn is_gzip(self, key: &str) -> bool {
        match self {
            Self::Auto => key.ends_with(".gz"),
            Self::None => false,
            Self::Gzip => true,
        }
    }
}

fn default_delimiter() -> String {
    ",".into()
}
fn default_quote() -> String {
    "\"".into()
}
fn default_true() -> bool {
    true
}

/// CSV settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CsvOptions {
    /// One ASCII character; `,` by default (`\t` for TSV).
    #[serde(default = "default_delimiter")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 1,
            pattern = r"^[\u0000-\u0009\u000B\u000C\u000E-\u007F]$"
        )
    )]
    pub delimiter: String,
    /// One ASCII character; `"` by default.
    #[serde(default = "default_quote")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 1,
            pattern = r"^[\u0000-\u0009\u000B\u000C\u000E-\u007F]$"
        )
    )]
    pub quote: String,
    /// The first line of each file names the columns (matched to the schema by name).
    #[serde(default = "default_true")]
    pub header: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: default_delimiter(),
            quote: default_quote(),
            header: true,
        }
    }
}

/// Which files to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceSpec {
    /// Key prefix (a folder, such as `data/customers/`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub prefix: String,
    /// Glob on the key relative to the prefix (`*.csv`, `**/*.csv.gz`); all files when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 1024))]
    pub pattern: Option<String>,
    /// File format.
    #[serde(default)]
    pub format: SourceFormat,
    /// CSV settings.
    #[serde(default)]
    pub csv: CsvOptions,
    /// Decompression.
    #[serde(default)]
    pub compression: Compression,
    /// Which files a run reads: `new` (not in the file ledger, or changed
    /// since loaded) or `all`. When absent, `new` for `append` and `upsert`,
    /// `all` for `replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<FileSelection>,
}

/// Where rows go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Destination table in the warehouse schema; created from the schema if missing.
    pub table: Identifier,
    /// Columns that identify a row (required for upsert).
    #[serde(default)]
    pub key_columns: Vec<Identifier>,
}

/// What starts a run when polling is enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum PollTrigger {
    /// A new version of the touch file.
    #[default]
    TouchFile,
    /// At least one matching file that is not in the file ledger.
    NewFiles,
}

impl PollTrigger {
    fn is_touch_file(&self) -> bool {
        *self == Self::TouchFile
    }
}

fn default_interval() -> u32 {
    15
}
fn default_touch_file() -> String {
    "_READY.dat".into()
}

/// File-arrival polling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollingSpec {
    /// Whether the pipeline is watched.
    #[serde(default)]
    pub enabled: bool,
    /// What starts a run: `touchFile` (the default; then omitted) or `newFiles`.
    #[serde(default, skip_serializing_if = "PollTrigger::is_touch_file")]
    pub trigger: PollTrigger,
    /// Minutes between checks (at least 1).
    #[serde(default = "default_interval")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 44640))]
    pub interval_minutes: u32,
    /// Name of the touch file under `prefix`.
    #[serde(default = "default_touch_file")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 1024))]
    pub touch_file: String,
    /// Where the touch file is looked for; the source prefix when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Delete the touch file once the run it started succeeded.
    #[serde(default)]
    pub delete_after_process: bool,
}

impl Default for PollingSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            trigger: PollTrigger::TouchFile,
            interval_minutes: default_interval(),
            touch_file: default_touch_file(),
            prefix: None,
            delete_after_process: false,
        }
    }
}

fn default_timezone() -> String {
    "UTC".into()
}

/// Runs started by the clock: a cron expression evaluated in a time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Schedule {
    /// Five fields (minute hour day-of-month month day-of-week), e.g.
    /// `0 2 * * *` for 02:00 every day.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 200, example = "0 2 * * *")
    )]
    pub cron: String,
    /// IANA time zone the expression is read in (`Europe/Berlin`); `UTC` by default.
    #[serde(default = "default_timezone")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, example = "Europe/Berlin")
    )]
    pub timezone: String,
}

fn default_partitions() -> u32 {
    4
}

/// Everything a user defines about a pipeline (the body of create and the
/// result of applying a patch). Rules across fields: key columns must be
/// columns of the schema, `upsert` needs at least one key column, and the CSV
/// quote must differ from the delimiter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PipelineSpec {
    /// Display name.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 200,
            pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
        )
    )]
    pub name: String,
    /// `active` or `paused`.
    #[serde(default)]
    pub status: PipelineStatus,
    /// The connector holding the files.
    pub connector_id: ConnectorId,
    /// Which files and how to read them.
    pub source: SourceSpec,
    /// Row schema.
    pub schema: Schema,
    /// Destination table and key.
    pub destination: Destination,
    /// Load strategy.
    pub load_strategy: LoadStrategy,
    /// What a run does when a CSV header adds or lacks schema columns:
    /// `ignore` (the default; then omitted), `fail`, `rescue` or `evolve`.
    /// JSON Lines takes `ignore` or `rescue`; CSV without a header, whose
    /// fields are read by position, only `ignore`.
    #[serde(default, skip_serializing_if = "SchemaDrift::is_ignore")]
    pub schema_drift: SchemaDrift,
    /// Partitions per run (1–64).
    #[serde(default = "default_partitions")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 64))]
    pub partitions: u32,
    /// Failed rows tolerated before the run fails; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_errors: Option<u64>,
    /// Touch-file or new-file polling.
    #[serde(default)]
    pub polling: PollingSpec,
    /// Runs started on a cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
}

fn single_ascii(s: &str, field: &str) -> Result<u8, DomainError> {
    match s.as_bytes() {
        [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(DomainError::field(
            field,
            "must be exactly one ASCII character other than a line break",
        )),
    }
}

fn check_key_path(path: &str, field: &str) -> Result<(), DomainError> {
    if path.starts_with('/') {
        return Err(DomainError::field(
            field,
            "must be relative (no leading `/`)",
        ));
    }
    if path.split('/').any(|seg| seg == "..") {
        return Err(DomainError::field(field, "must not contain `..`"));
    }
    if path.len() > 1024 {
        return Err(DomainError::field(field, "must be at most 1024 characters"));
    }
    if path.chars().any(char::is_control) {
        return Err(DomainError::field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl PipelineSpec {
    /// Checks every rule of a pipeline definition; the error names the first
    /// offending field as a JSON path.
    pub fn validate(&self) -> Result<(), DomainError> {
        validate_name(&self.name, "name")?;
        check_key_path(&self.source.prefix, "source.prefix")?;
        if let Some(p) = &self.source.pattern {
            if p.is_empty() || p.len() > 1024 {
                return Err(DomainError::field(
                    "source.pattern",
                    "must be 1 to 1024 characters",
                ));
            }
        }
        let delimiter = single_ascii(&self.source.csv.delimiter, "source.csv.delimiter")?;
        let quote = single_ascii(&self.source.csv.quote, "source.csv.quote")?;
        if delimiter == quote {
            return Err(DomainError::field(
                "source.csv.quote",
                "must differ from the delimiter",
            ));
        }
        self.schema.validate()?;
        let mut keys = HashSet::new();
        for (i, key) in self.destination.key_columns.iter().enumerate() {
            let field = format!("destination.keyColumns[{i}]");
            if self.schema.column(key.as_str()).is_none() {
                return Err(DomainError::field(
                    field,
                    format!("`{key}` is not a column of the schema"),
                ));
            }
            if !keys.insert(key.as_str()) {
                return Err(DomainError::field(
                    field,
                    format!("`{key}` is listed twice"),
                ));
            }
        }
        if self.load_strategy == LoadStrategy::Upsert && self.destination.key_columns.is_empty() {
            return Err(DomainError::field(
                "destination.keyColumns",
                "upsert needs at least one key column",
            ));
        }
        self.check_schema_drift()?;
        if !(1..=MAX_PARTITIONS).contains(&self.partitions) {
            return Err(DomainError::field(
                "partitions",
                format!("must be between 1 and {MAX_PARTITIONS}"),
            ));
        }
        let p = &self.polling;
        if p.interval_minutes < 1 {
            return Err(DomainError::field(
                "polling.intervalMinutes",
                "must be at least 1",
            ));
        }
        if p.interval_minutes > 44_640 {
            return Err(DomainError::field(
                "polling.intervalMinutes",
                "must be at most 44640 (31 days)",
            ));
        }
        if p.touch_file.is_empty() || p.touch_file.ends_with('/') {
            return Err(DomainError::field("polling.touchFile", "must name a file"));
        }
        check_key_path(&p.touch_file, "polling.touchFile")?;
        if let Some(prefix) = &p.prefix {
            check_key_path(prefix, "polling.prefix")?;
        }
        if let Some(s) = &self.schedule {
            if s.cron.trim().is_empty() || s.cron.len() > 200 {
                return Err(DomainError::field(
                    "schedule.cron",
                    "must be 1 to 200 characters",
                ));
            }
            if s.timezone.is_empty() || s.timezone.len() > 64 {
                return Err(DomainError::field(
                    "schedule.timezone",
                    "must be 1 to 64 characters",
                ));
            }
        }
        Ok(())
    }

    /// Refuses a drift policy the source cannot apply: JSON Lines has no
    /// header to compare before loading (`fail`, `evolve`), and a CSV file
    /// without one is read by position, so it has no names to compare.
    fn check_schema_drift(&self) -> Result<(), DomainError> {
        let policy = self.schema_drift;
        let refused = match self.source.format {
            SourceFormat::Jsonl => matches!(policy, SchemaDrift::Fail | SchemaDrift::Evolve)
                .then_some("JSON Lines has no header to compare before loading: use `ignore` or `rescue` (which keeps the members no column reads)"),
            SourceFormat::Csv if !self.source.csv.header => (policy != SchemaDrift::Ignore)
                .then_some("a CSV file without a header is read by position and has no column names to compare: use `ignore`, or set `source.csv.header`"),
            SourceFormat::Csv => None,
        };
        match refused {
            Some(why) => Err(DomainError::field(
                "schemaDrift",
                format!("`{}` does not apply: {why}", policy.as_str()),
            )),
            None => Ok(()),
        }
    }

    /// The columns a run loads: the schema's, and under `schemaDrift:
    /// rescue` the `jsonb` column [`crate::ddl::RESCUED_COLUMN`] after them.
    pub fn load_schema(&self) -> Schema {
        let mut schema = self.schema.clone();
        if self.schema_drift == SchemaDrift::Rescue {
            if let Ok(name) = Identifier::parse(crate::ddl::RESCUED_COLUMN) {
                schema.columns.push(Column {
                    name,
                    source: None,
                    column_type: ColumnType::Json,
                    required: false,
                    max_length: None,
                    pattern: None,
                    allowed_values: None,
                });
            }
        }
        schema
    }

    /// The decoder settings for this source. Call after [`Self::validate`].
    pub fn record_format(&self) -> RecordFormat {
        match self.source.format {
            SourceFormat::Csv => RecordFormat::Csv(CsvDialect {
                delimiter: self.source.csv.delimiter.bytes().next().unwrap_or(b','),
                quote: self.source.csv.quote.bytes().next().unwrap_or(b'"'),
            }),
            SourceFormat::Jsonl => RecordFormat::Jsonl,
        }
    }

    /// True if the first line of each file is a header.
    pub fn has_header(&self) -> bool {
        self.source.format == SourceFormat::Csv && self.source.csv.header
    }

    /// Which files a run of this definition reads (`source.files` or the
    /// strategy's default).
    pub fn file_selection(&self) -> FileSelection {
        self.source
            .files
            .unwrap_or_else(|| FileSelection::default_for(self.load_strategy))
    }

    /// True if the scheduler looks at this pipeline: polling enabled or a schedule set.
    pub fn is_watched(&self) -> bool {
        self.polling.enabled || self.schedule.is_some()
    }

    /// Where the touch file is looked for.
    pub fn polling_prefix(&self) -> &str {
        self.polling
            .prefix
            .as_deref()
            .unwrap_or(&self.source.prefix)
    }

    /// Full key of the touch file: polling prefix joined with its name.
    pub fn touch_file_key(&self) -> String {
        join_key(self.polling_prefix(), &self.polling.touch_file)
    }
}

/// Joins a prefix and a name with exactly one `/` between them.
pub fn join_key(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else if prefix.ends_with('/') {
        format!("{prefix}{name}")
    } else {
        format!("{prefix}/{name}")
    }
}

/// A stored pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    /// Id (`pipe_…`).
    pub id: PipelineId,
    /// The definition.
    #[serde(flatten)]
    pub spec: PipelineSpec,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// Read back as written: the definition is decoded from the members other
/// than `id`, `createdAt` and `updatedAt` (serde cannot flatten into a
/// definition that refuses unknown members).
impl<'de> Deserialize<'de> for Pipeline {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut members = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut take = |name: &'static str| {
            members
                .remove(name)
                .ok_or_else(|| D::Error::missing_field(name))
        };
        let id = serde_json::from_value(take("id")?).map_err(D::Error::custom)?;
        let created_at = serde_json::from_value(take("createdAt")?).map_err(D::Error::custom)?;
        let updated_at = serde_json::from_value(take("updatedAt")?).map_err(D::Error::custom)?;
        let spec =
            serde_json::from_value(serde_json::Value::Object(members)).map_err(D::Error::custom)?;
        Ok(Self {
            id,
            spec,
            created_at,
            updated_at,
        })
    }
}

/// The schema of a stored pipeline: every property of [`PipelineSpec`] plus
/// `id`, `createdAt` and `updatedAt`. Written by hand because the derived
/// schema of a flattened `deny_unknown_fields` struct is an `allOf` whose
/// `additionalProperties: false` forbids those three members.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Pipeline {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::Schema;
        match <PipelineSpec as utoipa::PartialSchema>::schema() {
            RefOr::T(Schema::Object(mut object)) => {
                object.additional_properties = None;
                object.description =
                    Some("A stored pipeline: its definition, id and timestamps.".into());
                object
                    .properties
                    .insert("id".into(), <PipelineId as utoipa::PartialSchema>::schema());
                for field in ["createdAt", "updatedAt"] {
                    object
                        .properties
                        .insert(field.into(), <Timestamp as utoipa::PartialSchema>::schema());
                }
                for field in ["id", "createdAt", "updatedAt"] {
                    object.required.push(field.into());
                }
                RefOr::T(Schema::Object(object))
            }
            other => other,
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Pipeline {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <PipelineSpec as utoipa::ToSchema>::schemas(schemas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "name": "Daily Customer Import",
            "connectorId": "conn_01J9Z8Y7X6W5V4T3S2R1Q0P9NM",
            "source": {"prefix": "data/customers/", "pattern": "*.csv"},
            "schema": {"columns": [
                {"name": "id", "type": "integer", "required": true},
                {"name": "email", "type": "email"}
            ]},
            "destination": {"table": "customers", "keyColumns": ["id"]},
            "loadStrategy": "upsert"
        })
    }

    fn parse(v: serde_json::Value) -> PipelineSpec {
        serde_json::from_value(v).expect("spec")
    }

    fn field_of(v: serde_json::Value) -> String {
        match parse(v).validate() {
            Err(DomainError::InvalidField { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn a_stored_pipeline_reads_back_as_written() {
        let pipeline = Pipeline {
            id: PipelineId::parse("pipe_01J9Z8Y7X6W5V4T3S2R1Q0P9NM").expect("id"),
            spec: parse(base()),
            created_at: Timestamp(1_700_000_000_000),
            updated_at: Timestamp(1_700_000_360_000),
        };
        let json = serde_json::to_value(&pipeline).expect("json");
        let back: Pipeline = serde_json::from_value(json.clone()).expect("read back");
        assert_eq!(back, pipeline);
        let mut no_id = json;
        no_id.as_object_mut().expect("object").remove("id");
        let e = serde_json::from_value::<Pipeline>(no_id).expect_err("id is required");
        assert!(e.to_string().contains("id"), "{e}");
    }

    #[test]
    fn defaults_and_a_valid_spec() {
        let spec = parse(base());
        assert_eq!(spec.validate(), Ok(()));
        assert_eq!(spec.partitions, 4);
        assert_eq!(spec.status, PipelineStatus::Active);
        assert!(spec.has_header());
        assert_eq!(spec.polling.touch_file, "_READY.dat");
        assert_eq!(spec.touch_file_key(), "data/customers/_READY.dat");
        assert_eq!(
            spec.record_format(),
            RecordFormat::Csv(CsvDialect::default())
        );
    }

    #[test]
    fn rule_violations_name_their_field() {
        let mut v = base();
        v["destination"]["keyColumns"] = serde_json::json!([]);
        assert_eq!(field_of(v), "destination.keyColumns");
        let mut v = base();
        v["destination"]["keyColumns"] = serde_json::json!(["nope"]);
        assert_eq!(field_of(v), "destination.keyColumns[0]");
        for bad in [0, 65] {
            let mut v = base();
            v["partitions"] = serde_json::json!(bad);
            assert_eq!(field_of(v), "partitions");
        }
        let mut v = base();
        v["polling"] = serde_json::json!({"enabled": true, "intervalMinutes": 0});
        assert_eq!(field_of(v), "polling.intervalMinutes");
        let mut v = base();
        v["source"]["csv"] = serde_json::json!({"delimiter": ",,"});
        assert_eq!(field_of(v), "source.csv.delimiter");
        let mut v = base();
        v["source"]["prefix"] = serde_json::json!("../etc");
        assert_eq!(field_of(v), "source.prefix");
        let mut v = base();
        v["polling"] = serde_json::json!({"touchFile": "/abs"});
        assert_eq!(field_of(v), "polling.touchFile");
    }

    #[test]
    fn bad_enum_values_and_identifiers_do_not_parse() {
        let mut v = base();
        v["loadStrategy"] = serde_json::json!("merge");
        assert!(serde_json::from_value::<PipelineSpec>(v).is_err());
        let mut v = base();
        v["destination"]["table"] = serde_json::json!("x; DROP TABLE y");
        assert!(serde_json::from_value::<PipelineSpec>(v).is_err());
    }

    #[test]
    fn compression_by_extension() {
        assert!(Compression::Auto.is_gzip("a/b.csv.gz"));
        assert!(!Compression::Auto.is_gzip("a/b.csv"));
        assert!(Compression::Gzip.is_gzip("a/b.csv"));
        assert!(!Compression::None.is_gzip("a/b.csv.gz"));
    }

    #[test]
    fn resumable_strategies() {
        assert!(LoadStrategy::Append.is_resumable());
        assert!(LoadStrategy::Upsert.is_resumable());
        assert!(!LoadStrategy::Replace.is_resumable());
    }

    #[test]
    fn keys_join_with_one_slash() {
        assert_eq!(join_key("", "_READY.dat"), "_READY.dat");
        assert_eq!(join_key("a/", "x"), "a/x");
        assert_eq!(join_key("a", "x"), "a/x");
    }
}
