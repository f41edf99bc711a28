//! [`LedgerStore`]: the file ledger and the per-run file lists.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sluice_application::ports::{ForgetFiles, LedgerStore, Page, PageRequest, StoreError};
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::ledger::{
    FileVersion, Forgotten, KnownFile, LedgerEntry, RunFile, RunFileStatus,
};
use sluice_domain::run::Counters;
use sluice_domain::time::Timestamp;

use super::PgStore;
use super::page::{cut, fetch};
use crate::error::{DbResult, IntoStore};
use crate::rows::{Ts, from_ts, parse, run_status, ts, uint4, uint8};
use crate::schema::{file_ledger, pipelines, run_files, runs};

/// The `LIKE` pattern of keys starting with `prefix` (`%`, `_` and `\` escaped).
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 1);
    for ch in prefix.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

async fn require_pipeline(conn: &mut AsyncPgConnection, id: PipelineId) -> DbResult<()> {
    let found: i64 = pipelines::table
        .find(id.to_string())
        .count()
        .get_result(conn)
        .await?;
    if found == 0 {
        return Err(StoreError::not_found("pipeline", id).into());
    }
    Ok(())
}

/// A ledger row as read for the list.
#[derive(Queryable, Selectable)]
#[diesel(table_name = file_ledger)]
struct LedgerRow {
    key: String,
    etag: Option<String>,
    size: i64,
    last_modified: Option<Ts>,
    total_rows: i64,
    loaded: Option<i64>,
    skipped: Option<i64>,
    failed: i64,
    run_id: String,
    loaded_at: Ts,
    seq: i64,
}

impl LedgerRow {
    fn into_entry(self) -> Result<LedgerEntry, StoreError> {
        Ok(LedgerEntry {
            key: self.key,
            etag: self.etag,
            size: uint8(self.size),
            last_modified: self.last_modified.map(from_ts),
            total_rows: uint8(self.total_rows),
            loaded_rows: self.loaded.map(uint8),
            skipped_rows: self.skipped.map(uint8),
            failed_rows: uint8(self.failed),
            run_id: parse(&self.run_id, "ledger run id")?,
            loaded_at: from_ts(self.loaded_at),
        })
    }
}

type KnownRow = (
    String,
    Option<String>,
    i64,
    Option<Ts>,
    String,
    Option<Ts>,
    Option<String>,
);

type RunFileRow = (
    i32,
    String,
    Option<String>,
    i64,
    Option<Ts>,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
);

