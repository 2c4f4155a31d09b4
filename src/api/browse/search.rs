//! The search page (`/`): entries by subject name or digest, target ref prefix, channel
//! and status, [`PAGE`] at a time, resumable by the `after` token (the last publication
//! index examined, as `/v1/catalog/entries` pages).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::layout::{error_page, html_response, page, short_digest};
use crate::api::catalog::{CatalogReads, ReadWork};
use crate::catalog::{EntryPage, EntryQuery, EntryStatus, MAX_SCAN};
use crate::http::{routes, Problem};

/// Entries per page.
pub const PAGE: usize = 50;
/// Longest accepted value of any search field, in characters (the longest subject name
/// or ref the catalog admits).
pub const MAX_FIELD_CHARS: usize = crate::catalog::MAX_REF_CHARS;

/// The query string as sent (every field optional; unknown fields are a 400).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    q: Option<String>,
    target: Option<String>,
    channel: Option<String>,
    status: Option<String>,
    after: Option<String>,
}

/// A checked search: empty fields are absent, every value is bounded.
#[derive(Debug, Default, PartialEq, Eq)]
struct Search {
    q: Option<String>,
    target: Option<String>,
    channel: Option<String>,
    status: Option<EntryStatus>,
    after: Option<u64>,
}

fn field(value: Option<String>, name: &str) -> Result<Option<String>, Problem> {
    let Some(v) = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let n = v.chars().count();
    if n > MAX_FIELD_CHARS {
        return Err(Problem::bad_request(format!(
            "{name} is {n} characters long; at most {MAX_FIELD_CHARS} are accepted"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Problem::bad_request(format!(
            "{name} contains a control character"
        )));
    }
    Ok(Some(v))
}

impl Search {
    fn parse(raw: SearchQuery) -> Result<Search, Problem> {
        let status = match field(raw.status, "status")? {
            None => None,
            Some(s) => Some(EntryStatus::from_name(&s).ok_or_else(|| {
                Problem::bad_request(
                    "status must be one of draft, published, superseded, restricted, \
                     archived, revoked",
                )
            })?),
        };
        let after = match field(raw.after, "after")? {
            None => None,
            Some(a) => Some(crate::tiles::parse_canonical_decimal(&a).ok_or_else(|| {
                Problem::bad_request("after must be a page token (a canonical decimal number)")
            })?),
        };
        Ok(Search {
            q: field(raw.q, "q")?,
            target: field(raw.target, "target")?,
            channel: field(raw.channel, "channel")?,
            status,
            after,
        })
    }

    fn query(&self) -> EntryQuery {
        EntryQuery {
            subject: self.q.clone(),
            target: self.target.clone(),
            channel: self.channel.clone(),
            status: self.status,
            after: self.after,
            limit: PAGE,
        }
    }

    /// The link to this search resumed after `after`.
    fn link_after(&self, after: Option<u64>) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (k, v) in [
            ("q", &self.q),
            ("target", &self.target),
            ("channel", &self.channel),
        ] {
            if let Some(v) = v {
                pairs.push((k, v.clone()));
            }
        }
        if let Some(s) = self.status {
            pairs.push(("status", s.as_str().to_string()));
        }
        if let Some(a) = after {
            pairs.push(("after", a.to_string()));
        }
        let query: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        if query.is_empty() {
            routes::BROWSE_SEARCH.to_string()
        } else {
            format!("{}?{}", routes::BROWSE_SEARCH, query.join("&"))
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /?q=&target=&channel=&status=&after=`.
pub async fn search<S: CatalogReads>(
    State(app): State<S>,
    Extension(work): Extension<Arc<ReadWork>>,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Response {
    let origin = app.origin();
    let search = query
        .map_err(|r| Problem::bad_request(format!("query string: {}", r.body_text())))
        .and_then(|Query(raw)| Search::parse(raw));
    let search = match search {
        Ok(s) => s,
        Err(problem) => return error_page(&origin, &problem),
    };
    let entry_query = search.query();
    let result = work
        .run(&app, move |catalog, at| {
            catalog
                .query_entries(&entry_query, at)
                .map(|p| (p, at))
                .map_err(|e| Problem::internal(e.to_string()))
        })
        .await;
    match result {
        Ok((found, at)) => html_response(
            StatusCode::OK,
            page("Catalog entries", &origin, render(&search, &found, at)),
        ),
        Err(problem) => error_page(&origin, &problem),
    }
}

fn render(search: &Search, found: &EntryPage, at: u64) -> Markup {
    let statuses = [
        "draft",
        "published",
        "superseded",
        "restricted",
        "archived",
        "revoked",
    ];
    let selected = search.status.map(EntryStatus::as_str);
    html! {
        form.search method="get" action=(routes::BROWSE_SEARCH) {
            label { "Subject name or digest"
                input type="search" name="q" value=[search.q.as_deref()]
                    placeholder="quay.io/org/image or sha256:…" maxlength=(MAX_FIELD_CHARS);
            }
            label { "Target ref (prefix)"
                input type="text" name="target" value=[search.target.as_deref()]
                    placeholder="sourceos://catalog/images/" maxlength=(MAX_FIELD_CHARS);
            }
            label { "Channel"
                input type="text" name="channel" value=[search.channel.as_deref()]
                    placeholder="dev" maxlength=(MAX_FIELD_CHARS);
            }
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for s in statuses {
                        option value=(s) selected[selected == Some(s)] { (s) }
                    }
                }
            }
            button type="submit" { "Search" }
        }
        p.muted {
            "As of tree size " (at) ". "
            @if found.items.is_empty() { "No entry on this page matches." }
            @else { (found.items.len()) " entries on this page." }
            @if found.next.is_some() && found.items.len() < PAGE {
                " At most " (MAX_SCAN) " entries are examined per page; continue for more."
            }
        }
        @if !found.items.is_empty() {
            table.results {
                thead { tr {
                    th { "Subject" } th { "Digest" } th { "Target" } th { "Channel" }
                    th { "Status" } th { "Updated" } th { "Leaf" }
                } }
                tbody {
                    @for (view, publication) in &found.items {
                        tr {
                            td.wrap { a href=(routes::browse_entry(&view.id)) { (publication.subject_name) } }
                            td.mono title=(publication.subject_digest) { (short_digest(&publication.subject_digest)) }
                            td.wrap { (publication.target_catalog_ref) }
                            td { (view.channel) }
                            td { span class={ "status status-" (view.status.as_str()) } { (view.status.as_str()) } }
                            td { (view.updated_at) }
                            td { a href=(routes::receipt(view.publication_index)) { (view.publication_index) } }
                        }
                    }
                }
            }
        }
        nav.pager {
            @if search.after.is_some() {
                a href=(search.link_after(None)) { "First page" }
            }
            @if let Some(next) = found.next {
                a rel="next" href=(search.link_after(Some(next))) { "Next page" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> SearchQuery {
        let mut q = SearchQuery::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "q" => q.q = v,
                "target" => q.target = v,
                "channel" => q.channel = v,
                "status" => q.status = v,
                "after" => q.after = v,
                _ => unreachable!(),
            }
        }
        q
    }

    #[test]
    fn searches_are_checked() {
        let long = "a".repeat(MAX_FIELD_CHARS + 1);
        type Case<'a> = (Vec<(&'a str, &'a str)>, Result<Search, &'a str>);
        let cases: Vec<Case> = vec![
            (vec![], Ok(Search::default())),
            (
                vec![("q", " "), ("status", ""), ("after", "")],
                Ok(Search::default()),
            ),
            (
                vec![("q", "x/y"), ("status", "revoked"), ("after", "12")],
                Ok(Search {
                    q: Some("x/y".into()),
                    status: Some(EntryStatus::Revoked),
                    after: Some(12),
                    ..Search::default()
                }),
            ),
            (vec![("status", "gone")], Err("status must be one of")),
            (vec![("after", "012")], Err("after must be a page token")),
            (vec![("after", "-1")], Err("after must be a page token")),
            (
                vec![("after", "99999999999999999999999")],
                Err("after must be a page token"),
            ),
            (vec![("q", long.as_str())], Err("at most 512")),
            (vec![("channel", "a\u{0}b")], Err("control character")),
        ];
        for (pairs, want) in cases {
            let got = Search::parse(raw(&pairs)).map_err(|p| p.detail);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{pairs:?}"),
                (Err(g), Err(w)) => assert!(g.contains(w), "{pairs:?}: {g}"),
                (g, w) => panic!("{pairs:?}: got {g:?}, want {:?}", w.map(|_| ())),
            }
        }
    }

    #[test]
    fn page_links_keep_the_filters_and_encode_them() {
        let s = Search {
            q: Some("a b&c=<d>".into()),
            status: Some(EntryStatus::Draft),
            ..Search::default()
        };
        assert_eq!(
            s.link_after(Some(7)),
            "/?q=a%20b%26c%3D%3Cd%3E&status=draft&after=7"
        );
        assert_eq!(Search::default().link_after(None), "/");
    }
}
