//! The log page (`/browse/log`): the tree size, the checkpoint served and its age, the
//! witnesses' cosignatures, and links to the checkpoint and the tiles (the right edge of
//! every level, which is where a new verifier starts). Reads only the head and the
//! witnessing snapshot: no catalog or tile read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use maud::{html, Markup};

use super::layout::{html_response, page};
use crate::api::AppState;
use crate::http::routes;
use crate::log::witnessing::BelowQuorum;
use crate::tiles::{bundle_for_leaf, stored_hashes_at_level, tile_for_hash, MAX_TILE_LEVEL};

/// `1 h 2 min 3 s`-style age.
fn age(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The right-edge tile of every level of a tree of `size`, then its last entry bundle.
fn edge_tiles(size: u64) -> Vec<String> {
    let mut out = Vec::new();
    for level in 0..=MAX_TILE_LEVEL {
        let count = stored_hashes_at_level(size, level);
        match tile_for_hash(level, count.saturating_sub(1), size) {
            Some(tile) if count > 0 => out.push(format!("/{}", tile.path())),
            _ => break,
        }
    }
    if let Some(bundle) = size.checked_sub(1).and_then(|l| bundle_for_leaf(l, size)) {
        out.push(format!("/{}", bundle.path()));
    }
    out
}

/// `GET /browse/log`.
pub async fn log(State(app): State<AppState>) -> Response {
    let origin = app.log.origin().to_string();
    let head = app.log.head();
    let signed = String::from_utf8_lossy(&head.signed).into_owned();
    let age = crate::telemetry::checkpoint_age();
    let root = head.checkpoint.root;
    let witnessing = app
        .witnessing
        .as_ref()
        .map(|w| (w.options().clone(), w.snapshot()));
    // What `/checkpoint` serves with witnesses: the newest witnessed checkpoint, with its
    // cosignature lines.
    let served = app
        .witnessing
        .as_ref()
        .and_then(|w| w.served())
        .map(|w| String::from_utf8_lossy(&w.signed).into_owned());
    let body: Markup = html! {
        dl.facts {
            dt { "Origin" } dd.mono { (origin) }
            dt { "Tree size" } dd.tree-size { (head.checkpoint.size) }
            dt { "Root hash" } dd.mono {
                (base64::engine::general_purpose::STANDARD.encode(root))
                br; span.muted { "hex " (hex::encode(root)) }
            }
            dt { "Checkpoint age" } dd {
                @match age { Some(a) => (self::age(a)), None => span.muted { "unknown" } }
                span.muted { " (since this server committed or opened it)" }
            }
            dt { "Verifier key" } dd.mono { (app.log.verifier().to_vkey()) }
        }
        h2 { "Latest checkpoint" }
        p { "As signed by the log (" a href=(routes::CHECKPOINT) { "/checkpoint" }
            " serves it with the witness cosignatures collected):" }
        pre.checkpoint { (signed) }
        @if let Some(served) = &served {
            p { "As served at " a href=(routes::CHECKPOINT) { "/checkpoint" }
                ", with the witness cosignatures collected:" }
            pre.served-checkpoint { (served) }
        }

        h2 { "Witnesses" }
        @match &witnessing {
            None => p.muted { "This log is not configured with witnesses." },
            Some((options, snapshot)) => {
                p {
                    "Quorum " (options.quorum) " of " (options.witnesses.len()) "; below it the log "
                    @match options.below_quorum {
                        BelowQuorum::FailOpen => "serves the newest checkpoint anyway (fail-open).",
                        BelowQuorum::HoldBack => "holds receipts back (hold-back).",
                    }
                }
                table.witnesses {
                    thead { tr { th { "Witness" } th { "Key" } th { "Cosigned the newest settled checkpoint" } } }
                    tbody {
                        @for w in &options.witnesses {
                            @let id = w.key.short_id();
                            tr {
                                td.wrap { (w.url) }
                                td.mono { (id) }
                                td {
                                    @match &snapshot.newest {
                                        Some(n) if n.cosigners.contains(&id) =>
                                            span.ok { "yes, at size " (n.checkpoint.size) },
                                        Some(n) => span.bad { "no (size " (n.checkpoint.size) ")" },
                                        None => span.muted { "no checkpoint settled yet" },
                                    }
                                }
                            }
                        }
                    }
                }
                p {
                    "Newest checkpoint with the quorum: "
                    @match &snapshot.quorum {
                        Some(q) => { "size " (q.checkpoint.size) ", cosigned by " (q.cosigners.join(", ")) }
                        None => span.muted { "none yet" },
                    }
                }
            }
        }

        h2 { "Tiles" }
        p { "The C2SP tlog-tiles of this tree: the right edge of every level and the newest entry bundle. "
            "Full tiles are immutable; partial ones are prefixes of the full tile to come." }
        ul.tiles {
            li { a href=(routes::CHECKPOINT) { "/checkpoint" } }
            @for t in edge_tiles(head.checkpoint.size) { li { a href=(t) { (t) } } }
        }
        p.muted { "Machine-readable: " a href=(routes::LOG_INFO) { (routes::LOG_INFO) } }
    };
    html_response(StatusCode::OK, page("Transparency log", &origin, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        for (s, want) in [
            (0.2, "0 s"),
            (61.0, "1 min 1 s"),
            (7322.0, "2 h 2 min"),
            (-3.0, "0 s"),
        ] {
            assert_eq!(age(s), want);
        }
    }

    #[test]
    fn edge_tiles_cover_every_level() {
        assert!(edge_tiles(0).is_empty());
        assert_eq!(edge_tiles(3), ["/tile/0/000.p/3", "/tile/entries/000.p/3"]);
        assert_eq!(
            edge_tiles(256 * 3 + 5),
            [
                "/tile/0/003.p/5",
                "/tile/1/000.p/3",
                "/tile/entries/003.p/5"
            ]
        );
    }
}
