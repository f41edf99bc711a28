//! [`WorkQueue`]: extraction and partition claims with fenced leases, run
//! transitions and finalisation.
//!
//! Leases are computed from the `now` the caller passes (the application's
//! clock), never from the database clock, so tests can use fixed times and
//! all workers agree with the clock that renews the leases.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Jsonb, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sluice_application::ports::{
    CommitError, ExtractionClaim, ExtractionResult, FinalizedRun, LeaseToken, PartitionClaim,
    RejectedRow, SourceFile, StoreError, WorkQueue, WorkerId,
};
use sluice_domain::ids::RunId;
use sluice_domain::pipeline::{LoadStrategy, PipelineSpec};
use sluice_domain::run::{LogEntry, LogStage, finalize_message};
use sluice_domain::status::{PartitionStatus, RunStatus};
use sluice_domain::time::Timestamp;

use crate::error::{DbError, DbResult, IntoCommit, IntoStore};
use crate::failpoint::CommitStage;
use crate::loader::swap_shadow;
use crate::rows::{
    PartitionRow, RunSummaryRow, from_json, int4, int8, partitions_that_can_become, to_json, ts,
    uint4, uint8,
};
use crate::schema::{
    partition_leases, partitions, revisits, run_files, run_leases, run_summaries, runs,
};
use crate::store::runs::insert_log;
use crate::store::{PgStore, stop_run};

/// Files inserted per statement (9 parameters each, far below the limit).
const FILE_CHUNK: usize = 1_000;

#[derive(QueryableByName)]
struct ClaimedRun {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Jsonb)]
    spec: serde_json::Value,
    #[diesel(sql_type = Bool)]
    resume: bool,
    #[diesel(sql_type = BigInt)]
    extraction_token: i64,
}

#[derive(QueryableByName)]
struct ClaimedPartition {
    #[diesel(embed)]
    partition: PartitionRow,
    #[diesel(sql_type = Text)]
    pipeline_id: String,
    #[diesel(sql_type = BigInt)]
    lease_token: i64,
    #[diesel(sql_type = Timestamptz)]
    lease_expires_at: crate::rows::Ts,
    #[diesel(sql_type = BigInt)]
    pending_revisits: i64,
}

