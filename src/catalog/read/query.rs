//! Paginated entry queries over the state as of a tree size, in publication order.
//!
//! May import `catalog::error` and `catalog::model` (the state's read API).

use crate::catalog::error::RecordError;
use crate::catalog::model::entry::{EntryStatus, EntryView};
use crate::catalog::model::records::PublicationRecord;
use crate::catalog::model::state::Catalog;

/// Largest page.
pub const MAX_PAGE: usize = 1000;
/// Entries examined per query at most; a query that filters out more returns a page
/// token to resume from, so no request scans the whole catalog.
pub const MAX_SCAN: usize = 10_000;

/// A filter over entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryQuery {
    /// A subject name, or `sha256:<hex>`.
    pub subject: Option<String>,
    /// A target catalog ref prefix (`sourceos://catalog/images/` matches every target
    /// under it).
    pub target: Option<String>,
    /// The current channel.
    pub channel: Option<String>,
    /// The authority's status (`draft`, ..., `revoked`).
    pub status: Option<EntryStatus>,
    /// Resume after this publication index (the previous page's token).
    pub after: Option<u64>,
    /// Page size, 1 to [`MAX_PAGE`].
    pub limit: usize,
}

/// One page of entries.
#[derive(Debug)]
pub struct EntryPage {
    /// The entries, with their publications.
    pub items: Vec<(EntryView, PublicationRecord)>,
    /// The token of the next page, if there may be more.
    pub next: Option<u64>,
}

impl Catalog {
    /// The entries matching `q` as of tree size `at`, in publication order.
    pub fn query_entries(&self, q: &EntryQuery, at: u64) -> Result<EntryPage, RecordError> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        let after = q.after;
        let start = after.map_or(0, |a| a.saturating_add(1));
        // Every candidate list is in publication order, so the first index at or past
        // `at` ends it.
        let below = |i: &Result<u64, RecordError>| i.as_ref().map_or(true, |i| *i < at);
        let candidates: Box<dyn Iterator<Item = Result<u64, RecordError>> + '_> =
            match q.subject.as_deref() {
                Some(s) if s.starts_with("sha256:") => {
                    Box::new(self.records().subject_indices(s, start).take_while(below))
                }
                Some(name) => Box::new(self.entries_named(name, after).take_while(below)),
                None => Box::new(self.entry_indices(after, at)),
            };
        let mut items = Vec::new();
        let mut last = None;
        for (scanned, index) in candidates.enumerate() {
            if items.len() == limit || scanned == MAX_SCAN {
                return Ok(EntryPage { items, next: last });
            }
            let index = index?;
            last = Some(index);
            let Some((view, publication)) = self.entry_view(index, at)? else {
                continue;
            };
            if q.target
                .as_deref()
                .is_some_and(|t| !publication.target_catalog_ref.starts_with(t))
                || q.channel.as_deref().is_some_and(|c| c != view.channel)
                || q.status.is_some_and(|s| s != view.status)
            {
                continue;
            }
            items.push((view, publication));
        }
        Ok(EntryPage { items, next: None })
    }
}
