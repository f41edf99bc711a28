//! The batch commit: fence, rows, errors, rejected records, counters and
//! checkpoint in ONE transaction on a tokio-postgres connection.

use std::time::Duration;

use sluice_application::ports::{BatchCommit, CommitError, CommitOutcome, LoadTarget, StoreError};
use sluice_domain::identifier::Identifier;
use sluice_domain::pipeline::LoadStrategy;
use sluice_domain::schema::ColumnType;
use sluice_domain::status::PartitionStatus;
use tokio_postgres::Transaction;

use super::binary;
use super::copy::{CopyIn, needs_escaping};
use super::ddl::qualified;
use super::files::BatchFiles;
use super::{LOADED_AT_COLUMN, ROW_COLUMN, RUN_COLUMN, pg_type, shadow_table};
use crate::error::{DbError, DbResult, IntoCommit};
use crate::failpoint::CommitStage;
use crate::rows::{int4, int8, partitions_that_can_become, uint8};
use crate::store::PgStore;

/// Attempts of one commit when PostgreSQL reports a deadlock or a
/// serialization failure (the transaction did nothing and can run again).
const ATTEMPTS: u32 = 4;

/// Commits `c`, retrying the whole transaction on deadlock or serialization failure.
pub(crate) async fn commit(
    store: &PgStore,
    c: &BatchCommit<'_>,
) -> Result<CommitOutcome, CommitError> {
    let mut attempt = 1;
    let armed = store.failpoint.arm();
    loop {
        let result = async {
            let mut client = store.loader.get().await?;
            let tx = client.transaction().await?;
            let outcome = commit_in(&tx, &store.warehouse, c).await?;
            store.failpoint.hit(armed, CommitStage::BeforeCommit).await;
            tx.commit().await?;
            store.failpoint.hit(armed, CommitStage::AfterCommit).await;
            Ok::<_, DbError>(outcome)
        }
        .await;
        match result {
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                tracing::debug!(
                    attempt,
                    "batch commit hit a deadlock or serialization failure; retrying"
                );
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => return other.fenced("commit batch"),
        }
    }
}

