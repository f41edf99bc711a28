//! After a run reaches its terminal status: delete the touch file that
//! started it, when the pipeline asks for it and the run succeeded.

use sluice_domain::run::{LogEntry, LogStage};
use sluice_domain::status::RunStatus;

use crate::AppError;
use crate::ports::FinalizedRun;
use crate::usecases::App;

impl App {
    /// Finalises every run whose partitions are all done, then cleans up
    /// their touch files. Returns how many runs were finalised.
    pub(crate) async fn finalize_runs(&self) -> Result<usize, AppError> {
        let done = self
            .ports()
            .queue
            .finalize_ready_runs(self.ports().clock.now())
            .await?;
        for run in &done {
            tracing::info!(run = %run.run.id, status = %run.run.status, "run finished");
            if let Err(e) = self.delete_touch_file(run).await {
                tracing::warn!(run = %run.run.id, error = %e, "touch-file clean-up failed");
            }
        }
        Ok(done.len())
    }

    /// Deletes the touch file only if it is still the version that started
    /// the run: a touch file that arrived since (new ETag) is left for the
    /// next poll.
    async fn delete_touch_file(&self, done: &FinalizedRun) -> Result<(), AppError> {
        let run = &done.run;
        let (Some(key), Some(etag)) = (&run.metadata.touch_file, &run.metadata.touch_file_etag)
        else {
            return Ok(());
        };
        if !done.spec.polling.delete_after_process
            || !matches!(
                run.status,
                RunStatus::Completed | RunStatus::CompletedWithErrors
            )
        {
            return Ok(());
        }
        let connector = self
            .ports()
            .connectors
            .get_connector(done.spec.connector_id)
            .await?;
        let credentials = self
            .ports()
            .connectors
            .connector_credentials(done.spec.connector_id)
            .await?;
        let source = self.ports().sources.open(&connector, &credentials)?;
        let message = match source.head(key).await? {
            None => format!("Touch file {key} was already gone"),
            Some(info) if info.etag.as_deref().is_some_and(|e| e != etag) => {
                format!(
                    "Touch file {key} changed since the run started; left in place for the next poll"
                )
            }
            Some(_) => {
                source.delete(key).await?;
                format!("Deleted touch file {key}")
            }
        };
        let entry = LogEntry {
            stage: LogStage::Finalize,
            message,
            timestamp: self.ports().clock.now(),
        };
        self.ports().runs.append_log(run.id, &entry).await?;
        Ok(())
    }
}
