//! The entry page (`/browse/entries/<id>`): what a reviewer needs before approving, on
//! one page. Its channel and status history; every evidence item (with a link to the
//! blob when the store holds it) and what analysis of the blobs found; every decision as
//! a timeline (signer, time, leaf index, a link to its receipt, the reviewer's comment
//! or the status change's reason); the policy that applied.
//!
//! Built in two reads: the catalog (folds, policies) under a read slot, then the decision
//! leaves (for the comments, which the catalog state does not keep) and the blob store,
//! outside the catalog lock. At most [`MAX_TIMELINE`] decisions are shown, so the page
//! costs a bounded number of folds and leaf reads.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

use super::layout::{error_page, html_response, page};
use crate::api::catalog::{CatalogReads, ReadWork};
use crate::api::AppState;
use crate::catalog::{
    fold, parse_decision, Catalog, ChannelPolicy, DecisionPayload, EntryAction, EntryRecord,
    EntryStatus, EntryView, Leaf, PublicationRecord, Verdict, ENTRY_URN,
};
use crate::http::{routes, Problem};
use crate::storage::blobs::BlobStore;

/// What the entry page reads beyond the catalog: the decision leaves (for their
/// comments) and the evidence store. The holder reads its log; a frontend its followed
/// tiles and the same bucket, so that its page is the holder's.
pub trait EntryPageReads: CatalogReads {
    /// The exact bytes of leaf `index` (`None` if it cannot be read: the comment is then
    /// not shown). Blocking.
    fn leaf(&self, index: u64) -> Option<Vec<u8>>;
    /// The evidence store, if there is one.
    fn blobs(&self) -> Option<Arc<BlobStore>>;
}

impl EntryPageReads for AppState {
    fn leaf(&self, index: u64) -> Option<Vec<u8>> {
        self.log.entry(index).ok()
    }
    fn blobs(&self) -> Option<Arc<BlobStore>> {
        self.blobs.clone()
    }
}

/// Most decisions shown on one entry page (the rest are counted, and listed in
/// `/v1/catalog/entries/<id>`'s `leafIndices`).
pub const MAX_TIMELINE: usize = 200;

/// One row of the timeline: a leaf about the entry and the state it left.
struct Step {
    leaf_index: u64,
    /// `Publication`, `Review`, `Promotion` or `StatusChange`.
    kind: &'static str,
    what: String,
    signer: String,
    accepted_at: String,
    issued_at: Option<String>,
    /// The channel and status after this leaf.
    channel: String,
    status: EntryStatus,
    /// The comment or reason, read from the leaf.
    note: Option<String>,
}

/// A channel policy that applied, and the `PolicySet` leaf it came from (0: defaults).
struct Applied {
    why: String,
    channel: String,
    policy_leaf: u64,
    policy: Option<ChannelPolicy>,
}

/// Everything the page shows.
struct EntryData {
    at: u64,
    view: EntryView,
    publication: PublicationRecord,
    steps: Vec<Step>,
    hidden: usize,
    applied: Vec<Applied>,
    /// Per evidence item: whether the store holds its blob.
    held: Vec<bool>,
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Approve => "approve",
        Verdict::Deny => "deny",
    }
}