/// Everything but COMMIT; any error rolls the transaction back (on drop).
async fn commit_in(
    tx: &Transaction<'_>,
    warehouse: &Identifier,
    c: &BatchCommit<'_>,
) -> DbResult<CommitOutcome> {
    let run = c.claim.run_id.to_string();
    let index = int4(c.claim.range.index);
    // The fence: the row lock taken here also serialises this commit with
    // `fail_run` / `cancel_run`, which update the same partition row.
    let fenced = tx
        .query_opt(
            "SELECT 1 FROM sluice.partitions p \
             WHERE p.run_id = $1 AND p.idx = $2 AND p.lease_token = $3 AND p.status = 'running' \
               AND EXISTS (SELECT 1 FROM sluice.runs r WHERE r.id = $1 AND r.status = 'running') \
             FOR UPDATE OF p",
            &[&run, &index, &c.claim.token.0],
        )
        .await?;
    if fenced.is_none() {
        return Err(DbError::Fenced(
            "partition lease lost or run no longer running",
        ));
    }

    let valid = c.rows.len() as u64;
    let files = BatchFiles::load(tx, &run, c).await?;
    let (loaded, per_file) = if valid == 0 {
        (0, None)
    } else if c.target.key_columns.is_empty() {
        (
            copy_rows(tx, &destination(warehouse, c.target), c, &run).await?,
            None,
        )
    } else {
        let (total, per_file) =
            merge_rows(tx, &destination(warehouse, c.target), c, &run, &files).await?;
        (total, Some(per_file))
    };

    let mut failed_rows: Vec<u64> = c.errors.iter().map(|e| e.row).collect();
    failed_rows.dedup();
    let failed = failed_rows.len() as u64;
    files
        .record(tx, &run, c, per_file.as_ref(), &failed_rows)
        .await?;
    if !c.errors.is_empty() {
        let mut copy = CopyIn::start(
            tx,
            "COPY sluice.validation_errors (run_id, row_num, column_name, value, error) FROM STDIN",
        )
        .await?;
        for e in c.errors {
            copy.text(Some(&run));
            copy.int(int8(e.row));
            copy.text(Some(&e.column));
            copy.text(Some(&e.value));
            copy.text(Some(&e.error));
            copy.end_row().await?;
        }
        copy.finish().await?;
    }
    if !c.rejected.is_empty() {
        let mut copy = CopyIn::start(
            tx,
            "COPY sluice.rejected_rows (run_id, row_num, partition_idx, file_index, raw) FROM STDIN",
        )
        .await?;
        for r in c.rejected {
            copy.text(Some(&run));
            copy.int(int8(r.row));
            copy.int(i64::from(index));
            copy.int(i64::from(r.file_index));
            copy.bytea(&r.raw);
            copy.end_row().await?;
        }
        copy.finish().await?;
    }

    let skipped = valid.saturating_sub(loaded);
    let cursor: i64 = tx
        .query_one(
            "UPDATE sluice.partitions SET \
                 loaded = loaded + $3, skipped = skipped + $4, failed = failed + $5, \
                 checkpoint_row = $6, next_file = $7, next_offset = $8, rate = $9, \
                 revisit_cursor = COALESCE($10, revisit_cursor) \
             WHERE run_id = $1 AND idx = $2 \
             RETURNING revisit_cursor",
            &[
                &run,
                &index,
                &int8(loaded),
                &int8(skipped),
                &int8(failed),
                &int8(c.checkpoint.row),
                &int4(c.checkpoint.next.file_index),
                &int8(c.checkpoint.next.byte_offset),
                &c.rate,
                &c.revisit_cursor.map(int8),
            ],
        )
        .await?
        .try_get(0)?;
    let mut done = c.checkpoint.is_complete(&c.claim.range);
    if done {
        let pending: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM sluice.revisits \
                 WHERE run_id = $1 AND partition_idx = $2 AND row_num > $3)",
                &[&run, &index, &cursor],
            )
            .await?
            .try_get(0)?;
        done = !pending;
    }
    if done {
        let to = PartitionStatus::Completed;
        tx.execute(
            "UPDATE sluice.partitions SET status = $3, \
                 lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL \
             WHERE run_id = $1 AND idx = $2 AND status = ANY($4)",
            &[&run, &index, &to.as_str(), &partitions_that_can_become(to)],
        )
        .await?;
    }
    let run_failed: i64 = tx
        .query_one(
            "SELECT COALESCE(sum(failed), 0)::bigint FROM sluice.partitions WHERE run_id = $1",
            &[&run],
        )
        .await?
        .try_get(0)?;
    Ok(CommitOutcome {
        loaded,
        skipped,
        failed,
        run_failed_rows: uint8(run_failed),
        partition_completed: done,
    })
}

/// The table a target's rows go to: the destination, or for `replace` the
/// run's shadow table.
fn destination(warehouse: &Identifier, target: &LoadTarget) -> String {
    if target.strategy == LoadStrategy::Replace {
        qualified(warehouse, &shadow_table(target.run_id))
    } else {
        qualified(warehouse, &target.table)
    }
}

