//! Row structs of the metadata tables and their conversions to domain types.
//! Diesel derives live here, never in the domain.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_application::ports::{ApiKey, LeaseToken, PartitionClaim, StoreError};
use sluice_domain::connector::{Connector, CredentialSource};
use sluice_domain::ids::RunId;
use sluice_domain::pipeline::Pipeline;
use sluice_domain::role::Role;
use sluice_domain::run::{Checkpoint, Counters, Partition, PartitionRange, Run, SourcePosition};
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::time::Timestamp;

use crate::schema::{api_keys, connectors, partitions, pipelines, run_summaries};

/// A timestamp column.
pub(crate) type Ts = DateTime<Utc>;

/// Milliseconds to a `timestamptz` value.
pub(crate) fn ts(t: Timestamp) -> Ts {
    DateTime::from_timestamp_millis(t.0).unwrap_or_default()
}

/// A `timestamptz` value to milliseconds.
pub(crate) fn from_ts(t: Ts) -> Timestamp {
    Timestamp(t.timestamp_millis())
}

/// Row numbers and counts are `bigint`; they never exceed `i64::MAX`.
pub(crate) fn int8(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored count back to `u64` (negative values cannot be stored by us).
pub(crate) fn uint8(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Indexes are `integer`.
pub(crate) fn int4(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// A stored index back to `u32`.
pub(crate) fn uint4(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

/// The error for a stored value this version cannot read.
pub(crate) fn corrupt(what: &str) -> StoreError {
    tracing::error!(record = what, "unreadable stored record");
    StoreError::Internal(format!("unreadable stored {what}"))
}

/// Parses a stored id or enum name.
pub(crate) fn parse<T: FromStr>(s: &str, what: &str) -> Result<T, StoreError> {
    s.parse().map_err(|_| corrupt(what))
}

/// A serde value to `jsonb`.
pub(crate) fn to_json<T: Serialize>(v: &T, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(v).map_err(|_| corrupt(what))
}

/// `jsonb` to a serde value.
pub(crate) fn from_json<T: DeserializeOwned>(
    v: serde_json::Value,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(v).map_err(|_| corrupt(what))
}

/// Parses a run status.
pub(crate) fn run_status(s: &str) -> Result<RunStatus, StoreError> {
    RunStatus::parse(s).ok_or_else(|| corrupt("run status"))
}

/// The statuses a partition may move to `to` from, by the domain's partition
/// machine: the `status` guard of every statement that moves partitions.
pub(crate) fn partitions_that_can_become(to: PartitionStatus) -> Vec<&'static str> {
    PartitionStatus::ALL
        .into_iter()
        .filter(|from| from.can_become(to))
        .map(PartitionStatus::as_str)
        .collect()
}

/// `sluice.api_keys`.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: Ts,
    pub revoked_at: Option<Ts>,
}

impl ApiKeyRow {
    pub(crate) fn into_key(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: parse(&self.id, "API key id")?,
            name: self.name,
            role: Role::parse(&self.role).ok_or_else(|| corrupt("API key role"))?,
            prefix: self.prefix,
            created_at: from_ts(self.created_at),
            revoked_at: self.revoked_at.map(from_ts),
        })
    }
}

/// `sluice.connectors` (never the secrets).
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = connectors, check_for_backend(diesel::pg::Pg))]
pub(crate) struct ConnectorRow {
    pub id: String,
    pub name: String,
    pub connector_type: String,
    pub config: serde_json::Value,
    pub credential_keys: Vec<String>,
    pub created_at: Ts,
    pub updated_at: Ts,
    pub credential_source: Option<String>,
}

impl ConnectorRow {
    pub(crate) fn from_connector(c: &Connector) -> Result<Self, StoreError> {
        Ok(Self {
            id: c.id.to_string(),
            name: c.name.clone(),
            connector_type: c.connector_type.as_str().to_owned(),
            config: to_json(&c.config, "connector config")?,
            credential_keys: c.credential_keys.clone(),
            created_at: ts(c.created_at),
            updated_at: ts(c.updated_at),
            credential_source: Some(c.credential_source.as_str().to_owned()),
        })
    }

    pub(crate) fn into_connector(self) -> Result<Connector, StoreError> {
        Ok(Connector {
            id: parse(&self.id, "connector id")?,
            name: self.name,
            connector_type: from_json(
                serde_json::Value::String(self.connector_type),
                "connector type",
            )?,
            config: from_json(self.config, "connector config")?,
            credential_source: match self.credential_source.as_deref() {
                Some(s) => CredentialSource::parse(s).ok_or_else(|| {
                    StoreError::Internal(format!("stored credential source `{s}` is unknown"))
                })?,
                None if self.credential_keys.is_empty() => CredentialSource::None,
                None => CredentialSource::Stored,
            },
            credential_keys: self.credential_keys,
            created_at: from_ts(self.created_at),
            updated_at: from_ts(self.updated_at),
        })
    }
}

/// `sluice.pipelines`.
#[derive(Debug, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = pipelines, check_for_backend(diesel::pg::Pg))]
pub(crate) struct PipelineRow {
    pub id: String,
    pub connector_id: String,
    pub spec: serde_json::Value,
    pub active: bool,
    pub polling_enabled: bool,
    pub created_at: Ts,
    pub updated_at: Ts,
}

