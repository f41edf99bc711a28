//! A remote store's listing, handed on file by file as its pages arrive, so
//! that a run going through a million keys holds a page, not the listing.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore};
use sluice_application::ports::{
    FileFilter, ObjectInfo, ObjectListing, SortedSelection, SourceError,
};
use tracing::debug;

use crate::error::{ErrorContext, Target, map_error};
use crate::secret::Redactor;
use crate::source::{info, is_empty_folder_marker};

/// [`ErrorContext`], owned by a listing that outlives the call.
pub(crate) struct OwnedContext {
    pub location: String,
    pub endpoint: String,
    pub redactor: Redactor,
}

impl OwnedContext {
    fn borrowed(&self) -> ErrorContext<'_> {
        ErrorContext {
            location: &self.location,
            endpoint: &self.endpoint,
            redactor: &self.redactor,
        }
    }
}

/// The state of one paged listing.
pub(crate) struct PagedListing {
    store: Arc<dyn ObjectStore>,
    pages: BoxStream<'static, object_store::Result<ObjectMeta>>,
    /// `None` once the store's listing has ended.
    selection: Option<SortedSelection>,
    /// Files decided but not yet handed on.
    ready: VecDeque<ObjectInfo>,
    errors: OwnedContext,
    handed_on: u64,
}

impl PagedListing {
    /// Lists `prefix` (the whole store when empty) through `filter`.
    pub(crate) fn start(
        store: Arc<dyn ObjectStore>,
        prefix: &ObjectPath,
        filter: FileFilter,
        errors: OwnedContext,
    ) -> Self {
        let pages = if prefix.as_ref().is_empty() {
            store.list(None)
        } else {
            store.list(Some(prefix))
        };
        Self {
            store,
            pages,
            selection: Some(filter.select_sorted()),
            ready: VecDeque::new(),
            errors,
            handed_on: 0,
        }
    }

    /// The listing as a stream of files.
    pub(crate) fn into_stream(self) -> ObjectListing {
        futures::stream::try_unfold(self, |mut listing| async move {
            Ok(listing.next_file().await?.map(|file| (file, listing)))
        })
        .boxed()
    }

    /// The next file, or `None` at the end.
    async fn next_file(&mut self) -> Result<Option<ObjectInfo>, SourceError> {
        loop {
            if let Some(file) = self.ready.pop_front() {
                if is_empty_folder_marker(&self.store, &file, &self.errors.borrowed()).await? {
                    continue;
                }
                self.handed_on += 1;
                return Ok(Some(file));
            }
            let Some(selection) = self.selection.as_mut() else {
                return Ok(None);
            };
            match self.pages.next().await {
                Some(Ok(meta)) => self.ready.extend(selection.push(info(meta))?),
                Some(Err(e)) => return Err(map_error(&e, Target::Store, &self.errors.borrowed())),
                None => {
                    if let Some(selection) = self.selection.take() {
                        self.ready.extend(selection.finish());
                    }
                    debug!(
                        location = %self.errors.location,
                        files = self.handed_on + self.ready.len() as u64,
                        "listed source files, page by page"
                    );
                }
            }
        }
    }
}
