//! Cursor pagination: newest first, the cursor is the id of the last item of
//! the previous page (ULIDs order by creation time).

use std::str::FromStr;

use sluice_application::ports::{MAX_PAGE_SIZE, Page, PageRequest};

/// Page size to use: `limit` clamped to 1..=200.
pub(crate) fn size(page: &PageRequest) -> usize {
    page.limit.clamp(1, MAX_PAGE_SIZE) as usize
}

/// Rows to fetch: one more than the page, to know whether another follows.
pub(crate) fn fetch(page: &PageRequest) -> i64 {
    i64::try_from(size(page) + 1).unwrap_or(i64::MAX)
}

/// The cursor as a stored id; a cursor that is not an id of this kind is
/// ignored (the first page is returned), as the in-memory store does.
pub(crate) fn after<Id: FromStr + ToString>(page: &PageRequest) -> Option<String> {
    page.cursor
        .as_deref()
        .and_then(|c| c.parse::<Id>().ok())
        .map(|id| id.to_string())
}

/// Cuts the fetched rows to a page and computes its `next_cursor`.
pub(crate) fn cut<T>(
    mut items: Vec<T>,
    page: &PageRequest,
    id_of: impl Fn(&T) -> String,
) -> Page<T> {
    let size = size(page);
    let more = items.len() > size;
    items.truncate(size);
    Page {
        next_cursor: if more { items.last().map(id_of) } else { None },
        items,
    }
}
