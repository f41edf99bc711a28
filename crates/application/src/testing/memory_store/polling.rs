//! [`PollingStore`] in memory.

use async_trait::async_trait;
use sluice_domain::ids::PipelineId;
use sluice_domain::pipeline::PipelineStatus;
use sluice_domain::time::Timestamp;

use super::InMemoryStore;
use crate::ports::{NewRun, PollTarget, PollingStore, StoreError};

#[async_trait]
impl PollingStore for InMemoryStore {
    async fn poll_targets(&self) -> Result<Vec<PollTarget>, StoreError> {
        let s = self.lock()?;
        let mut out = Vec::new();
        for p in s.pipelines.values() {
            if p.spec.status != PipelineStatus::Active || !p.spec.is_watched() {
                continue;
            }
            let Some((connector, _)) = s.connectors.get(&p.spec.connector_id) else {
                continue;
            };
            out.push(PollTarget {
                pipeline: p.clone(),
                connector: connector.clone(),
                state: s.poll.get(&p.id).cloned().unwrap_or_default(),
                last_run: s
                    .runs
                    .values()
                    .rev()
                    .find(|r| r.run.pipeline_id == p.id)
                    .map(|r| s.run_view(r)),
            });
        }
        Ok(out)
    }

    async fn claim_poll_check(
        &self,
        pipeline_id: PipelineId,
        not_checked_since: Timestamp,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        let state = s.poll.entry(pipeline_id).or_default();
        if state
            .last_checked_at
            .is_some_and(|t| t >= not_checked_since)
        {
            return Ok(false);
        }
        state.last_checked_at = Some(at);
        Ok(true)
    }

    async fn record_poll_result(
        &self,
        pipeline_id: PipelineId,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut s = self.lock()?;
        s.poll.entry(pipeline_id).or_default().last_error = error.map(str::to_owned);
        Ok(())
    }

    async fn start_polled_run(&self, run: &NewRun, etag: &str) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        if s.poll
            .get(&run.pipeline_id)
            .and_then(|p| p.last_etag.as_deref())
            == Some(etag)
        {
            return Ok(false);
        }
        if s.has_active_run(run.pipeline_id) {
            return Ok(false);
        }
        s.insert_run(run, vec![run.id])?;
        s.poll.entry(run.pipeline_id).or_default().last_etag = Some(etag.to_owned());
        Ok(true)
    }

    async fn start_scheduled_run(&self, run: &NewRun, tick: Timestamp) -> Result<bool, StoreError> {
        let mut s = self.lock()?;
        if s.poll
            .get(&run.pipeline_id)
            .and_then(|p| p.last_tick)
            .is_some_and(|t| t >= tick)
            || s.has_active_run(run.pipeline_id)
        {
            return Ok(false);
        }
        s.insert_run(run, vec![run.id])?;
        s.poll.entry(run.pipeline_id).or_default().last_tick = Some(tick);
        Ok(true)
    }
}