/// The catalog half: folds after each decision and the policies in force.
fn read_entry(catalog: &Catalog, at: u64, local: &str) -> Result<EntryData, Problem> {
    let missing = || Problem::not_found(format!("no catalog entry {local}"));
    let store = |e: crate::catalog::RecordError| Problem::internal(e.to_string());
    let index = catalog
        .entry_index(local)
        .map_err(store)?
        .ok_or_else(missing)?;
    let (view, publication) = catalog
        .entry_view(index, at)
        .map_err(store)?
        .ok_or_else(missing)?;
    let hex = publication
        .subject_digest
        .strip_prefix("sha256:")
        .unwrap_or(&publication.subject_digest);
    let record: EntryRecord = catalog
        .find_entry(&publication.target_catalog_ref, hex)
        .map_err(store)?
        .ok_or_else(missing)?;
    let policy_at = |i: u64| catalog.policy_before(i).0;
    let after = |leaf: u64| fold(&record, &publication, leaf.saturating_add(1), &policy_at);
    let first = after(index);
    let mut steps = vec![Step {
        leaf_index: index,
        kind: "Publication",
        what: format!("published to {}", publication.channel),
        signer: publication.publisher.clone(),
        accepted_at: publication.accepted_at.clone(),
        issued_at: None,
        channel: first.channel,
        status: first.status,
        note: None,
    }];
    let (policy, policy_leaf) = catalog.policy_before(index);
    let mut applied = vec![Applied {
        why: format!("admission of the publication (leaf {index})"),
        channel: publication.channel.clone(),
        policy_leaf,
        policy: policy.channel(&publication.channel).cloned(),
    }];
    let decisions: Vec<_> = record
        .decisions
        .iter()
        .filter(|d| d.leaf_index < at)
        .collect();
    let hidden = decisions.len().saturating_sub(MAX_TIMELINE);
    for d in decisions.into_iter().take(MAX_TIMELINE) {
        let state = after(d.leaf_index);
        let (kind, what) = match &d.action {
            EntryAction::Review {
                channel,
                verdict: v,
            } => ("Review", format!("review for {channel}: {}", verdict(*v))),
            EntryAction::Promotion {
                from_channel,
                to_channel,
                policy_index,
            } => {
                let policy = &catalog.policy_before(d.leaf_index).0;
                applied.push(Applied {
                    why: format!("promotion into {to_channel} (leaf {})", d.leaf_index),
                    channel: to_channel.clone(),
                    policy_leaf: *policy_index,
                    policy: policy.channel(to_channel).cloned(),
                });
                (
                    "Promotion",
                    format!("promoted {from_channel} → {to_channel}"),
                )
            }
            EntryAction::StatusChange { status } => {
                ("StatusChange", format!("status set to {}", status.as_str()))
            }
        };
        steps.push(Step {
            leaf_index: d.leaf_index,
            kind,
            what,
            signer: d.signer.clone(),
            accepted_at: d.accepted_at.clone(),
            issued_at: d.issued_at.clone(),
            channel: state.channel,
            status: state.status,
            note: None,
        });
    }
    Ok(EntryData {
        at,
        view,
        publication,
        steps,
        hidden,
        applied,
        held: Vec::new(),
    })
}

/// The free text a decision leaf carries: a review's comment or a status change's
/// reason. Unreadable leaves give nothing (the page still shows the decision).
fn decision_note(bytes: &[u8]) -> Option<String> {
    let Ok(Leaf::Decision(leaf)) = Leaf::parse(bytes) else {
        return None;
    };
    match parse_decision(leaf.kind, &leaf.envelope.payload).ok()? {
        DecisionPayload::Review(r) => r.comment,
        DecisionPayload::StatusChange(s) => s.reason,
        _ => None,
    }
}

/// The I/O half: comments from the decision leaves, blobs from the store.
fn read_leaves_and_blobs(
    reads: &impl EntryPageReads,
    blobs: Option<&BlobStore>,
    data: &mut EntryData,
) {
    for step in data.steps.iter_mut().skip(1) {
        if matches!(step.kind, "Review" | "StatusChange") {
            step.note = reads.leaf(step.leaf_index).and_then(|b| decision_note(&b));
        }
    }
    data.held = data
        .publication
        .evidence
        .iter()
        .map(|e| blobs.is_some_and(|b| b.contains(&e.digest.sha256)))
        .collect();
}

