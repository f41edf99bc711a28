//! The file ledger as users see it: the files a pipeline has loaded, the
//! files a run read, and forgetting files so the next run reads them again.

use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::ledger::{LedgerEntry, RunFile};
use sluice_domain::role::Action;

use super::{Principal, UseCases};
use crate::AppError;
use crate::ports::{ForgetFiles, Page, PageRequest};

fn check_key(field: &str, key: &str) -> Result<(), AppError> {
    if key.len() > 1024 || key.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            "must be at most 1024 characters without control characters",
        ));
    }
    Ok(())
}

impl UseCases {
    /// A pipeline's ledger, newest first, optionally only keys under
    /// `prefix` (any role).
    pub async fn list_ledger(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<LedgerEntry>, AppError> {
        who.require(Action::ReadRuns)?;
        if let Some(p) = prefix {
            check_key("prefix", p)?;
        }
        Ok(self
            .ports()
            .ledger
            .list_ledger(pipeline_id, prefix, page)
            .await?)
    }

    /// The files a run read, with their rows' outcomes (any role).
    pub async fn list_run_files(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        run_id: RunId,
        page: &PageRequest,
    ) -> Result<Page<RunFile>, AppError> {
        who.require(Action::ReadRuns)?;
        Ok(self
            .ports()
            .ledger
            .list_run_files(pipeline_id, run_id, page)
            .await?)
    }

    /// Makes the ledger forget a key or every key under a prefix (admin,
    /// editor), so the next run reads those files again and says why in its
    /// log. Returns how many entries were forgotten. An empty prefix forgets
    /// the whole ledger of the pipeline.
    pub async fn forget_files(
        &self,
        who: &Principal,
        pipeline_id: PipelineId,
        which: ForgetFiles,
    ) -> Result<u64, AppError> {
        who.require(Action::StartRun)?;
        match &which {
            ForgetFiles::Key(k) if k.is_empty() => {
                return Err(AppError::invalid("key", "must not be empty"));
            }
            ForgetFiles::Key(k) => check_key("key", k)?,
            ForgetFiles::Prefix(p) => check_key("prefix", p)?,
        }
        let now = self.ports().clock.now();
        let forgotten = self
            .ports()
            .ledger
            .forget_files(pipeline_id, &which, &who.key_id.to_string(), now)
            .await?;
        tracing::info!(pipeline = %pipeline_id, forgotten, by = %who.key_id, "ledger entries forgotten");
        Ok(forgotten)
    }
}