#[derive(QueryableByName)]
struct RunKey {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Clears a run's extraction lease.
pub(crate) async fn clear_extraction(conn: &mut AsyncPgConnection, id: &str) -> DbResult<()> {
    diesel::update(run_leases::table.find(id))
        .set((
            run_leases::extraction_owner.eq(None::<String>),
            run_leases::extraction_token.eq(None::<i64>),
            run_leases::extraction_expires_at.eq(None::<crate::rows::Ts>),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

async fn run_view(conn: &mut AsyncPgConnection, id: &str) -> DbResult<sluice_domain::run::Run> {
    let row = run_summaries::table
        .find(id)
        .select(RunSummaryRow::as_select())
        .first(conn)
        .await?;
    Ok(row.into_run()?)
}

async fn insert_files(
    conn: &mut AsyncPgConnection,
    run: &str,
    files: &[SourceFile],
) -> DbResult<()> {
    for chunk in files.chunks(FILE_CHUNK) {
        let rows: Vec<_> = chunk
            .iter()
            .map(|f| {
                (
                    run_files::run_id.eq(run),
                    run_files::idx.eq(int4(f.index)),
                    run_files::key.eq(&f.key),
                    run_files::size.eq(int8(f.size)),
                    run_files::etag.eq(f.etag.as_deref()),
                    run_files::last_modified.eq(f.last_modified.map(ts)),
                    run_files::gzip.eq(f.gzip),
                    run_files::header.eq(f.header.as_ref()),
                    run_files::first_row.eq(int8(f.first_row)),
                    run_files::row_count.eq(int8(f.row_count)),
                )
            })
            .collect();
        diesel::insert_into(run_files::table)
            .values(rows)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Finalises one run if it is still running, unlocked by anyone else, and
/// has every partition completed; `None` otherwise.
async fn finalize_one(
    conn: &mut AsyncPgConnection,
    warehouse: &sluice_domain::identifier::Identifier,
    id: &str,
    now: Timestamp,
) -> DbResult<Option<FinalizedRun>> {
    // SKIP LOCKED: a run another caller is finalising (or stopping) is
    // simply not ours to finalise.
    let locked: Option<(String, serde_json::Value)> = runs::table
        .find(id)
        .filter(runs::status.eq(RunStatus::Running.as_str()))
        .select((runs::load_strategy, runs::spec))
        .for_no_key_update()
        .skip_locked()
        .first(conn)
        .await
        .optional()?;
    let Some((strategy, spec)) = locked else {
        return Ok(None);
    };
    let unfinished: i64 = partitions::table
        .filter(partitions::run_id.eq(id))
        .filter(partitions::status.ne("completed"))
        .count()
        .get_result(conn)
        .await?;
    if unfinished > 0 {
        return Ok(None);
    }
    let spec: PipelineSpec = from_json(spec, "pipeline")?;
    let before = run_view(conn, id).await?;
    let status = RunStatus::Running
        .finish(before.counters.failed)
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    // A run that read no file (nothing new) leaves the table alone.
    let read_files: i64 = run_files::table
        .filter(run_files::run_id.eq(id))
        .count()
        .get_result(conn)
        .await?;
    if strategy == LoadStrategy::Replace.as_str() && read_files > 0 {
        swap_shadow(conn, warehouse, before.id, &spec.destination.table).await?;
    }
    diesel::update(runs::table.find(id))
        .set((
            runs::status.eq(status.as_str()),
            runs::finished_at.eq(Some(ts(now))),
        ))
        .execute(conn)
        .await?;
    let entry = LogEntry {
        stage: LogStage::Finalize,
        message: finalize_message(status, &before.counters, before.total_rows.unwrap_or(0)),
        timestamp: now,
    };
    insert_log(conn, before.id, std::slice::from_ref(&entry)).await?;
    crate::store::ledger::ledger_run(conn, id, now).await?;
    crate::store::webhooks::enqueue_events(conn, before.id, status, now).await?;
    let run = run_view(conn, id).await?;
    Ok(Some(FinalizedRun { run, spec }))
}

/// Fails a run whose `replace` swap was refused, logging why.
async fn fail_refused_swap(
    conn: &mut AsyncPgConnection,
    warehouse: &str,
    id: &str,
    reason: &str,
    now: Timestamp,
) -> DbResult<Option<FinalizedRun>> {
    let run_id: RunId = id
        .parse()
        .map_err(|_| StoreError::Internal(format!("stored run id `{id}` does not parse")))?;
    let entry = LogEntry {
        stage: LogStage::Finalize,
        message: format!("Run failed: {reason}. The table was left as it was."),
        timestamp: now,
    };
    conn.transaction::<_, DbError, _>(async |conn| {
        if stop_run(conn, warehouse, run_id, RunStatus::Failed, now, &entry)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let spec: serde_json::Value = runs::table.find(id).select(runs::spec).first(conn).await?;
        Ok(Some(FinalizedRun {
            run: run_view(conn, id).await?,
            spec: from_json(spec, "pipeline")?,
        }))
    })
    .await
}

#[async_trait]
impl WorkQueue for PgStore {
    async fn claim_extraction(
        &self,
        worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<ExtractionClaim>, StoreError> {
        let mut conn = self.conn().await.store("claim extraction")?;
        let claimed: Option<ClaimedRun> = diesel::sql_query(
            "WITH next AS ( \
                 SELECT id FROM sluice.runs \
                 WHERE status = 'pending' \
                   AND (extraction_expires_at IS NULL OR extraction_expires_at <= $1) \
                 ORDER BY id LIMIT 1 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE sluice.runs r \
             SET extraction_owner = $2, extraction_token = nextval('sluice.lease_tokens'), \
                 extraction_expires_at = $3 \
             FROM next WHERE r.id = next.id \
             RETURNING r.id, r.spec, r.resume, r.extraction_token",
        )
        .bind::<Timestamptz, _>(ts(now))
        .bind::<Text, _>(&worker.0)
        .bind::<Timestamptz, _>(ts(now.plus_millis(lease_ms)))
        .get_result(&mut conn)
        .await
        .optional()
        .store("claim extraction")?;
        let Some(c) = claimed else {
            return Ok(None);
        };
        let run = run_view(&mut conn, &c.id).await.store("claim extraction")?;
        Ok(Some(ExtractionClaim {
            run,
            spec: from_json(c.spec, "pipeline")?,
            token: LeaseToken(c.extraction_token),
            resume: c.resume,
        }))
    }

    async fn complete_extraction(
        &self,
        claim: &ExtractionClaim,
        result: Option<&ExtractionResult>,
        now: Timestamp,
    ) -> Result<(), CommitError> {
        let id = claim.run.id.to_string();
        let mut conn = self.conn().await.fenced("complete extraction")?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let found: Option<(String, Option<i64>)> = run_leases::table
                .find(&id)
                .select((run_leases::status, run_leases::extraction_token))
                .for_no_key_update()
                .first(conn)
                .await
                .optional()?;
            let Some((status, token)) = found else {
                return Err(StoreError::not_found("run", claim.run.id).into());
            };
            if status != RunStatus::Pending.as_str() || token != Some(claim.token.0) {
                return Err(DbError::Fenced("extraction lease lost"));
            }
            diesel::update(runs::table.find(&id))
                .set((
                    runs::status.eq(RunStatus::Running.as_str()),
                    runs::started_at.eq(Some(ts(now))),
                ))
                .execute(conn)
                .await?;
            clear_extraction(conn, &id).await?;
            crate::store::webhooks::enqueue_events(conn, claim.run.id, RunStatus::Running, now)
                .await?;
            let Some(result) = result else {
                return Ok(());
            };
            diesel::update(runs::table.find(&id))
                .set((
                    runs::total_rows.eq(Some(int8(result.total_rows))),
                    runs::partition_count
                        .eq(i32::try_from(result.partitions.len()).unwrap_or(i32::MAX)),
                ))
                .execute(conn)
                .await?;
            if let Some(spec) = &result.spec {
                diesel::update(runs::table.find(&id))
                    .set(runs::spec.eq(to_json(spec, "pipeline")?))
                    .execute(conn)
                    .await?;
            }
            insert_files(conn, &id, &result.files).await?;
            let parts: Vec<PartitionRow> = result
                .partitions
                .iter()
                .map(|range| PartitionRow::fresh(claim.run.id, range))
                .collect();
            for p in &parts {
                diesel::insert_into(partitions::table)
                    .values((
                        partitions::run_id.eq(&p.run_id),
                        partitions::idx.eq(p.idx),
                        partitions::first_row.eq(p.first_row),
                        partitions::row_count.eq(p.row_count),
                        partitions::start_file.eq(p.start_file),
                        partitions::start_offset.eq(p.start_offset),
                        partitions::status.eq(&p.status),
                        partitions::checkpoint_row.eq(p.checkpoint_row),
                        partitions::next_file.eq(p.next_file),
                        partitions::next_offset.eq(p.next_offset),
                    ))
                    .execute(conn)
                    .await?;
            }
            insert_log(conn, claim.run.id, &result.log).await
        })
        .await
        .fenced("complete extraction")
    }

    async fn run_files(&self, run_id: RunId) -> Result<Vec<SourceFile>, StoreError> {
        let mut conn = self.conn().await.store("run files")?;
        type FileRow = (
            i32,
            String,
            i64,
            Option<String>,
            Option<crate::rows::Ts>,
            bool,
            Option<Vec<String>>,
            i64,
            i64,
        );
        let rows: Vec<FileRow> = run_files::table
            .filter(run_files::run_id.eq(run_id.to_string()))
            .select((
                run_files::idx,
                run_files::key,
                run_files::size,
                run_files::etag,
                run_files::last_modified,
                run_files::gzip,
                run_files::header,
                run_files::first_row,
                run_files::row_count,
            ))
            .order(run_files::idx.asc())
            .load(&mut conn)
            .await
            .store("run files")?;
        Ok(rows
            .into_iter()
            .map(
                |(idx, key, size, etag, modified, gzip, header, first_row, row_count)| SourceFile {
                    index: uint4(idx),
                    key,
                    size: uint8(size),
                    etag,
                    last_modified: modified.map(crate::rows::from_ts),
                    gzip,
                    header,
                    first_row: uint8(first_row),
                    row_count: uint8(row_count),
                },
            )
            .collect())
    }

    async fn claim_partition(
        &self,
        worker: &WorkerId,
        now: Timestamp,
        lease_ms: i64,
    ) -> Result<Option<PartitionClaim>, StoreError> {
        let mut conn = self.conn().await.store("claim partition")?;
        // SKIP LOCKED: concurrent claimants each lock a different candidate,
        // so no partition is handed out twice and nobody waits.
        let claimed: Option<ClaimedPartition> = diesel::sql_query(
            "WITH next AS ( \
                 SELECT p.run_id, p.idx, r.pipeline_id FROM sluice.partitions p \
                 JOIN sluice.runs r ON r.id = p.run_id \
                 WHERE r.status = 'running' \
                   AND (p.status = ANY($4) \
                        OR (p.status = 'running' \
                            AND (p.lease_expires_at IS NULL OR p.lease_expires_at <= $1))) \
                 ORDER BY p.run_id, p.idx LIMIT 1 \
                 FOR UPDATE OF p SKIP LOCKED) \
             UPDATE sluice.partitions p \
             SET status = 'running', lease_owner = $2, \
                 lease_token = nextval('sluice.lease_tokens'), lease_expires_at = $3 \
             FROM next WHERE p.run_id = next.run_id AND p.idx = next.idx \
             RETURNING p.*, next.pipeline_id, \
                 (SELECT count(*) FROM sluice.revisits v \
                  WHERE v.run_id = p.run_id AND v.partition_idx = p.idx \
                    AND v.row_num > p.revisit_cursor) AS pending_revisits",
        )
        .bind::<Timestamptz, _>(ts(now))
        .bind::<Text, _>(&worker.0)
        .bind::<Timestamptz, _>(ts(now.plus_millis(lease_ms)))
        // A pending partition becomes running; a running one whose lease
        // expired is taken over as it is, which is not a transition.
        .bind::<diesel::sql_types::Array<Text>, _>(partitions_that_can_become(
            PartitionStatus::Running,
        ))
        .get_result(&mut conn)
        .await
        .optional()
        .store("claim partition")?;
        claimed
            .map(|c| {
                c.partition.into_claim(
                    &c.pipeline_id,
                    c.lease_token,
                    c.lease_expires_at,
                    uint8(c.pending_revisits),
                )
            })
            .transpose()
    }

    async fn renew_partition(
        &self,
        claim: &PartitionClaim,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await.store("renew partition")?;
        let run = claim.run_id.to_string();
        let running = runs::table
            .filter(runs::id.eq(&run))
            .filter(runs::status.eq(RunStatus::Running.as_str()))
            .select(runs::id);
        let renewed = diesel::update(
            partition_leases::table
                .filter(partition_leases::run_id.eq(&run))
                .filter(partition_leases::idx.eq(int4(claim.range.index)))
                .filter(partition_leases::lease_token.eq(claim.token.0))
                .filter(partition_leases::status.eq("running"))
                .filter(diesel::dsl::exists(running)),
        )
        .set(partition_leases::lease_expires_at.eq(Some(ts(until))))
        .execute(&mut conn)
        .await
        .store("renew partition")?;
        Ok(renewed == 1)
    }

    async fn renew_extraction(
        &self,
        claim: &ExtractionClaim,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await.store("renew extraction")?;
        let renewed = diesel::update(
            run_leases::table
                .find(claim.run.id.to_string())
                .filter(run_leases::extraction_token.eq(claim.token.0))
                .filter(run_leases::status.eq(RunStatus::Pending.as_str())),
        )
        .set(run_leases::extraction_expires_at.eq(Some(ts(until))))
        .execute(&mut conn)
        .await
        .store("renew extraction")?;
        Ok(renewed == 1)
    }

    async fn release_partition(&self, claim: &PartitionClaim) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("release partition")?;
        diesel::update(
            partition_leases::table
                .filter(partition_leases::run_id.eq(claim.run_id.to_string()))
                .filter(partition_leases::idx.eq(int4(claim.range.index)))
                .filter(partition_leases::lease_token.eq(claim.token.0))
                .filter(
                    partition_leases::status
                        .eq_any(partitions_that_can_become(PartitionStatus::Pending)),
                ),
        )
        .set((
            partition_leases::status.eq(PartitionStatus::Pending.as_str()),
            partition_leases::lease_owner.eq(None::<String>),
            partition_leases::lease_token.eq(None::<i64>),
            partition_leases::lease_expires_at.eq(None::<crate::rows::Ts>),
        ))
        .execute(&mut conn)
        .await
        .store("release partition")?;
        Ok(())
    }

    async fn revisit_rows(
        &self,
        run_id: RunId,
        partition: u32,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RejectedRow>, StoreError> {
        let mut conn = self.conn().await.store("revisit rows")?;
        let rows: Vec<(i64, i32, Vec<u8>)> = revisits::table
            .filter(revisits::run_id.eq(run_id.to_string()))
            .filter(revisits::partition_idx.eq(int4(partition)))
            .filter(revisits::row_num.gt(int8(after)))
            .select((revisits::row_num, revisits::file_index, revisits::raw))
            .order(revisits::row_num.asc())
            .limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .load(&mut conn)
            .await
            .store("revisit rows")?;
        Ok(rows
            .into_iter()
            .map(|(row, file_index, raw)| RejectedRow {
                row: uint8(row),
                file_index: uint4(file_index),
                raw,
            })
            .collect())
    }

    async fn fail_run(
        &self,
        run_id: RunId,
        entry: &LogEntry,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await.store("fail run")?;
        let warehouse = self.warehouse();
        let stopped = conn
            .transaction::<_, DbError, _>(async |conn| {
                stop_run(conn, &warehouse, run_id, RunStatus::Failed, at, entry).await
            })
            .await
            .store("fail run")?;
        Ok(stopped.is_none())
    }

    async fn finalize_ready_runs(&self, now: Timestamp) -> Result<Vec<FinalizedRun>, StoreError> {
        let mut conn = self.conn().await.store("finalize runs")?;
        let ready: Vec<RunKey> = diesel::sql_query(
            "SELECT r.id FROM sluice.runs r \
             WHERE r.status = 'running' \
               AND NOT EXISTS (SELECT 1 FROM sluice.partitions p \
                               WHERE p.run_id = r.id AND p.status <> 'completed') \
             ORDER BY r.id",
        )
        .load(&mut conn)
        .await
        .store("finalize runs")?;
        let mut out = Vec::new();
        for RunKey { id } in ready {
            let warehouse = self.warehouse.clone();
            let armed = self.failpoint.arm_finalize();
            self.failpoint.hit(armed, CommitStage::BeforeFinalize).await;
            let failpoint = self.failpoint.clone();
            let done = conn
                .transaction::<_, DbError, _>(async |conn| {
                    let done = finalize_one(conn, &warehouse, &id, now).await?;
                    if done.is_some() {
                        failpoint
                            .hit(armed, CommitStage::FinalizeBeforeCommit)
                            .await;
                    }
                    Ok(done)
                })
                .await;
            let done = match done {
                // The swap's transaction rolled back, so the destination is
                // as it was; the run fails with the reason instead of being
                // finalised again and again.
                Err(DbError::SwapRefused(reason)) => {
                    fail_refused_swap(&mut conn, &self.warehouse(), &id, &reason, now)
                        .await
                        .store("fail run")?
                }
                other => other.store("finalize run")?,
            };
            out.extend(done);
        }
        Ok(out)
    }
}
