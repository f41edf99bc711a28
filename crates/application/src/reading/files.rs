//! The files a run reads: the listing of a pipeline's prefix and pattern, in
//! the order a run reads them.

use super::ConnectorSource;
use crate::ports::SourceFile;

/// The files a run of `spec` reads, in lexical key order without the touch
/// file, not yet counted. The error is the message a run logs: the listing
/// failed (or took longer than the source's timeout), or nothing matches.
pub(crate) async fn list_source_files(
    source: &ConnectorSource,
    spec: &sluice_domain::pipeline::PipelineSpec,
) -> Result<Vec<SourceFile>, String> {
    let files = listed_files(source, spec).await?;
    if files.is_empty() {
        return Err(format!(
            "No files found: nothing in {} matches",
            describe_source(spec)
        ));
    }
    Ok(files)
}

/// Like [`list_source_files`], but an empty listing is no error.
pub(crate) async fn listed_files(
    source: &ConnectorSource,
    spec: &sluice_domain::pipeline::PipelineSpec,
) -> Result<Vec<SourceFile>, String> {
    let touch = spec.touch_file_key();
    let listing = source.source.list(
        &spec.source.prefix,
        spec.source.pattern.as_deref(),
        std::slice::from_ref(&touch),
    );
    let listed = source
        .answer(listing)
        .await
        .map_err(|e| format!("Cannot list source {}: {e}", describe_source(spec)))?;
    Ok(listed
        .into_iter()
        .enumerate()
        .map(|(i, o)| SourceFile {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            gzip: spec.source.compression.is_gzip(&o.key),
            key: o.key,
            size: o.size,
            etag: o.etag,
            last_modified: o.last_modified,
            header: None,
            first_row: 0,
            row_count: 0,
        })
        .collect())
}

fn describe_source(spec: &sluice_domain::pipeline::PipelineSpec) -> String {
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
