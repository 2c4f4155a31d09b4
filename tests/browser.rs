//! The catalog browser in a real browser: a live server populated like the README's
//! walkthrough (a publication with its evidence uploaded, reviews, a promotion, a
//! revocation), its pages loaded in headless Debian `chromium` (`--dump-dom`: the DOM
//! after the page loaded and anything it could run had run), and their content checked.
//! A publisher's subject name and a reviewer's comment carrying `<script>` are shown as
//! text and never run. Every page, error pages included, carries the
//! Content-Security-Policy.
//!
//! `.ci/run` installs `chromium`. Without it these tests skip with a printed reason,
//! except under `CI`, where they fail.

mod common;
mod watchers;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::authority::{
    agentplane_refs, item, release_evidence, request, subject_hex, Authority, Key,
};
use common::raw_http;
use serde_json::{json, Value};
use srcos_catalog::api::browse::CSP;

/// The script a hostile publisher and reviewer plant: had it run, the title would change
/// and a `<blink id="pwned">` element would exist.
const SCRIPT: &str = "<script>document.title='pwned';document.body.appendChild(document.createElement('blink')).id='pwned'</script>";

/// The chromium binary, or `None` (with the reason printed) when the test should skip.
fn chromium() -> Option<PathBuf> {
    let wanted = std::env::var_os("CHROMIUM").unwrap_or_else(|| "chromium".into());
    let found = Command::new(&wanted)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success());
    match found {
        Some(_) => Some(PathBuf::from(wanted)),
        None if std::env::var_os("CI").is_some() => {
            panic!("chromium is missing (CI is set): .ci/run installs Debian's chromium")
        }
        None => {
            eprintln!(
                "SKIPPED: no chromium on PATH (install Debian's `chromium`, as .ci/run does)"
            );
            None
        }
    }
}

