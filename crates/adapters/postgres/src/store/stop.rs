//! Ending a run early (failed or cancelled), shared by `fail_run` and `cancel_run`.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sluice_application::ports::StoreError;
use sluice_domain::ids::RunId;
use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::run::{LogEntry, storable_text};
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::time::Timestamp;

use super::runs::insert_log;
use crate::error::DbResult;
use crate::loader::shadow_table;
use crate::rows::{partitions_that_can_become, run_status, ts};
use crate::schema::{partition_leases, runs};

/// Moves a pending or running run to `to` (failed or cancelled) inside the
/// caller's transaction: unfinished partitions `failed`, leases cleared, a
/// `replace` shadow table dropped, `entry` logged. Returns the current status
/// (and changes nothing) when the run is already terminal; `NotFound` when
/// it does not exist.
pub(crate) async fn stop_run(
    conn: &mut AsyncPgConnection,
    warehouse: &str,
    run_id: RunId,
    to: RunStatus,
    at: Timestamp,
    entry: &LogEntry,
) -> DbResult<Option<RunStatus>> {
    let key = run_id.to_string();
    let found: Option<(String, String)> = runs::table
        .find(&key)
        .select((runs::status, runs::load_strategy))
        // NO KEY UPDATE: conflicts with other writers of the run, but not with
        // the KEY SHARE locks that in-flight batch commits take through their
        // foreign keys (errors, rejected rows) while we wait for their
        // partition rows, which would otherwise deadlock.
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?;
    let Some((status, strategy)) = found else {
        return Err(StoreError::not_found("run", run_id).into());
    };
    let current = run_status(&status)?;
    if current.transition(to).is_err() {
        return Ok(Some(current));
    }
    let error = (to == RunStatus::Failed).then(|| storable_text(&entry.message));
    diesel::update(runs::table.find(&key))
        .set((
            runs::status.eq(to.as_str()),
            runs::finished_at.eq(Some(ts(at))),
            runs::error.eq(error),
        ))
        .execute(conn)
        .await?;
    crate::queue::clear_extraction(conn, &key).await?;
    diesel::update(
        partition_leases::table
            .filter(partition_leases::run_id.eq(&key))
            .filter(
                partition_leases::status
                    .eq_any(partitions_that_can_become(PartitionStatus::Failed)),
            ),
    )
    .set((
        partition_leases::status.eq(PartitionStatus::Failed.as_str()),
        partition_leases::lease_owner.eq(None::<String>),
        partition_leases::lease_token.eq(None::<i64>),
        partition_leases::lease_expires_at.eq(None::<crate::rows::Ts>),
    ))
    .execute(conn)
    .await?;
    if strategy == LoadStrategy::Replace.as_str() {
        // The shadow name is built from the run id (ULID characters only).
        diesel::sql_query(format!(
            "DROP TABLE IF EXISTS {warehouse}.{}",
            shadow_table(run_id).quoted()
        ))
        .execute(conn)
        .await?;
    }
    insert_log(conn, run_id, std::slice::from_ref(entry)).await?;
    super::webhooks::enqueue_events(conn, run_id, to, at).await?;
    Ok(None)
}