impl PipelineRow {
    pub(crate) fn from_pipeline(p: &Pipeline) -> Result<Self, StoreError> {
        Ok(Self {
            id: p.id.to_string(),
            connector_id: p.spec.connector_id.to_string(),
            spec: to_json(&p.spec, "pipeline")?,
            active: p.spec.status == sluice_domain::pipeline::PipelineStatus::Active,
            polling_enabled: p.spec.polling.enabled,
            created_at: ts(p.created_at),
            updated_at: ts(p.updated_at),
        })
    }

    pub(crate) fn into_pipeline(self) -> Result<Pipeline, StoreError> {
        Ok(Pipeline {
            id: parse(&self.id, "pipeline id")?,
            spec: from_json(self.spec, "pipeline")?,
            created_at: from_ts(self.created_at),
            updated_at: from_ts(self.updated_at),
        })
    }
}

/// `sluice.run_summaries`: a run with counters summed from its partitions.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = run_summaries, check_for_backend(diesel::pg::Pg))]
pub(crate) struct RunSummaryRow {
    pub id: String,
    pub pipeline_id: String,
    pub status: String,
    pub load_strategy: String,
    pub run_trigger: String,
    pub metadata: serde_json::Value,
    pub total_rows: Option<i64>,
    pub partition_count: i32,
    pub error: Option<String>,
    pub created_at: Ts,
    pub started_at: Option<Ts>,
    pub finished_at: Option<Ts>,
    pub loaded: i64,
    pub skipped: i64,
    pub failed: i64,
}

impl RunSummaryRow {
    pub(crate) fn into_run(self) -> Result<Run, StoreError> {
        Ok(Run {
            id: parse(&self.id, "run id")?,
            pipeline_id: parse(&self.pipeline_id, "pipeline id")?,
            status: run_status(&self.status)?,
            load_strategy: sluice_domain::pipeline::LoadStrategy::parse(&self.load_strategy)
                .ok_or_else(|| corrupt("load strategy"))?,
            trigger: from_json(serde_json::Value::String(self.run_trigger), "run trigger")?,
            total_rows: self.total_rows.map(uint8),
            partition_count: uint4(self.partition_count),
            counters: Counters {
                loaded: uint8(self.loaded),
                skipped: uint8(self.skipped),
                failed: uint8(self.failed),
            },
            metadata: from_json(self.metadata, "run metadata")?,
            error: self.error,
            created_at: from_ts(self.created_at),
            started_at: self.started_at.map(from_ts),
            finished_at: self.finished_at.map(from_ts),
        })
    }
}

/// `sluice.partitions`.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = partitions, check_for_backend(diesel::pg::Pg))]
pub(crate) struct PartitionRow {
    pub run_id: String,
    pub idx: i32,
    pub first_row: i64,
    pub row_count: i64,
    pub start_file: i32,
    pub start_offset: i64,
    pub status: String,
    pub checkpoint_row: i64,
    pub next_file: i32,
    pub next_offset: i64,
    pub loaded: i64,
    pub skipped: i64,
    pub failed: i64,
    pub rate: Option<f64>,
    pub revisit_cursor: i64,
}

impl PartitionRow {
    /// A new `pending` partition of `run_id` with nothing committed.
    pub(crate) fn fresh(run_id: RunId, range: &PartitionRange) -> Self {
        let cp = Checkpoint::initial(range);
        Self {
            run_id: run_id.to_string(),
            idx: int4(range.index),
            first_row: int8(range.first_row),
            row_count: int8(range.row_count),
            start_file: int4(range.start.file_index),
            start_offset: int8(range.start.byte_offset),
            status: PartitionStatus::Pending.as_str().to_owned(),
            checkpoint_row: int8(cp.row),
            next_file: int4(cp.next.file_index),
            next_offset: int8(cp.next.byte_offset),
            loaded: 0,
            skipped: 0,
            failed: 0,
            rate: None,
            revisit_cursor: 0,
        }
    }

    pub(crate) fn range(&self) -> PartitionRange {
        PartitionRange {
            index: uint4(self.idx),
            first_row: uint8(self.first_row),
            row_count: uint8(self.row_count),
            start: SourcePosition {
                file_index: uint4(self.start_file),
                byte_offset: uint8(self.start_offset),
            },
        }
    }

    pub(crate) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            row: uint8(self.checkpoint_row),
            next: SourcePosition {
                file_index: uint4(self.next_file),
                byte_offset: uint8(self.next_offset),
            },
        }
    }

    pub(crate) fn counters(&self) -> Counters {
        Counters {
            loaded: uint8(self.loaded),
            skipped: uint8(self.skipped),
            failed: uint8(self.failed),
        }
    }

    pub(crate) fn into_partition(self) -> Result<Partition, StoreError> {
        Ok(Partition {
            run_id: parse(&self.run_id, "run id")?,
            range: self.range(),
            status: PartitionStatus::parse(&self.status)
                .ok_or_else(|| corrupt("partition status"))?,
            checkpoint: self.checkpoint(),
            counters: self.counters(),
            rate: self.rate,
        })
    }

    /// The claim this row represents once leased with `token` until `expires`.
    pub(crate) fn into_claim(
        self,
        pipeline_id: &str,
        token: i64,
        expires: Ts,
        pending_revisits: u64,
    ) -> Result<PartitionClaim, StoreError> {
        Ok(PartitionClaim {
            run_id: parse(&self.run_id, "run id")?,
            pipeline_id: parse(pipeline_id, "pipeline id")?,
            range: self.range(),
            checkpoint: self.checkpoint(),
            counters: self.counters(),
            pending_revisits,
            revisit_cursor: uint8(self.revisit_cursor),
            token: LeaseToken(token),
            expires_at: from_ts(expires),
        })
    }
}
