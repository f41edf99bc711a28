//! [`RunStore`]: runs, their log, partitions and validation errors.

use async_trait::async_trait;
use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use sluice_application::ports::{NewRun, Page, PageRequest, RunSnapshot, RunStore, StoreError};
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::pipeline::PipelineSpec;
use sluice_domain::run::{LogEntry, Partition, Run, storable_text};
use sluice_domain::status::RunStatus;
use sluice_domain::time::Timestamp;
use sluice_domain::validation::RowError;

use super::{PgStore, page, stop_run};
use crate::error::{DbError, DbResult, IntoStore};
use crate::rows::{
    PartitionRow, RunSummaryRow, from_json, from_ts, run_status, to_json, ts, uint8,
};
use crate::schema::{partitions, pipelines, run_log, run_summaries, runs, validation_errors};

/// Errors fetched per round trip by [`RunStore::stream_errors`].
const ERROR_CHUNK: i64 = 1_000;

/// The name a serde enum is stored under (`snake_case` wire name).
pub(crate) fn wire_name<T: serde::Serialize>(v: &T, what: &str) -> Result<String, StoreError> {
    match to_json(v, what)? {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(crate::rows::corrupt(what)),
    }
}

/// Appends log entries to a run, in order.
pub(crate) async fn insert_log(
    conn: &mut AsyncPgConnection,
    run_id: RunId,
    entries: &[LogEntry],
) -> DbResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let rows = entries
        .iter()
        .map(|e| {
            Ok((
                run_log::run_id.eq(run_id.to_string()),
                run_log::stage.eq(wire_name(&e.stage, "log stage")?),
                run_log::message.eq(storable_text(&e.message)),
                run_log::logged_at.eq(ts(e.timestamp)),
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    diesel::insert_into(run_log::table)
        .values(rows)
        .execute(conn)
        .await?;
    Ok(())
}

/// Inserts a `pending` run with its first log entries. The partial unique
/// index `runs_one_active_per_pipeline` makes "one active run per pipeline"
/// atomic: a second insert fails with a unique violation, reported as
/// `Conflict`.
pub(crate) async fn insert_run(
    conn: &mut AsyncPgConnection,
    new: &NewRun,
    lineage: Vec<String>,
) -> DbResult<()> {
    let values = (
        runs::id.eq(new.id.to_string()),
        runs::pipeline_id.eq(new.pipeline_id.to_string()),
        runs::status.eq(RunStatus::Pending.as_str()),
        runs::load_strategy.eq(new.spec.load_strategy.as_str()),
        runs::run_trigger.eq(wire_name(&new.trigger, "run trigger")?),
        runs::spec.eq(to_json(&new.spec, "pipeline")?),
        runs::metadata.eq(to_json(&new.metadata, "run metadata")?),
        runs::lineage.eq(lineage),
        runs::created_at.eq(ts(new.created_at)),
    );
    match diesel::insert_into(runs::table)
        .values(values)
        .execute(conn)
        .await
    {
        Ok(_) => {}
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
            if info.constraint_name() == Some("runs_one_active_per_pipeline") =>
        {
            return Err(StoreError::Conflict(format!(
                "pipeline {} already has a pending or running run",
                new.pipeline_id
            ))
            .into());
        }
        Err(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
            return Err(StoreError::not_found("pipeline", new.pipeline_id).into());
        }
        Err(e) => return Err(e.into()),
    }
    insert_log(conn, new.id, &new.log).await
}

/// True when `e` is the "pipeline already has an active run" conflict.
pub(crate) fn is_active_run_conflict(e: &DbError) -> bool {
    matches!(e, DbError::Store(StoreError::Conflict(m)) if m.ends_with("pending or running run"))
}

/// Copies what a resumable retry takes over from `original`: files, rows to
/// revisit (the original's rejected rows and the revisits it had not
/// reached), partitions with their checkpoints and loaded/skipped counters
/// (per partition and per file; failed rows are revisited, so they restart at 0).
async fn copy_for_resume(
    conn: &mut AsyncPgConnection,
    retry: &str,
    original: &str,
) -> DbResult<()> {
    diesel::sql_query(
        "INSERT INTO sluice.run_files \
             (run_id, idx, key, size, etag, gzip, header, first_row, row_count, \
              last_modified, loaded, skipped, failed) \
         SELECT $1, idx, key, size, etag, gzip, header, first_row, row_count, \
                last_modified, loaded, skipped, 0 \
         FROM sluice.run_files WHERE run_id = $2",
    )
    .bind::<Text, _>(retry)
    .bind::<Text, _>(original)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO sluice.revisits (run_id, row_num, partition_idx, file_index, raw) \
         SELECT $1, j.row_num, j.partition_idx, j.file_index, j.raw \
         FROM sluice.rejected_rows j WHERE j.run_id = $2 \
         UNION ALL \
         SELECT $1, v.row_num, v.partition_idx, v.file_index, v.raw \
         FROM sluice.revisits v \
         JOIN sluice.partitions p ON p.run_id = v.run_id AND p.idx = v.partition_idx \
         WHERE v.run_id = $2 AND v.row_num > p.revisit_cursor \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Text, _>(retry)
    .bind::<Text, _>(original)
    .execute(conn)
    .await?;
    // A partition is done when its checkpoint reached the end of its range
    // and it has nothing to revisit; its failed rows are revisited, so the
    // retry starts with failed = 0.
    diesel::sql_query(
        "INSERT INTO sluice.partitions \
             (run_id, idx, first_row, row_count, start_file, start_offset, status, \
              checkpoint_row, next_file, next_offset, loaded, skipped, failed) \
         SELECT $1, p.idx, p.first_row, p.row_count, p.start_file, p.start_offset, \
                CASE WHEN p.checkpoint_row >= p.first_row + p.row_count - 1 \
                      AND NOT EXISTS (SELECT 1 FROM sluice.revisits v \
                                      WHERE v.run_id = $1 AND v.partition_idx = p.idx) \
                     THEN 'completed' ELSE 'pending' END, \
                p.checkpoint_row, p.next_file, p.next_offset, p.loaded, p.skipped, 0 \
         FROM sluice.partitions p WHERE p.run_id = $2",
    )
    .bind::<Text, _>(retry)
    .bind::<Text, _>(original)
    .execute(conn)
    .await?;
    Ok(())
}

/// One stored validation error with its position.
#[derive(QueryableByName, Queryable)]
struct ErrorRow {
    #[diesel(sql_type = BigInt)]
    row_num: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = Text)]
    error: String,
}

impl ErrorRow {
    fn into_error(self) -> RowError {
        RowError {
            row: uint8(self.row_num),
            column: self.column_name,
            value: self.value,
            error: self.error,
        }
    }
}

/// Fetches one chunk of a run's errors strictly after `(row, seq)`. The
/// row-value comparison is an index condition on the primary key, so every
/// chunk costs the same however deep into the list it starts.
async fn error_chunk(
    store: &PgStore,
    run_id: &str,
    after: (i64, i64),
    limit: i64,
) -> DbResult<Vec<ErrorRow>> {
    let mut conn = store.conn().await?;
    Ok(diesel::sql_query(
        // The order follows the primary key (run_id, row_num, seq) exactly,
        // and both conditions are its index conditions: the scan starts at
        // (run_id, row_num, seq) and ends with the run, a bounded range
        // whatever the table's statistics say. The row comparison must not
        // repeat `run_id`: `(run_id, row_num, seq) > ($1, …)` beside
        // `run_id = $1` made PostgreSQL start every chunk at the run's first
        // error and filter up to the cursor, so reading a run's errors was
        // quadratic (a chunk at the millionth error read 4,000 pages).
        "SELECT row_num, seq, column_name, value, error FROM sluice.validation_errors \
         WHERE run_id = $1 AND (row_num, seq) > ($2, $3) \
         ORDER BY run_id, row_num, seq LIMIT $4",
    )
    .bind::<Text, _>(run_id)
    .bind::<BigInt, _>(after.0)
    .bind::<BigInt, _>(after.1)
    .bind::<BigInt, _>(limit)
    .load(&mut conn)
    .await?)
}

/// Before the first error (rows start at 1, sequence numbers at 1).
const START: (i64, i64) = (i64::MIN, i64::MIN);

/// The `(row, seq)` of an errors cursor (`row-seq`); `None` for anything else.
fn parse_error_cursor(cursor: &str) -> Option<(i64, i64)> {
    let (row, seq) = cursor.split_once('-')?;
    Some((row.parse().ok()?, seq.parse().ok()?))
}

/// A run's first errors in row order: the same index range as
/// [`error_chunk`] from the start, as a statement the connection keeps prepared.
async fn first_error_rows(
    mut conn: &AsyncPgConnection,
    run_id: &str,
    limit: i64,
) -> DbResult<Vec<ErrorRow>> {
    use validation_errors as e;
    Ok(e::table
        .filter(e::run_id.eq(run_id))
        .order((e::run_id.asc(), e::row_num.asc(), e::seq.asc()))
        .select((e::row_num, e::seq, e::column_name, e::value, e::error))
        .limit(limit)
        .load(&mut conn)
        .await?)
}

/// One run of a pipeline, if it exists.
async fn run_row(
    mut conn: &AsyncPgConnection,
    pipeline_id: &str,
    run_id: &str,
) -> DbResult<Option<RunSummaryRow>> {
    Ok(run_summaries::table
        .find(run_id)
        .filter(run_summaries::pipeline_id.eq(pipeline_id))
        .select(RunSummaryRow::as_select())
        .first(&mut conn)
        .await
        .optional()?)
}

/// A run's partitions in index order.
async fn partition_rows(mut conn: &AsyncPgConnection, run_id: &str) -> DbResult<Vec<PartitionRow>> {
    Ok(partitions::table
        .filter(partitions::run_id.eq(run_id))
        .select(PartitionRow::as_select())
        .order(partitions::idx.asc())
        .load(&mut conn)
        .await?)
}

/// A run's log rows, oldest first.
async fn log_rows(
    mut conn: &AsyncPgConnection,
    run_id: &str,
) -> DbResult<Vec<(String, String, crate::rows::Ts)>> {
    Ok(run_log::table
        .filter(run_log::run_id.eq(run_id))
        .select((run_log::stage, run_log::message, run_log::logged_at))
        .order(run_log::seq.asc())
        .load(&mut conn)
        .await?)
}

fn into_run(row: Option<RunSummaryRow>, run_id: RunId) -> Result<Run, StoreError> {
    row.ok_or_else(|| StoreError::not_found("run", run_id))?
        .into_run()
}

fn into_partitions(rows: Vec<PartitionRow>) -> Result<Vec<Partition>, StoreError> {
    rows.into_iter().map(PartitionRow::into_partition).collect()
}

fn into_log(rows: Vec<(String, String, crate::rows::Ts)>) -> Result<Vec<LogEntry>, StoreError> {
    rows.into_iter()
        .map(|(stage, message, at)| {
            Ok(LogEntry {
                stage: from_json(serde_json::Value::String(stage), "log stage")?,
                message,
                timestamp: from_ts(at),
            })
        })
        .collect()
}

#[async_trait]
impl RunStore for PgStore {
    async fn create_run(&self, run: &NewRun) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("create run")?;
        conn.transaction::<_, DbError, _>(async |conn| {
            insert_run(conn, run, vec![run.id.to_string()]).await
        })
        .await
        .store("create run")
    }

    async fn create_retry_run(
        &self,
        run: &NewRun,
        original: RunId,
        resumable: bool,
    ) -> Result<(), StoreError> {
        let orig = original.to_string();
        let retry = run.id.to_string();
        let mut conn = self.conn().await.store("create retry run")?;
        conn.transaction::<_, DbError, _>(async |conn| {
            let found: Option<(Vec<String>, Option<i64>, i32)> = runs::table
                .find(&orig)
                .select((runs::lineage, runs::total_rows, runs::partition_count))
                .for_share()
                .first(conn)
                .await
                .optional()?;
            let Some((orig_lineage, total_rows, partition_count)) = found else {
                return Err(StoreError::not_found("run", original).into());
            };
            let mut lineage = vec![retry.clone()];
            if resumable {
                lineage.extend(orig_lineage);
            }
            insert_run(conn, run, lineage).await?;
            if !resumable {
                return Ok(());
            }
            diesel::update(runs::table.find(&retry))
                .set((
                    runs::resume.eq(true),
                    runs::total_rows.eq(total_rows),
                    runs::partition_count.eq(partition_count),
                ))
                .execute(conn)
                .await?;
            copy_for_resume(conn, &retry, &orig).await
        })
        .await
        .store("create retry run")
    }

    async fn get_run(&self, pipeline_id: PipelineId, run_id: RunId) -> Result<Run, StoreError> {
        let conn = self.conn().await.store("get run")?;
        let row = run_row(&conn, &pipeline_id.to_string(), &run_id.to_string())
            .await
            .store("get run")?;
        into_run(row, run_id)
    }

    async fn run_pipeline(&self, run_id: RunId) -> Result<PipelineId, StoreError> {
        let mut conn = self.conn().await.store("run pipeline")?;
        let pipeline: String = runs::table
            .find(run_id.to_string())
            .select(runs::pipeline_id)
            .first(&mut conn)
            .await
            .optional()
            .store("run pipeline")?
            .ok_or_else(|| StoreError::not_found("run", run_id))?;
        PipelineId::parse(&pipeline)
            .map_err(|e| StoreError::Internal(format!("stored pipeline id: {e}")))
    }

    async fn run_spec(&self, run_id: RunId) -> Result<PipelineSpec, StoreError> {
        let mut conn = self.conn().await.store("run spec")?;
        let spec: serde_json::Value = runs::table
            .find(run_id.to_string())
            .select(runs::spec)
            .first(&mut conn)
            .await
            .optional()
            .store("run spec")?
            .ok_or_else(|| StoreError::not_found("run", run_id))?;
        from_json(spec, "pipeline")
    }

    async fn list_runs(
        &self,
        pipeline_id: PipelineId,
        req: &PageRequest,
    ) -> Result<Page<Run>, StoreError> {
        let key = pipeline_id.to_string();
        let mut conn = self.conn().await.store("list runs")?;
        let exists: i64 = pipelines::table
            .find(&key)
            .count()
            .get_result(&mut conn)
            .await
            .store("list runs")?;
        if exists == 0 {
            return Err(StoreError::not_found("pipeline", pipeline_id));
        }
        let mut q = run_summaries::table
            .filter(run_summaries::pipeline_id.eq(&key))
            .select(RunSummaryRow::as_select())
            .order(run_summaries::id.desc())
            .limit(page::fetch(req))
            .into_boxed();
        if let Some(after) = page::after::<RunId>(req) {
            q = q.filter(run_summaries::id.lt(after));
        }
        let rows = q.load(&mut conn).await.store("list runs")?;
        let items = rows
            .into_iter()
            .map(RunSummaryRow::into_run)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page::cut(items, req, |x| x.id.to_string()))
    }

    async fn list_partitions(&self, run_id: RunId) -> Result<Vec<Partition>, StoreError> {
        let conn = self.conn().await.store("list partitions")?;
        into_partitions(
            partition_rows(&conn, &run_id.to_string())
                .await
                .store("list partitions")?,
        )
    }

    /// The four reads pipelined on one connection: the client sends them
    /// together and the server answers them in a row, so a busy server is
    /// woken once per progress request instead of four times.
    async fn run_snapshot(
        &self,
        pipeline_id: PipelineId,
        run_id: RunId,
        error_limit: usize,
    ) -> Result<RunSnapshot, StoreError> {
        let limit = i64::try_from(error_limit).unwrap_or(i64::MAX);
        let (pipeline, run) = (pipeline_id.to_string(), run_id.to_string());
        let conn = self.conn().await.store("run snapshot")?;
        let (row, parts, errors, log) = futures::try_join!(
            run_row(&conn, &pipeline, &run),
            partition_rows(&conn, &run),
            first_error_rows(&conn, &run, limit),
            log_rows(&conn, &run),
        )
        .store("run snapshot")?;
        Ok(RunSnapshot {
            run: into_run(row, run_id)?,
            partitions: into_partitions(parts)?,
            first_errors: errors.into_iter().map(ErrorRow::into_error).collect(),
            log: into_log(log)?,
        })
    }

    async fn first_errors(&self, run_id: RunId, limit: usize) -> Result<Vec<RowError>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let conn = self.conn().await.store("first errors")?;
        let rows = first_error_rows(&conn, &run_id.to_string(), limit)
            .await
            .store("first errors")?;
        Ok(rows.into_iter().map(ErrorRow::into_error).collect())
    }

    async fn count_errors(&self, run_id: RunId) -> Result<u64, StoreError> {
        let mut conn = self.conn().await.store("count errors")?;
        let n: i64 = validation_errors::table
            .filter(validation_errors::run_id.eq(run_id.to_string()))
            .count()
            .get_result(&mut conn)
            .await
            .store("count errors")?;
        Ok(uint8(n))
    }

    /// Keyset pagination over the primary key `(run_id, row_num, seq)`: each
    /// chunk is one short query on a pooled connection, so neither memory nor
    /// a connection is held for the whole (possibly slow) download.
    fn stream_errors(&self, run_id: RunId) -> BoxStream<'static, Result<RowError, StoreError>> {
        let store = self.clone();
        let run = run_id.to_string();
        stream::try_unfold(Some(START), move |state: Option<(i64, i64)>| {
            let store = store.clone();
            let run = run.clone();
            async move {
                let Some(after) = state else {
                    return Ok(None);
                };
                let rows = error_chunk(&store, &run, after, ERROR_CHUNK)
                    .await
                    .store("stream errors")?;
                let next = if i64::try_from(rows.len()).unwrap_or(0) < ERROR_CHUNK {
                    None
                } else {
                    rows.last().map(|r| (r.row_num, r.seq))
                };
                let chunk = stream::iter(rows.into_iter().map(|r| Ok(r.into_error())));
                Ok(Some((chunk, next)))
            }
        })
        .try_flatten()
        .boxed()
    }

    /// The same keyset as [`RunStore::stream_errors`]; the cursor is the
    /// `row-seq` of the page's last error.
    async fn list_errors(
        &self,
        run_id: RunId,
        req: &PageRequest,
    ) -> Result<Page<RowError>, StoreError> {
        let after = req
            .cursor
            .as_deref()
            .and_then(parse_error_cursor)
            .unwrap_or(START);
        let mut rows = error_chunk(self, &run_id.to_string(), after, page::fetch(req))
            .await
            .store("list errors")?;
        let more = rows.len() > page::size(req);
        rows.truncate(page::size(req));
        let next_cursor = more
            .then(|| rows.last().map(|r| format!("{}-{}", r.row_num, r.seq)))
            .flatten();
        Ok(Page {
            items: rows.into_iter().map(ErrorRow::into_error).collect(),
            next_cursor,
        })
    }

    async fn run_log(&self, run_id: RunId) -> Result<Vec<LogEntry>, StoreError> {
        let conn = self.conn().await.store("run log")?;
        into_log(
            log_rows(&conn, &run_id.to_string())
                .await
                .store("run log")?,
        )
    }

    async fn append_log(&self, run_id: RunId, entry: &LogEntry) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("append log")?;
        match insert_log(&mut conn, run_id, std::slice::from_ref(entry)).await {
            Err(DbError::Diesel(DieselError::DatabaseError(
                DatabaseErrorKind::ForeignKeyViolation,
                _,
            ))) => Err(StoreError::not_found("run", run_id)),
            other => other.store("append log"),
        }
    }

    async fn cancel_run(
        &self,
        run_id: RunId,
        at: Timestamp,
        entry: &LogEntry,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("cancel run")?;
        let warehouse = self.warehouse();
        conn.transaction::<_, DbError, _>(async |conn| {
            match stop_run(conn, &warehouse, run_id, RunStatus::Cancelled, at, entry).await? {
                None => Ok(()),
                Some(current) => Err(StoreError::Unprocessable(
                    current
                        .transition(RunStatus::Cancelled)
                        .err()
                        .map_or_else(|| "run cannot be cancelled".into(), |e| e.to_string()),
                )
                .into()),
            }
        })
        .await
        .store("cancel run")
    }

    async fn count_runs_by_status(&self) -> Result<Vec<(RunStatus, u64)>, StoreError> {
        let mut conn = self.conn().await.store("count runs")?;
        let counts: Vec<(String, i64)> = runs::table
            .group_by(runs::status)
            .select((runs::status, count_star()))
            .load(&mut conn)
            .await
            .store("count runs")?;
        let mut out: Vec<(RunStatus, u64)> = RunStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for (status, n) in counts {
            let status = run_status(&status)?;
            if let Some(slot) = out.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = uint8(n);
            }
        }
        Ok(out)
    }

    async fn count_drift_events(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn().await.store("count drift events")?;
        let n: i64 = run_log::table
            .filter(run_log::stage.eq("drift"))
            .select(count_star())
            .first(&mut conn)
            .await
            .store("count drift events")?;
        Ok(uint8(n))
    }

    async fn count_rows_by_outcome(&self) -> Result<sluice_domain::run::Counters, StoreError> {
        #[derive(QueryableByName)]
        struct Totals {
            #[diesel(sql_type = BigInt)]
            loaded: i64,
            #[diesel(sql_type = BigInt)]
            skipped: i64,
            #[diesel(sql_type = BigInt)]
            failed: i64,
        }
        let mut conn = self.conn().await.store("count rows")?;
        // A resumable retry continues the runs of its lineage and carries
        // their counters: count those once.
        let t: Totals = diesel::sql_query(
            "SELECT coalesce(sum(p.loaded), 0)::bigint AS loaded, \
                    coalesce(sum(p.skipped), 0)::bigint AS skipped, \
                    coalesce(sum(p.failed), 0)::bigint AS failed \
             FROM sluice.partitions p \
             WHERE NOT EXISTS (SELECT 1 FROM sluice.runs r \
                               WHERE r.id <> p.run_id AND p.run_id = ANY (r.lineage))",
        )
        .get_result(&mut conn)
        .await
        .store("count rows")?;
        Ok(sluice_domain::run::Counters {
            loaded: uint8(t.loaded),
            skipped: uint8(t.skipped),
            failed: uint8(t.failed),
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("ping")?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .store("ping")?;
        Ok(())
    }
}
