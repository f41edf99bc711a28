//! [`PollingStore`]: the polling state row of a pipeline is the lock that
//! makes "one run per touch file" hold across `sluice serve` replicas.

use std::collections::HashMap;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};
use sluice_application::ports::{NewRun, PollState, PollTarget, PollingStore, StoreError};
use sluice_domain::ids::PipelineId;
use sluice_domain::time::Timestamp;

use super::PgStore;
use super::runs::{insert_run, is_active_run_conflict};
use crate::error::{DbError, IntoStore};
use crate::rows::{ConnectorRow, PipelineRow, RunSummaryRow, Ts, from_ts, ts};
use crate::schema::{connectors, pipelines, poll_state, run_summaries, runs};

fn missing_pipeline(e: DieselError, id: PipelineId, what: &'static str) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            StoreError::not_found("pipeline", id)
        }
        other => DbError::from(other).into_store(what),
    }
}

#[async_trait]
impl PollingStore for PgStore {
    async fn poll_targets(&self) -> Result<Vec<PollTarget>, StoreError> {
        let mut conn = self.conn().await.store("poll targets")?;
        let found: Vec<(PipelineRow, ConnectorRow)> = pipelines::table
            .inner_join(connectors::table)
            .filter(pipelines::active.eq(true))
            .filter(pipelines::polling_enabled.eq(true).or(diesel::dsl::sql::<
                diesel::sql_types::Bool,
            >(
                "sluice.pipelines.spec ? 'schedule'"
            )))
            .select((PipelineRow::as_select(), ConnectorRow::as_select()))
            .order(pipelines::id.asc())
            .load(&mut conn)
            .await
            .store("poll targets")?;
        let ids: Vec<String> = found.iter().map(|(p, _)| p.id.clone()).collect();
        type StateRow = (
            String,
            Option<String>,
            Option<Ts>,
            Option<String>,
            Option<Ts>,
        );
        let states: HashMap<String, PollState> = poll_state::table
            .filter(poll_state::pipeline_id.eq_any(&ids))
            .select((
                poll_state::pipeline_id,
                poll_state::last_etag,
                poll_state::last_checked_at,
                poll_state::last_error,
                poll_state::last_tick,
            ))
            .load::<StateRow>(&mut conn)
            .await
            .store("poll targets")?
            .into_iter()
            .map(|(id, etag, at, err, tick)| {
                let state = PollState {
                    last_etag: etag,
                    last_checked_at: at.map(from_ts),
                    last_error: err,
                    last_tick: tick.map(from_ts),
                };
                (id, state)
            })
            .collect();
        let mut latest: HashMap<String, RunSummaryRow> = run_summaries::table
            .filter(run_summaries::pipeline_id.eq_any(&ids))
            .distinct_on(run_summaries::pipeline_id)
            .order((run_summaries::pipeline_id, run_summaries::id.desc()))
            .select(RunSummaryRow::as_select())
            .load(&mut conn)
            .await
            .store("poll targets")?
            .into_iter()
            .map(|r| (r.pipeline_id.clone(), r))
            .collect();
        found
            .into_iter()
            .map(|(p, c)| {
                let state = states.get(&p.id).cloned().unwrap_or_default();
                let last_run = latest
                    .remove(&p.id)
                    .map(RunSummaryRow::into_run)
                    .transpose()?;
                Ok(PollTarget {
                    pipeline: p.into_pipeline()?,
                    connector: c.into_connector()?,
                    state,
                    last_run,
                })
            })
            .collect()
    }

