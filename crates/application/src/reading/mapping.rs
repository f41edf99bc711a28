//! What a file's columns mean for a pipeline's schema: the field mapping of
//! each file (by header name, by position, or by JSON member), and what a
//! header lacking schema columns means for a run.

use sluice_domain::DomainError;
use sluice_domain::ddl::RESCUED_COLUMN;
use sluice_domain::format::RecordFormat;
use sluice_domain::pipeline::PipelineSpec;
use sluice_domain::pipeline::SchemaDrift;
use sluice_domain::run::storable_text;
use sluice_domain::schema::Schema;
use sluice_domain::validation::{CompiledSchema, FieldMapping};

use crate::ports::SourceFile;

/// Key columns must have a value: a NULL key would never conflict and would
/// duplicate rows, so they are validated as required.
pub(crate) fn schema_with_required_keys(spec: &PipelineSpec) -> Schema {
    let mut schema = spec.schema.clone();
    for col in &mut schema.columns {
        if spec.destination.key_columns.contains(&col.name) {
            col.required = true;
        }
    }
    schema
}

/// The schema a run validates rows with: key columns required, and under
/// `schemaDrift: rescue` the fields no column reads kept as one more value.
pub(crate) fn compiled_schema(spec: &PipelineSpec) -> Result<CompiledSchema, DomainError> {
    let compiled = CompiledSchema::new(&schema_with_required_keys(spec))?;
    Ok(if spec.schema_drift == SchemaDrift::Rescue {
        compiled.rescuing()
    } else {
        compiled
    })
}

/// The field mapping of each file (by header name for CSV with a header).
pub(crate) fn mappings(spec: &PipelineSpec, files: &[SourceFile]) -> Vec<FieldMapping> {
    files
        .iter()
        .map(|f| match (&spec.record_format(), &f.header) {
            (RecordFormat::Jsonl, _) => FieldMapping::by_name(&spec.schema),
            (RecordFormat::Csv(_), Some(header)) if spec.has_header() => {
                FieldMapping::from_header(&spec.schema, header).0
            }
            (RecordFormat::Csv(_), _) => FieldMapping::positional(&spec.schema),
        })
        .collect()
}

/// What a file's header means for a run.
pub(crate) enum HeaderCheck {
    /// Every schema column is in it.
    Fits,
    /// Some are missing (they load as NULL): the message a run logs.
    Lacks(String),
    /// Not one column matches (the wrong file or the wrong schema): the
    /// message a run fails with.
    SharesNothing(String),
}

/// Most characters of a header shown in a message (a binary file's first
/// line can be anything).
const MAX_HEADER_CHARS: usize = 200;

/// A header as a message shows it: its fields joined, control characters
/// (a binary file's NUL bytes among them) replaced, at most
/// [`MAX_HEADER_CHARS`] characters.
fn quoted_header(header: &[String]) -> String {
    let joined = header.join(", ");
    let mut shown: String = storable_text(&joined)
        .chars()
        .take(MAX_HEADER_CHARS)
        .collect();
    if joined.chars().nth(MAX_HEADER_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

/// The mapping a header gives file `key`, and what it means for a run.
pub(crate) fn check_header(
    spec: &PipelineSpec,
    key: &str,
    header: &[String],
) -> (FieldMapping, HeaderCheck) {
    let (mapping, missing) = FieldMapping::from_header(&spec.schema, header);
    let check = if missing.len() == spec.schema.columns.len() {
        HeaderCheck::SharesNothing(format!(
            "File {key} shares no column with the schema (its header: {})",
            quoted_header(header)
        ))
    } else if missing.is_empty() {
        HeaderCheck::Fits
    } else {
        let names: Vec<&str> = missing.iter().map(|m| m.as_str()).collect();
        HeaderCheck::Lacks(format!(
            "File {key} has no column {} in its header",
            names.join(", ")
        ))
    };
    (mapping, check)
}

/// How the message of a run failed by `schemaDrift: fail` begins.
pub(crate) const DRIFT_FAILURE_PREFIX: &str = "Schema drift in ";

/// How a file's header differs from the schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HeaderDrift {
    /// Header fields no schema column reads.
    pub added: Vec<String>,
    /// Schema columns the header lacks.
    pub missing: Vec<String>,
}

impl HeaderDrift {
    /// The drift of `header` from `spec`'s schema.
    pub(crate) fn of(spec: &PipelineSpec, header: &[String]) -> Self {
        let (mapping, missing) = FieldMapping::from_header(&spec.schema, header);
        Self {
            added: mapping
                .unmatched_fields()
                .into_iter()
                .filter_map(|i| header.get(i))
                .map(|h| storable_text(h).chars().take(MAX_HEADER_CHARS).collect())
                .collect(),
            missing: missing.iter().map(|m| m.as_str().to_owned()).collect(),
        }
    }

    /// True when the header matches the schema.
    pub(crate) fn is_empty(&self) -> bool {
        self.added.is_empty() && self.missing.is_empty()
    }

    /// The message a run with `schemaDrift: fail` fails with.
    pub(crate) fn failure(&self, key: &str) -> String {
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("adds {} not in the schema", self.added.join(", ")));
        }
        if !self.missing.is_empty() {
            parts.push(format!("lacks schema column {}", self.missing.join(", ")));
        }
        format!(
            "{DRIFT_FAILURE_PREFIX}{key}: its header {} (schemaDrift: fail; change the schema or \
             set schemaDrift to ignore, then retry)",
            parts.join(" and ")
        )
    }

    /// What a run does with the added columns, if any, under `policy`
    /// (other than `fail`): the log entry saying it.
    pub(crate) fn added_entry(&self, key: &str, policy: SchemaDrift) -> Option<String> {
        let what = match policy {
            SchemaDrift::Rescue => format!("kept per row in {RESCUED_COLUMN}"),
            SchemaDrift::Evolve => "added to the schema as nullable string columns".to_owned(),
            SchemaDrift::Ignore | SchemaDrift::Fail => "not loaded".to_owned(),
        };
        (!self.added.is_empty()).then(|| {
            format!(
                "File {key} has columns not in the schema, {what}: {}",
                self.added.join(", ")
            )
        })
    }
}