/// `GET /browse/entries/<id>` (the entry's local id or its URN).
pub async fn entry<S: EntryPageReads>(
    State(app): State<S>,
    Extension(work): Extension<Arc<ReadWork>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let origin = app.origin();
    let id = match id {
        Ok(Path(id)) => id,
        Err(r) => {
            let problem = Problem::bad_request(format!("entry id: {}", r.body_text()));
            return error_page(&origin, &problem);
        }
    };
    let local = id.strip_prefix(ENTRY_URN).unwrap_or(&id).to_string();
    // Entry ids are 32 hex digits: anything else cannot exist, and costs no read.
    if local.len() != 32 || !local.bytes().all(|b| b.is_ascii_hexdigit()) {
        let shown: String = id.chars().take(80).collect();
        return error_page(
            &origin,
            &Problem::not_found(format!(
                "no catalog entry {shown:?}: entry ids are 32 hex digits"
            )),
        );
    }
    let result = work
        .run(&app, move |catalog, at| read_entry(catalog, at, &local))
        .await;
    let mut data = match result {
        Ok(d) => d,
        Err(problem) => return error_page(&origin, &problem),
    };
    let blobs = app.blobs();
    let data = tokio::task::spawn_blocking(move || {
        read_leaves_and_blobs(&app, blobs.as_deref(), &mut data);
        data
    })
    .await;
    match data {
        Ok(data) => {
            let title = data.publication.subject_name.clone();
            html_response(StatusCode::OK, page(&title, &origin, render(&data)))
        }
        Err(e) => error_page(&origin, &Problem::internal(format!("entry page: {e}"))),
    }
}

fn status_badge(status: EntryStatus) -> Markup {
    html! { span class={ "status status-" (status.as_str()) } { (status.as_str()) } }
}

fn render(d: &EntryData) -> Markup {
    let p = &d.publication;
    let report = p.evidence_report.as_ref();
    html! {
        dl.facts {
            dt { "Entry" } dd.mono { (ENTRY_URN) (d.view.id) }
            dt { "Subject" } dd { (p.subject_name) }
            dt { "Subject digest" } dd.mono { (p.subject_digest) }
            dt { "Target" } dd { (p.target_catalog_ref) }
            dt { "Channel" } dd { (d.view.channel) }
            dt { "Status" } dd { (status_badge(d.view.status)) " " span.muted { "promotion: " (d.view.promotion_state) } }
            dt { "Publisher" } dd.mono { (p.publisher) }
            dt { "Requester" } dd { (p.requester_ref) }
            dt { "As of tree size" } dd { (d.at) }
            dt { "JSON" } dd {
                a href=(routes::entry(&d.view.id)) { "CatalogEntry" } " · "
                a href=(routes::evidence_bundle(&d.view.id)) { "EvidenceBundle" }
            }
        }

        h2 { "Channel and status history" }
        table.history {
            thead { tr { th { "Leaf" } th { "Accepted" } th { "Decision" } th { "Channel" } th { "Status" } } }
            tbody {
                @for s in &d.steps {
                    tr {
                        td { a href=(routes::receipt(s.leaf_index)) { (s.leaf_index) } }
                        td { (s.accepted_at) }
                        td { (s.what) }
                        td { (s.channel) }
                        td { (status_badge(s.status)) }
                    }
                }
            }
        }

        h2 { "Evidence" }
        table.evidence {
            thead { tr {
                th { "#" } th { "Type" } th { "Media type" } th { "Digest" } th { "Size" }
                th { "Blob" } th { "Analysis" }
            } }
            tbody {
                @for (i, e) in p.evidence.iter().enumerate() {
                    @let finding = report.and_then(|r| r.finding(i));
                    tr {
                        td { (i) }
                        td { (e.evidence_type) }
                        td.mono { (e.media_type) }
                        td.mono.wrap { "sha256:" (e.digest.sha256) }
                        td { (e.size) }
                        td {
                            @if d.held.get(i).copied().unwrap_or(false) {
                                a href=(routes::blob(&e.digest.sha256)) type=(e.media_type) { "download" }
                            } @else { span.muted { "not held" } }
                        }
                        td {
                            @if let Some(f) = finding {
                                (f.format)
                                @if let Some(s) = f.max_severity { ", highest severity " (s.as_str()) }
                                @if let Some(n) = f.findings { ", " (n) " findings" }
                                @if let Some(pinned) = f.pinned { @if pinned { ", inputs pinned" } @else { ", inputs NOT pinned" } }
                                @for problem in &f.problems { br; span.bad { (problem) } }
                            } @else { span.muted { "not analysed" } }
                        }
                    }
                }
            }
        }
        (analysis(d))

        h2 { "Decisions" }
        ol.timeline {
            @for s in &d.steps {
                li {
                    div {
                        span.what { (s.kind) } ": " (s.what)
                    }
                    div.muted {
                        "leaf " a href=(routes::log_entry(s.leaf_index)) { (s.leaf_index) }
                        " · signed by " code { (s.signer) }
                        " · accepted " (s.accepted_at)
                        @if let Some(issued) = &s.issued_at { " · issued " (issued) }
                        " · " a.receipt href=(routes::receipt(s.leaf_index)) { "receipt" }
                    }
                    @if let Some(note) = &s.note { div.comment { (note) } }
                }
            }
        }
        @if d.hidden > 0 {
            p.muted { (d.hidden) " later decisions are not shown; their leaf indices are in "
                a href=(routes::entry(&d.view.id)) { "the entry's JSON" } "." }
        }

        h2 { "Policy that applied" }
        @for a in &d.applied {
            h3 { (a.why) }
            p.muted {
                "Channel " code { (a.channel) } " under "
                @if a.policy_leaf == 0 { "the genesis defaults" }
                @else { "the PolicySet of leaf " a href=(routes::log_entry(a.policy_leaf)) { (a.policy_leaf) } }
            }
            @match &a.policy {
                Some(policy) => pre.policy { (serde_json::to_string_pretty(policy).unwrap_or_default()) },
                None => p { "That policy names no such channel." },
            }
        }
    }
}