fn column_list(target: &LoadTarget) -> String {
    target
        .schema
        .columns
        .iter()
        .map(|c| c.name.quoted())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Streams the batch's rows with `sql` (a COPY): the schema columns, the run
/// id when `run` is given, then the row number; in the binary format when
/// `binary` (every target column has the type Sluice creates it with).
async fn copy_batch(
    tx: &Transaction<'_>,
    sql: &str,
    c: &BatchCommit<'_>,
    run: Option<&str>,
    binary: bool,
) -> DbResult<u64> {
    if binary && !text_input_refuses_any(c) {
        return copy_batch_binary(tx, sql, c, run).await;
    }
    let mut copy = CopyIn::start(tx, sql).await?;
    // Most batches hold no byte to escape: then values are copied as they are.
    let plain = !needs_escaping(c.rows.all_text());
    for (row, values) in c.rows.rows() {
        for v in values.iter() {
            if plain {
                copy.plain(v);
            } else {
                copy.text(v);
            }
        }
        if let Some(run) = run {
            copy.text(Some(run));
        }
        copy.int(int8(row));
        copy.end_row().await?;
    }
    Ok(copy.finish().await?)
}

/// [`copy_batch`] in PostgreSQL's binary format: the server stores the
/// values as they come instead of parsing their text.
async fn copy_batch_binary(
    tx: &Transaction<'_>,
    sql: &str,
    c: &BatchCommit<'_>,
    run: Option<&str>,
) -> DbResult<u64> {
    let mut copy = CopyIn::start_binary(tx, &format!("{sql} WITH (FORMAT binary)")).await?;
    // One pass over the batch: without a NUL byte anywhere, text values are
    // copied as they are.
    let plain = memchr::memchr(0, c.rows.all_text().as_bytes()).is_none();
    let types: Vec<_> = c
        .target
        .schema
        .columns
        .iter()
        .map(|col| col.column_type)
        .collect();
    let fields = i16::try_from(types.len() + 1 + usize::from(run.is_some())).unwrap_or(i16::MAX);
    let mut scratch = Vec::new();
    for (row, values) in c.rows.rows() {
        let buf = copy.buffer();
        binary::begin_row(buf, fields);
        for (v, t) in values.iter().zip(&types) {
            match v {
                None => binary::null(buf),
                Some(v) => binary::put_value(buf, *t, v, plain, &mut scratch).map_err(
                    |binary::Unencodable(t)| {
                        tracing::error!(column_type = ?t, "a validated value has no binary form");
                        DbError::Store(StoreError::Internal("database error".into()))
                    },
                )?,
            }
        }
        if let Some(run) = run {
            binary::text(buf, run, true);
        }
        binary::int8(buf, int8(row));
        copy.row_done().await?;
    }
    Ok(copy.finish().await?)
}

/// Whether a value of the batch is one PostgreSQL's text input refuses
/// ([`binary::text_input_refuses`]); only timestamp columns are looked at.
fn text_input_refuses_any(c: &BatchCommit<'_>) -> bool {
    let columns = &c.target.schema.columns;
    if !columns
        .iter()
        .any(|col| col.column_type == ColumnType::Timestamp)
    {
        return false;
    }
    c.rows.rows().any(|(_, values)| {
        values
            .iter()
            .zip(columns)
            .any(|(v, col)| v.is_some_and(|v| binary::text_input_refuses(col.column_type, v)))
    })
}

/// Whether every column a COPY into `table` writes has the type (without
/// modifier) whose binary form [`binary::put_value`] writes. A table made
/// by Sluice always has; an existing one may hold a value in a wider type
/// (an `integer` in `numeric`, a `uuid` in `text`): then the text format,
/// which PostgreSQL converts on input.
async fn binary_fits(tx: &Transaction<'_>, table: &str, target: &LoadTarget) -> DbResult<bool> {
    let rows = tx
        .query(
            "SELECT a.attname::text, a.atttypid::oid, a.atttypmod FROM pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
            &[&table],
        )
        .await?;
    let mut found = std::collections::HashMap::new();
    for r in rows {
        let name: String = r.try_get(0)?;
        let oid: u32 = r.try_get(1)?;
        let typmod: i32 = r.try_get(2)?;
        found.insert(name, (oid, typmod));
    }
    let fits = |name: &str, oid: u32| found.get(name) == Some(&(oid, -1));
    Ok(target
        .schema
        .columns
        .iter()
        .all(|col| fits(col.name.as_str(), binary::type_oid(col.column_type)))
        && fits(RUN_COLUMN.trim_matches('"'), binary::TEXT_OID)
        && fits(ROW_COLUMN.trim_matches('"'), binary::INT8_OID))
}

/// Without key columns every row is inserted: COPY straight into the table.
async fn copy_rows(
    tx: &Transaction<'_>,
    table: &str,
    c: &BatchCommit<'_>,
    run: &str,
) -> DbResult<u64> {
    let sql = format!(
        "COPY {table} ({}, {RUN_COLUMN}, {ROW_COLUMN}) FROM STDIN",
        column_list(c.target)
    );
    let binary = binary_fits(tx, table, c.target).await?;
    copy_batch(tx, &sql, c, Some(run), binary).await
}

/// With key columns: COPY into a temporary staging table, then one
/// set-based `INSERT … SELECT DISTINCT ON (keys) … ON CONFLICT (keys) DO
/// UPDATE … WHERE <incoming wins>`. Returns the rows that count as loaded,
/// in all and per position in `files`.
async fn merge_rows(
    tx: &Transaction<'_>,
    table: &str,
    c: &BatchCommit<'_>,
    run: &str,
    files: &BatchFiles,
) -> DbResult<(u64, std::collections::BTreeMap<usize, u64>)> {
    let t = c.target;
    let stage_columns: Vec<String> = t
        .schema
        .columns
        .iter()
        .map(|col| format!("{} {}", col.name.quoted(), pg_type(col.column_type)))
        .collect();
    tx.batch_execute(&format!(
        "CREATE TEMPORARY TABLE _sluice_stage ({}, {ROW_COLUMN} bigint NOT NULL) ON COMMIT DROP",
        stage_columns.join(", ")
    ))
    .await?;
    let columns = column_list(t);
    copy_batch(
        tx,
        &format!("COPY pg_temp._sluice_stage ({columns}, {ROW_COLUMN}) FROM STDIN"),
        c,
        None,
        // The staging table has exactly the types Sluice creates.
        true,
    )
    .await?;

    let keys: Vec<String> = t.key_columns.iter().map(Identifier::quoted).collect();
    let keys = keys.join(", ");
    let updates: Vec<String> = t
        .schema
        .columns
        .iter()
        .filter(|col| !t.key_columns.contains(&col.name))
        .map(|col| format!("{0} = EXCLUDED.{0}", col.name.quoted()))
        .chain([
            format!("{RUN_COLUMN} = EXCLUDED.{RUN_COLUMN}"),
            format!("{ROW_COLUMN} = EXCLUDED.{ROW_COLUMN}"),
            format!("{LOADED_AT_COLUMN} = now()"),
        ])
        .collect();
    // Within the batch the first occurrence of a key wins for append, the
    // last for upsert and replace; against a stored row, the rules of
    // `BulkLoader::commit_batch` (lineage = this run and the runs it resumes).
    let (order, wins) = match t.strategy {
        LoadStrategy::Append => (
            "ASC",
            format!("d.{RUN_COLUMN} = ANY($2::text[]) AND EXCLUDED.{ROW_COLUMN} < d.{ROW_COLUMN}"),
        ),
        LoadStrategy::Replace => ("DESC", format!("EXCLUDED.{ROW_COLUMN} > d.{ROW_COLUMN}")),
        LoadStrategy::Upsert => (
            "DESC",
            format!(
                "d.{RUN_COLUMN} IS NULL OR NOT (d.{RUN_COLUMN} = ANY($2::text[])) \
                 OR d.{ROW_COLUMN} IS NULL OR EXCLUDED.{ROW_COLUMN} > d.{ROW_COLUMN}"
            ),
        ),
    };
    // Written rows are counted per file: `width_bucket` over the files'
    // first rows gives the file of each written row number.
    let bounds_param = if t.strategy == LoadStrategy::Replace {
        "$2"
    } else {
        "$3"
    };
    let sql = format!(
        "WITH written AS ( \
             INSERT INTO {table} AS d ({columns}, {RUN_COLUMN}, {ROW_COLUMN}) \
             SELECT DISTINCT ON ({keys}) {columns}, $1::text, {ROW_COLUMN} \
             FROM pg_temp._sluice_stage ORDER BY {keys}, {ROW_COLUMN} {order} \
             ON CONFLICT ({keys}) DO UPDATE SET {} WHERE {wins} \
             RETURNING (d.xmax = 0) AS inserted, d.{ROW_COLUMN} AS row_num) \
         SELECT width_bucket(row_num, {bounds_param}::bigint[]), \
                count(*) FILTER (WHERE inserted), count(*) \
         FROM written GROUP BY 1",
        updates.join(", ")
    );
    let lineage: Vec<String> = t.lineage.iter().map(ToString::to_string).collect();
    let bounds = files.bounds();
    let rows = if t.strategy == LoadStrategy::Replace {
        tx.query(&sql, &[&run, &bounds]).await?
    } else {
        tx.query(&sql, &[&run, &lineage, &bounds]).await?
    };
    let mut total = 0;
    let mut per_file = std::collections::BTreeMap::new();
    for row in rows {
        let bucket: i32 = row.try_get(0)?;
        let inserted: i64 = row.try_get(1)?;
        let written: i64 = row.try_get(2)?;
        // append and replace count rows that inserted a new key; upsert every row written.
        let loaded = uint8(if t.strategy == LoadStrategy::Upsert {
            written
        } else {
            inserted
        });
        total += loaded;
        if let Some(position) = usize::try_from(bucket).ok().and_then(|b| b.checked_sub(1)) {
            *per_file.entry(position).or_insert(0) += loaded;
        }
    }
    Ok((total, per_file))
}