/// A headless chromium run with a throw-away profile.
struct Browser {
    bin: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", self.profile.path().display()))
        .args(extra);
        c
    }

    /// The DOM of `url` after it loaded, serialized by the browser.
    fn dom(&self, url: &str, extra: &[&str]) -> String {
        let out = self
            .command(extra)
            .arg("--dump-dom")
            .arg(url)
            .output()
            .expect("running chromium");
        assert!(
            out.status.success(),
            "chromium --dump-dom {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A 1200x900 PNG of `url` at `path`.
    fn screenshot(&self, url: &str, path: &Path) {
        let out = self
            .command(&["--window-size=1200,900"])
            .arg(format!("--screenshot={}", path.display()))
            .arg(url)
            .output()
            .expect("running chromium");
        assert!(
            out.status.success(),
            "chromium --screenshot {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The populated authority and what the pages must show.
struct World {
    a: Authority,
    /// The released entry's local id (published, reviewed, promoted to candidate).
    released: String,
    released_hex: String,
    /// The revoked entry's local id.
    revoked: String,
    /// The entry whose subject name and review comment carry [`SCRIPT`].
    hostile: String,
    hostile_name: String,
}

fn local_id(a: &Authority, hex: &str) -> String {
    let id = a.entry(hex)["entry"]["id"].as_str().unwrap().to_string();
    id.strip_prefix("urn:srcos:catalog-entry:")
        .unwrap()
        .to_string()
}

fn publish_release(a: &Authority, publisher: &Key, name: &str, seed: &str) -> (String, String) {
    let hex = subject_hex(seed);
    let files = release_evidence(&hex);
    for (_, _, bytes) in &files {
        let status = a.upload(bytes).0;
        assert!(status == 201 || status == 200, "upload: {status}");
    }
    let items: Vec<Value> = files.iter().map(|(t, m, b)| item(t, m, b)).collect();
    let req = request(name, &hex, "dev", items, agentplane_refs(seed));
    let (status, body) = a.publish(&publisher.signer, &req);
    assert_eq!(status, 201, "{body}");
    (hex, req["targetCatalogRef"].as_str().unwrap().to_string())
}

fn review(a: &Authority, reviewer: &Key, target: &str, hex: &str, channel: &str, comment: &str) {
    let (status, body) = a.send(
        "/v1/reviews",
        &reviewer.signer,
        &json!({
            "apiVersion": "catalog.srcos.ai/v1", "kind": "Review",
            "entry": {"targetCatalogRef": target, "subjectDigest": {"sha256": hex}},
            "reviewer": reviewer.signer.verifier().short_id(),
            "channel": channel, "verdict": "approve", "comment": comment,
        }),
    );
    assert_eq!(status, 201, "{body}");
}

/// The walkthrough: a release published with its evidence, approved for dev and for
/// candidate and promoted; a second one revoked with a reason; a hostile one.
fn populate() -> World {
    let a = Authority::start(&["--origin", "browser.srcos.test/log"]);
    let publisher = a.key("pipeline.example/smoke");
    let reviewer = a.key("erin");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    a.grant(&reviewer.signer, "reviewer", &["*"]);

    let (hex, target) = publish_release(
        &a,
        &publisher,
        "quay.io/socios/sourceos-smoke-runner",
        "release-1",
    );
    review(
        &a,
        &reviewer,
        &target,
        &hex,
        "dev",
        "SBOM and scan checked.",
    );
    review(
        &a,
        &reviewer,
        &target,
        &hex,
        "candidate",
        "Smoke test passed.",
    );
    let (status, body) = a.promote(&a.admin, &target, &hex, "dev", "candidate");
    assert_eq!(status, 201, "{body}");
    let released = local_id(&a, &hex);

    let (old_hex, old_target) =
        publish_release(&a, &publisher, "quay.io/socios/sourceos-builder", "old-1");
    let (status, body) = a.send(
        "/v1/status-changes",
        &a.admin,
        &json!({
            "apiVersion": "catalog.srcos.ai/v1", "kind": "StatusChange",
            "entry": {"targetCatalogRef": old_target, "subjectDigest": {"sha256": old_hex}},
            "status": "revoked", "reason": "Key compromise of the build host.",
        }),
    );
    assert_eq!(status, 201, "{body}");
    let revoked = local_id(&a, &old_hex);

    // Subject names are printable ASCII without spaces, which is enough for a script.
    let hostile_name = format!("quay.io/evil/x{SCRIPT}").replace(' ', "");
    let (evil_hex, evil_target) = publish_release(&a, &publisher, &hostile_name, "evil-1");
    review(&a, &reviewer, &evil_target, &evil_hex, "dev", SCRIPT);
    let hostile = local_id(&a, &evil_hex);
    World {
        a,
        released,
        released_hex: hex,
        revoked,
        hostile,
        hostile_name,
    }
}

fn url(w: &World, path: &str) -> String {
    format!("{}{path}", w.a.server.url)
}

fn assert_has(dom: &str, needles: &[&str]) {
    for n in needles {
        assert!(dom.contains(n), "{n:?} not in the page:\n{dom}");
    }
}

/// The `<title>` of a serialized DOM.
fn title(dom: &str) -> &str {
    let start = dom.find("<title>").expect("a title") + "<title>".len();
    let end = dom[start..].find("</title>").expect("the title ends") + start;
    &dom[start..end]
}

#[test]
fn pages_show_search_entry_and_log_in_a_real_browser() {
    let Some(bin) = chromium() else { return };
    let browser = Browser {
        bin,
        profile: common::tempdir(),
    };
    let w = populate();

    // Search: every entry, then each filter.
    let all = browser.dom(&url(&w, "/"), &[]);
    assert_eq!(title(&all), "Catalog entries · srcos-catalog");
    assert_has(
        &all,
        &[
            "quay.io/socios/sourceos-smoke-runner",
            "quay.io/socios/sourceos-builder",
            "3 entries on this page",
            &format!("href=\"/browse/entries/{}\"", w.released),
        ],
    );
    let revoked = browser.dom(&url(&w, "/?status=revoked"), &[]);
    assert_has(
        &revoked,
        &["quay.io/socios/sourceos-builder", "1 entries on this page"],
    );
    assert!(!revoked.contains("sourceos-smoke-runner"));
    let by_digest = browser.dom(&url(&w, &format!("/?q=sha256:{}", w.released_hex)), &[]);
    assert_has(
        &by_digest,
        &["sourceos-smoke-runner", "1 entries on this page"],
    );
    let candidate = browser.dom(
        &url(
            &w,
            "/?channel=candidate&target=sourceos%3A%2F%2Fcatalog%2Fimages%2F",
        ),
        &[],
    );
    assert_has(
        &candidate,
        &["sourceos-smoke-runner", "1 entries on this page"],
    );
    let none = browser.dom(&url(&w, "/?target=oci%3A%2F%2Felsewhere%2F"), &[]);
    assert_has(&none, &["No entry on this page matches."]);

    // The entry page: history, evidence with blob links, analysis, timeline, policy.
    let leaves: Vec<u64> = w.a.entry(&w.released_hex)["leafIndices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap())
        .collect();
    assert_eq!(leaves.len(), 4, "publication, two reviews, the promotion");
    let receipt_links: Vec<String> = leaves
        .iter()
        .map(|i| format!("href=\"/v1/receipts/{i}\""))
        .collect();
    let admission = format!("admission of the publication (leaf {})", leaves[0]);
    let entry = browser.dom(&url(&w, &format!("/browse/entries/{}", w.released)), &[]);
    assert_eq!(
        title(&entry),
        "quay.io/socios/sourceos-smoke-runner · srcos-catalog"
    );
    assert_has(
        &entry,
        &[
            "Channel and status history",
            "published to dev",
            "review for dev: approve",
            "review for candidate: approve",
            "promoted dev → candidate",
            "SBOM and scan checked.",
            "Smoke test passed.",
            "spdx-2.3",
            "Highest vulnerability severity</dt><dd>low",
            "matches the subject digest",
            "application/spdx+json",
            "/v1/blobs/sha256:",
            "signed by <code>erin+",
            &admission,
            "promotion into candidate",
            "\"requiredEvidence\"",
            "the genesis defaults",
        ],
    );
    for link in &receipt_links {
        assert_has(&entry, &[link]);
    }
    // Receipt links lead to real receipts.
    let (status, _, body) = w.a.http.get(&format!("/v1/receipts/{}", leaves[3]));
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("\"logIndex\""));

    let revoked_entry = browser.dom(&url(&w, &format!("/browse/entries/{}", w.revoked)), &[]);
    assert_has(
        &revoked_entry,
        &[
            "status set to revoked",
            "Key compromise of the build host.",
            "status-revoked",
        ],
    );

    // The log page.
    let size = w.a.get_json("/v1/log").1["treeSize"].as_u64().unwrap();
    let log = browser.dom(&url(&w, "/browse/log"), &[]);
    assert_has(
        &log,
        &[
            &format!("<dd class=\"tree-size\">{size}</dd>"),
            "browser.srcos.test/log",
            "Checkpoint age",
            "not configured with witnesses",
            &format!("/tile/0/000.p/{size}"),
            &format!("/tile/entries/000.p/{size}"),
        ],
    );

    // Without JavaScript the pages are the same: none carries a script (and the CSP would
    // refuse one), so the browser above ran them exactly as one with scripting off would.
    // (Chromium's headless mode cannot dump a DOM with scripting disabled, as it reads the
    // DOM through script.) A search is a plain GET form whose URL the filters above used.
    let no_js = browser.dom(&url(&w, "/?q=quay.io%2Fsocios%2Fsourceos-builder"), &[]);
    assert_has(&no_js, &["sourceos-builder", "1 entries on this page"]);
    assert_has(
        &all,
        &[
            "<form class=\"search\" method=\"get\" action=\"/\">",
            "name=\"q\"",
            "name=\"target\"",
            "name=\"channel\"",
            "<select name=\"status\">",
        ],
    );
    for dom in [&all, &entry, &log] {
        assert!(!dom.contains("<script"), "no page carries a script");
    }

    // Screenshots of the main pages (kept in docs/ when BROWSER_SCREENSHOTS names a dir).
    let dir = common::tempdir();
    let out = std::env::var_os("BROWSER_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().to_path_buf());
    for (name, path) in [
        ("browser-search.png", "/".to_string()),
        (
            "browser-entry.png",
            format!("/browse/entries/{}", w.released),
        ),
    ] {
        let file = out.join(name);
        browser.screenshot(&url(&w, &path), &file);
        let png = std::fs::read(&file).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is a PNG");
        assert!(png.len() > 10_000, "{name} shows something");
    }
    let _ = &w.hostile_name;
}

#[test]
fn a_script_in_a_subject_name_or_comment_is_text_and_never_runs() {
    let Some(bin) = chromium() else { return };
    let browser = Browser {
        bin,
        profile: common::tempdir(),
    };
    let w = populate();
    let escaped = "&lt;script&gt;document.title='pwned';";
    // The browser serializes text with `&`, `<` and `>` escaped: had the script run, the
    // title would be `pwned`.
    let as_text = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let entry_title = format!("{} · srcos-catalog", as_text(&w.hostile_name));
    for (path, want_title) in [
        (
            "/".to_string(),
            "Catalog entries · srcos-catalog".to_string(),
        ),
        (
            format!("/browse/entries/{}", w.hostile),
            entry_title.clone(),
        ),
        (
            format!(
                "/?q={}",
                w.hostile_name.replace('<', "%3C").replace('>', "%3E")
            ),
            "Catalog entries · srcos-catalog".to_string(),
        ),
    ] {
        let dom = browser.dom(&url(&w, &path), &[]);
        assert_has(&dom, &[escaped]);
        assert!(
            !dom.contains("id=\"pwned\""),
            "{path}: the script ran:\n{dom}"
        );
        assert_eq!(title(&dom), want_title, "{path}: the script ran");
        assert!(!dom.contains("<script"), "{path}: a script element exists");
        assert!(!dom.contains("<blink"), "{path}: the script ran");
    }
    let entry = browser.dom(&url(&w, &format!("/browse/entries/{}", w.hostile)), &[]);
    // Both plantings are there as text: the subject name (title, heading, facts) and the
    // review comment.
    assert_has(
        &entry,
        &[&format!("<div class=\"comment\">{}</div>", as_text(SCRIPT))],
    );
    assert!(entry.matches(escaped).count() >= 4, "{entry}");
}

/// The headers of a raw answer, lowercased names.
fn headers(text: &str) -> Vec<(String, String)> {
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

fn get_raw(base: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (status, text) = raw_http(base, request.as_bytes());
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, headers(&text), body)
}

#[test]
fn every_page_carries_the_csp_and_hostile_queries_get_a_400_page() {
    let a = Authority::start(&[]);
    let base = a.server.url.clone();
    let long = "a".repeat(600);
    let cases: Vec<(String, u16, &str)> = vec![
        ("/".into(), 200, "Catalog entries"),
        (
            "/?q=&target=&channel=&status=".into(),
            200,
            "Catalog entries",
        ),
        ("/browse/log".into(), 200, "Transparency log"),
        ("/browse/style.css".into(), 200, "timeline"),
        ("/?status=gone".into(), 400, "status must be one of"),
        ("/?after=01".into(), 400, "after must be a page token"),
        (
            "/?after=99999999999999999999999".into(),
            400,
            "after must be a page token",
        ),
        ("/?bogus=1".into(), 400, "unknown field"),
        ("/?q=a&q=b".into(), 400, "query string"),
        (format!("/?q={long}"), 400, "at most 512"),
        ("/?channel=%00".into(), 400, "control character"),
        (
            format!("/browse/entries/{}", "0".repeat(32)),
            404,
            "no catalog entry",
        ),
        (
            "/browse/entries/%3Cscript%3E".into(),
            404,
            "entry ids are 32 hex digits",
        ),
    ];
    for (path, want, text) in &cases {
        let (status, headers, body) = get_raw(&base, path);
        assert_eq!(status, *want, "{path}: {body}");
        assert!(body.contains(text), "{path}: {text:?} not in {body}");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("content-security-policy"), Some(CSP), "{path}");
        assert_eq!(header("x-content-type-options"), Some("nosniff"), "{path}");
        let ct = header("content-type").unwrap_or_default();
        if path.ends_with(".css") {
            assert_eq!(ct, "text/css; charset=utf-8");
        } else {
            assert_eq!(ct, "text/html; charset=utf-8", "{path}");
            assert!(!body.contains("<script"), "{path}");
            assert!(!body.contains("style=\""), "{path}: no inline style");
        }
    }
    assert!(
        CSP.contains("default-src 'none'") && !CSP.contains("script-src"),
        "no script source is allowed"
    );

    // Pages of 50, and the next-page link resumes where the page ended.
    let publisher = a.key("pipeline.example/pages");
    a.grant(&publisher.signer, "publisher", &["dev"]);
    for n in 0..51 {
        let req: Value = serde_json::from_str(&common::request_json(
            "quay.io/socios/paged",
            n,
            "sourceos://catalog/images/paged",
            "dev",
        ))
        .unwrap();
        assert_eq!(a.publish(&publisher.signer, &req).0, 201);
    }
    let (status, _, first) = get_raw(&base, "/?q=quay.io%2Fsocios%2Fpaged");
    assert_eq!(status, 200);
    assert!(first.contains("50 entries on this page"), "{first}");
    let next = first
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next-page link")
        .replace("&amp;", "&");
    assert!(
        next.starts_with("/?q=quay.io%2Fsocios%2Fpaged&after="),
        "{next}"
    );
    let (status, _, second) = get_raw(&base, &next);
    assert_eq!(status, 200);
    assert!(second.contains("1 entries on this page"), "{second}");
    assert!(second.contains("First page") && !second.contains("rel=\"next\""));
}

#[test]
fn the_log_page_shows_the_witness_cosignatures() {
    let Some(bin) = chromium() else { return };
    let browser = Browser {
        bin,
        profile: common::tempdir(),
    };
    let fx = watchers::stopped_log(2);
    let w1 = watchers::witness_key(fx.dir.path(), "w1");
    let witness = watchers::start_witness(
        &w1,
        &[(&fx.origin, &fx.log_vkey)],
        &fx.dir.path().join("s1"),
    );
    let server = watchers::start_witnessed_log(&fx.data, &[(witness.url.as_str(), &w1)], &[]);
    // A fail-open receipt waits for a settled head, so the cosignature is in by now.
    watchers::publish_ok(&server.url, &fx.publisher, watchers::SUBJECT, 10);
    let size = watchers::tree_size(&server.url);
    let witness_id = srcos_catalog::keyfile::read_verifier(&w1.with_extension("vkey"))
        .unwrap()
        .short_id();
    let url = format!("{}/browse/log", server.url);
    let mut log = String::new();
    watchers::wait_until(
        std::time::Duration::from_secs(20),
        "the cosignature on the log page",
        || {
            log = browser.dom(&url, &[]);
            log.contains(&format!("yes, at size {size}"))
        },
    );
    assert_has(
        &log,
        &[
            "Quorum 1 of 1",
            "fail-open",
            &witness.url,
            &witness_id,
            &format!("Newest checkpoint with the quorum: size {size}, cosigned by {witness_id}"),
            "with the witness cosignatures collected",
            &format!("\u{2014} {}", witness_id.split('+').next().unwrap()),
        ],
    );
    if let Some(out) = std::env::var_os("BROWSER_SCREENSHOTS") {
        browser.screenshot(&url, &PathBuf::from(out).join("browser-log.png"));
    }
}