#[async_trait]
impl LedgerStore for PgStore {
    async fn known_files(
        &self,
        pipeline_id: PipelineId,
        keys: &[String],
    ) -> Result<Vec<KnownFile>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn().await.store("known files")?;
        let rows: Vec<KnownRow> = file_ledger::table
            .filter(file_ledger::pipeline_id.eq(pipeline_id.to_string()))
            .filter(file_ledger::key.eq_any(keys))
            .select((
                file_ledger::key,
                file_ledger::etag,
                file_ledger::size,
                file_ledger::last_modified,
                file_ledger::run_id,
                file_ledger::forgotten_at,
                file_ledger::forgotten_by,
            ))
            .load(&mut conn)
            .await
            .store("known files")?;
        rows.into_iter()
            .map(|(key, etag, size, modified, run, forgotten_at, by)| {
                Ok(KnownFile {
                    key,
                    version: FileVersion {
                        etag,
                        size: uint8(size),
                        last_modified: modified.map(from_ts),
                    },
                    run_id: parse::<RunId>(&run, "ledger run id")?,
                    forgotten: forgotten_at.map(|at| Forgotten {
                        by: by.unwrap_or_default(),
                        at: from_ts(at),
                    }),
                })
            })
            .collect()
    }

    async fn list_ledger(
        &self,
        pipeline_id: PipelineId,
        prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        let mut conn = self.conn().await.store("list ledger")?;
        require_pipeline(&mut conn, pipeline_id)
            .await
            .store("list ledger")?;
        let mut q = file_ledger::table
            .filter(file_ledger::pipeline_id.eq(pipeline_id.to_string()))
            .filter(file_ledger::forgotten_at.is_null())
            .into_boxed();
        if let Some(p) = prefix.filter(|p| !p.is_empty()) {
            q = q.filter(file_ledger::key.like(like_prefix(p)).escape('\\'));
        }
        if let Some(c) = page.cursor.as_deref().and_then(|c| c.parse::<i64>().ok()) {
            q = q.filter(file_ledger::seq.lt(c));
        }
        let rows: Vec<LedgerRow> = q
            .order(file_ledger::seq.desc())
            .limit(fetch(page))
            .select(LedgerRow::as_select())
            .load(&mut conn)
            .await
            .store("list ledger")?;
        let page = cut(rows, page, |r| r.seq.to_string());
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(LedgerRow::into_entry)
                .collect::<Result<_, _>>()?,
            next_cursor: page.next_cursor,
        })
    }

    async fn forget_files(
        &self,
        pipeline_id: PipelineId,
        which: &ForgetFiles,
        by: &str,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut conn = self.conn().await.store("forget files")?;
        require_pipeline(&mut conn, pipeline_id)
            .await
            .store("forget files")?;
        let (test, arg) = match which {
            ForgetFiles::Key(k) => ("key = $2", k.clone()),
            ForgetFiles::Prefix(p) => ("key LIKE $2 ESCAPE '\\'", like_prefix(p)),
        };
        let n = diesel::sql_query(format!(
            "UPDATE sluice.file_ledger SET forgotten_at = $3, forgotten_by = $4 \
             WHERE pipeline_id = $1 AND forgotten_at IS NULL AND {test}"
        ))
        .bind::<diesel::sql_types::Text, _>(pipeline_id.to_string())
        .bind::<diesel::sql_types::Text, _>(arg)
        .bind::<diesel::sql_types::Timestamptz, _>(ts(at))
        .bind::<diesel::sql_types::Text, _>(by)
        .execute(&mut conn)
        .await
        .store("forget files")?;
        Ok(n as u64)
    }

    async fn list_run_files(
        &self,
        pipeline_id: PipelineId,
        run_id: RunId,
        page: &PageRequest,
    ) -> Result<Page<RunFile>, StoreError> {
        let mut conn = self.conn().await.store("list run files")?;
        let key = run_id.to_string();
        let status: Option<String> = runs::table
            .find(&key)
            .filter(runs::pipeline_id.eq(pipeline_id.to_string()))
            .select(runs::status)
            .first(&mut conn)
            .await
            .optional()
            .store("list run files")?;
        let status = run_status(&status.ok_or_else(|| StoreError::not_found("run", run_id))?)?;
        let mut q = run_files::table
            .filter(run_files::run_id.eq(&key))
            .into_boxed();
        if let Some(c) = page.cursor.as_deref().and_then(|c| c.parse::<i32>().ok()) {
            q = q.filter(run_files::idx.gt(c));
        }
        let rows: Vec<RunFileRow> = q
            .order(run_files::idx.asc())
            .limit(fetch(page))
            .select((
                run_files::idx,
                run_files::key,
                run_files::etag,
                run_files::size,
                run_files::last_modified,
                run_files::first_row,
                run_files::row_count,
                run_files::loaded,
                run_files::skipped,
                run_files::failed,
            ))
            .load(&mut conn)
            .await
            .store("list run files")?;
        let page = cut(rows, page, |r| r.0.to_string());
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(
                    |(idx, key, etag, size, modified, first, rows, loaded, skipped, failed)| {
                        let total = uint8(rows);
                        // Files of runs older than the ledger may not know their split.
                        let counters = match (loaded, skipped) {
                            (Some(l), Some(s)) => Counters {
                                loaded: uint8(l),
                                skipped: uint8(s),
                                failed: uint8(failed),
                            },
                            _ if status.is_terminal()
                                && status != sluice_domain::status::RunStatus::Failed =>
                            {
                                Counters {
                                    loaded: total,
                                    ..Counters::default()
                                }
                            }
                            _ => Counters::default(),
                        };
                        RunFile {
                            index: uint4(idx),
                            key,
                            etag,
                            size: uint8(size),
                            last_modified: modified.map(from_ts),
                            first_row: uint8(first),
                            total_rows: total,
                            loaded_rows: loaded.map(uint8),
                            skipped_rows: skipped.map(uint8),
                            failed_rows: uint8(failed),
                            status: RunFileStatus::of(total, &counters, status),
                        }
                    },
                )
                .collect(),
            next_cursor: page.next_cursor,
        })
    }
}

/// Writes every file of a finalised run into its pipeline's ledger, inside
/// the finalising transaction: a file is in the ledger exactly when its rows
/// are committed. An older entry of the key (forgotten or not) is replaced.
pub(crate) async fn ledger_run(
    conn: &mut AsyncPgConnection,
    run_id: &str,
    at: Timestamp,
) -> DbResult<()> {
    diesel::sql_query(
        "INSERT INTO sluice.file_ledger AS l \
             (pipeline_id, key, etag, size, last_modified, total_rows, loaded, skipped, failed, \
              run_id, loaded_at) \
         SELECT r.pipeline_id, f.key, f.etag, f.size, f.last_modified, f.row_count, \
                f.loaded, f.skipped, f.failed, r.id, $2 \
         FROM sluice.run_files f JOIN sluice.runs r ON r.id = f.run_id \
         WHERE f.run_id = $1 \
         ON CONFLICT (pipeline_id, key) DO UPDATE SET \
             etag = EXCLUDED.etag, size = EXCLUDED.size, last_modified = EXCLUDED.last_modified, \
             total_rows = EXCLUDED.total_rows, loaded = EXCLUDED.loaded, \
             skipped = EXCLUDED.skipped, failed = EXCLUDED.failed, run_id = EXCLUDED.run_id, \
             loaded_at = EXCLUDED.loaded_at, seq = nextval('sluice.file_ledger_seq'), \
             forgotten_at = NULL, forgotten_by = NULL",
    )
    .bind::<diesel::sql_types::Text, _>(run_id)
    .bind::<diesel::sql_types::Timestamptz, _>(ts(at))
    .execute(conn)
    .await?;
    Ok(())
}