/// The analysis summary: SBOM format, highest vulnerability severity, provenance match.
fn analysis(d: &EntryData) -> Markup {
    let p = &d.publication;
    let findings: Vec<_> = p
        .evidence
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let f = p.evidence_report.as_ref()?.finding(i)?;
            Some((e.evidence_type.as_str(), f))
        })
        .collect();
    let of = |ty: &'static str| {
        findings
            .iter()
            .filter(move |(t, _)| *t == ty)
            .map(|(_, f)| *f)
    };
    let sbom: Vec<&str> = of("sbom").map(|f| f.format.as_str()).collect();
    let scans: Vec<_> = of("vulnerability-scan").collect();
    let worst = scans.iter().filter_map(|f| f.max_severity).max();
    let provenance: Vec<_> = of("provenance").collect();
    html! {
        h2 { "What the evidence analysis found" }
        dl.facts.analysis {
            dt { "SBOM format" }
            dd { @if sbom.is_empty() { span.muted { "no SBOM blob held" } } @else { (sbom.join(", ")) } }
            dt { "Highest vulnerability severity" }
            dd {
                @if scans.is_empty() { span.muted { "no scan blob held" } }
                @else if let Some(w) = worst { (w.as_str()) }
                @else { "none found" }
            }
            dt { "Provenance subject" }
            dd {
                @if provenance.is_empty() { span.muted { "no provenance blob held" } }
                @else if provenance.iter().all(|f| f.problems.is_empty()) {
                    span.ok { "matches the subject digest" }
                } @else {
                    span.bad { "does not match: " }
                    @for f in &provenance { @for problem in &f.problems { (problem) " " } }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decision_note;

    #[test]
    fn notes_come_only_from_readable_decision_leaves() {
        assert_eq!(decision_note(b"not json"), None);
        assert_eq!(decision_note(b"{\"kind\":\"Publication\"}"), None);
    }
}