    async fn claim_poll_check(
        &self,
        pipeline_id: PipelineId,
        not_checked_since: Timestamp,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await.store("claim poll check")?;
        // ON CONFLICT … WHERE re-reads the row under its lock, so of many
        // concurrent callers exactly one sees the old check time.
        let claimed = diesel::sql_query(
            "INSERT INTO sluice.poll_state (pipeline_id, last_checked_at) VALUES ($1, $2) \
             ON CONFLICT (pipeline_id) DO UPDATE SET last_checked_at = EXCLUDED.last_checked_at \
             WHERE poll_state.last_checked_at IS NULL OR poll_state.last_checked_at < $3",
        )
        .bind::<Text, _>(pipeline_id.to_string())
        .bind::<Timestamptz, _>(ts(at))
        .bind::<Timestamptz, _>(ts(not_checked_since))
        .execute(&mut conn)
        .await
        .map_err(|e| missing_pipeline(e, pipeline_id, "claim poll check"))?;
        Ok(claimed == 1)
    }

    async fn record_poll_result(
        &self,
        pipeline_id: PipelineId,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn().await.store("record poll result")?;
        diesel::insert_into(poll_state::table)
            .values((
                poll_state::pipeline_id.eq(pipeline_id.to_string()),
                poll_state::last_error.eq(error),
            ))
            .on_conflict(poll_state::pipeline_id)
            .do_update()
            .set(poll_state::last_error.eq(error))
            .execute(&mut conn)
            .await
            .map_err(|e| missing_pipeline(e, pipeline_id, "record poll result"))?;
        Ok(())
    }

    async fn start_scheduled_run(&self, run: &NewRun, tick: Timestamp) -> Result<bool, StoreError> {
        self.start_claimed_run(run, &PollClaim::Tick(tick)).await
    }

    async fn start_polled_run(&self, run: &NewRun, etag: &str) -> Result<bool, StoreError> {
        self.start_claimed_run(run, &PollClaim::Etag(etag)).await
    }
}

/// What a polled run is started for: a touch-file (or new-files) version,
/// or a cron tick. Each is remembered in its own column of the polling row.
enum PollClaim<'a> {
    Etag(&'a str),
    Tick(Timestamp),
}

impl PgStore {
    /// Starts `run` for `claim` at most once: the pipeline's polling row is
    /// locked, so every caller for this pipeline queues and sees the claims
    /// (and runs) its predecessors committed.
    async fn start_claimed_run(
        &self,
        run: &NewRun,
        claim: &PollClaim<'_>,
    ) -> Result<bool, StoreError> {
        let key = run.pipeline_id.to_string();
        let mut conn = self.conn().await.store("start polled run")?;
        let started = conn
            .transaction::<_, DbError, _>(async |conn| {
                diesel::insert_into(poll_state::table)
                    .values(poll_state::pipeline_id.eq(&key))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                let (last_etag, last_tick): (Option<String>, Option<Ts>) = poll_state::table
                    .find(&key)
                    .select((poll_state::last_etag, poll_state::last_tick))
                    .for_update()
                    .first(conn)
                    .await?;
                let taken = match claim {
                    PollClaim::Etag(etag) => last_etag.as_deref() == Some(*etag),
                    PollClaim::Tick(tick) => last_tick.is_some_and(|t| from_ts(t) >= *tick),
                };
                if taken {
                    return Ok(false);
                }
                let active: i64 = runs::table
                    .filter(runs::pipeline_id.eq(&key))
                    .filter(runs::status.eq_any(["pending", "running"]))
                    .count()
                    .get_result(conn)
                    .await?;
                if active > 0 {
                    return Ok(false);
                }
                insert_run(conn, run, vec![run.id.to_string()]).await?;
                let row = diesel::update(poll_state::table.find(&key));
                match claim {
                    PollClaim::Etag(etag) => {
                        row.set(poll_state::last_etag.eq(Some(*etag)))
                            .execute(conn)
                            .await?
                    }
                    PollClaim::Tick(tick) => {
                        row.set(poll_state::last_tick.eq(Some(ts(*tick))))
                            .execute(conn)
                            .await?
                    }
                };
                Ok(true)
            })
            .await;
        match started {
            // A run started through the API in between: not started.
            Err(e) if is_active_run_conflict(&e) => Ok(false),
            Err(DbError::Diesel(e)) => {
                Err(missing_pipeline(e, run.pipeline_id, "start polled run"))
            }
            other => other.store("start polled run"),
        }
    }
}
