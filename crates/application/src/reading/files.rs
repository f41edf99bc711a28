//! The files a run reads: the listing of a pipeline's prefix and pattern, in
//! the order a run reads them.

use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use sluice_domain::pipeline::PipelineSpec;

use super::ConnectorSource;
use crate::ports::SourceFile;

/// A pipeline's listing as the store's pages arrive: its files, not yet
/// counted, or the message a run logs when a page cannot be had.
pub type FileListing = BoxStream<'static, Result<SourceFile, String>>;

/// The files a run of `spec` reads, in lexical key order without the touch
/// file, not yet counted. The error is the message a run logs: the listing
/// failed (or took longer than the source's timeout), or nothing matches.
pub(crate) async fn list_source_files(
    source: &ConnectorSource,
    spec: &PipelineSpec,
) -> Result<Vec<SourceFile>, String> {
    let files: Vec<SourceFile> = listed_files(source, spec).await?.try_collect().await?;
    if files.is_empty() {
        return Err(no_files_message(spec));
    }
    Ok(files)
}

/// The message of a run whose listing is empty.
pub(crate) fn no_files_message(spec: &PipelineSpec) -> String {
    format!(
        "No files found: nothing in {} matches",
        describe_source(spec)
    )
}

/// The listing of [`list_source_files`] as it arrives (an empty one is no
/// error), page by page, each page within the source's timeout.
pub(crate) async fn listed_files(
    source: &ConnectorSource,
    spec: &PipelineSpec,
) -> Result<FileListing, String> {
    let touch = spec.touch_file_key();
    let described = describe_source(spec);
    let failed = move |e| format!("Cannot list source {described}: {e}");
    let listing = source.source.list_stream(
        &spec.source.prefix,
        spec.source.pattern.as_deref(),
        std::slice::from_ref(&touch),
    );
    let listed = match source.answer(listing).await {
        Ok(listed) => source.each_within_timeout(listed),
        Err(e) => return Err(failed(e)),
    };
    let compression = spec.source.compression;
    Ok(listed
        .enumerate()
        .map(move |(i, o)| {
            let o = o.map_err(&failed)?;
            Ok(SourceFile {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                gzip: compression.is_gzip(&o.key),
                key: o.key,
                size: o.size,
                etag: o.etag,
                last_modified: o.last_modified,
                header: None,
                first_row: 0,
                row_count: 0,
            })
        })
        .boxed())
}

fn describe_source(spec: &PipelineSpec) -> String {
    let prefix = if spec.source.prefix.is_empty() {
        "the connector root"
    } else {
        spec.source.prefix.as_str()
    };
    match &spec.source.pattern {
        Some(p) => format!("{prefix} (pattern {p})"),
        None => prefix.to_owned(),
    }
}
