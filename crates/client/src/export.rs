//! A run's rejected rows: the export as the API streams it (JSON or CSV,
//! byte for byte), and the rows themselves, page by page. Memory stays
//! bounded by one chunk or one page, however many rows a run rejected.

use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use sluice_domain::ids::{PipelineId, RunId};
use sluice_domain::validation::RowError;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::{Client, Error, PageParams};

const TEMPLATE: &str = "/api/v1/pipelines/{id}/runs/{runId}/errors";

/// The format of an errors export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `{"runId", "total", "errors": [...]}`.
    Json,
    /// `Row,Column,Value,Error` lines, formulas neutralised.
    Csv,
}

impl ExportFormat {
    fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv",
        }
    }
}

impl Client {
    /// `GET …/errors` as the API streams it: every rejected row of the run,
    /// chunk by chunk, exactly the bytes the endpoint sends.
    pub async fn export_errors(
        &self,
        pipeline: PipelineId,
        run: RunId,
        format: ExportFormat,
    ) -> Result<impl Stream<Item = Result<Bytes, Error>> + Send + use<>, Error> {
        let path = format!("/api/v1/pipelines/{pipeline}/runs/{run}/errors");
        self.stream(TEMPLATE, &path, format.media_type()).await
    }

    /// Writes the export to `out` as it arrives and returns the bytes written.
    pub async fn write_errors<W: AsyncWrite + Unpin>(
        &self,
        pipeline: PipelineId,
        run: RunId,
        format: ExportFormat,
        out: &mut W,
    ) -> Result<u64, Error> {
        let chunks = self.export_errors(pipeline, run, format).await?;
        let mut chunks = std::pin::pin!(chunks);
        let mut written = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            out.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        out.flush().await?;
        Ok(written)
    }

    /// Every rejected row of the run in row order, read a page of
    /// `page_size` (1–200) at a time.
    pub fn run_errors(
        &self,
        pipeline: PipelineId,
        run: RunId,
        page_size: u32,
    ) -> impl Stream<Item = Result<RowError, Error>> + '_ {
        struct Cursor {
            next: Option<Option<String>>,
        }
        let pages = stream::unfold(Cursor { next: Some(None) }, move |state| async move {
            let cursor = state.next?;
            let page = PageParams {
                limit: Some(page_size),
                cursor,
            };
            match self.run_errors_page(pipeline, run, &page).await {
                Ok(answer) => {
                    let next = answer.next_cursor.flatten().map(Some);
                    let rows: Vec<Result<RowError, Error>> =
                        answer.errors.into_iter().map(Ok).collect();
                    Some((stream::iter(rows), Cursor { next }))
                }
                Err(e) => Some((stream::iter(vec![Err(e)]), Cursor { next: None })),
            }
        });
        pages.flatten()
    }
}
