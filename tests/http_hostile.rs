//! Hostile and malformed input over real HTTP: every bad request gets a precise 4xx
//! with a problem+json body, and none of them changes the log.

mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::{request_json, tempdir, Http, Server};
use srcos_catalog::keyfile::read_signer;
use srcos_catalog::note::{KeyType, Signer};

const PAYLOAD_TYPE: &str = "application/vnd.srcos.catalog.v1+json";

fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A DSSE envelope built by hand, so each test controls every field.
fn envelope(payload: &[u8], signer: &Signer, keyid: Option<&str>) -> serde_json::Value {
    let sig = signer.sign_bytes(&pae(PAYLOAD_TYPE, payload));
    serde_json::json!({
        "payloadType": PAYLOAD_TYPE,
        "payload": B64.encode(payload),
        "signatures": [{"keyid": keyid.map(str::to_string).unwrap_or_else(|| signer.verifier().short_id()), "sig": B64.encode(sig)}],
    })
}

fn canonical(json: &str) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    serde_jcs::to_vec(&value).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    _server: Server,
    url: String,
    http: Http,
    publisher: Signer,
}

fn fixture() -> Fixture {
    let dir = tempdir();
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let http = Http::new(&server.url);
    let admin = read_signer(&data.join("admin.key")).unwrap();
    let publisher = Signer::generate("hostile.example/publisher", KeyType::Ed25519).unwrap();
    let grant = canonical(&format!(
        r#"{{"apiVersion":"catalog.srcos.ai/v1","kind":"PublisherGrant","publisherKey":"{}","role":"publisher","targetPrefixes":["sourceos://catalog/images/"],"channels":["dev"]}}"#,
        publisher.verifier().to_vkey()
    ));
    let (status, _, body) = http.post(
        "/v1/admin/grants",
        envelope(&grant, &admin, None).to_string().into_bytes(),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    Fixture {
        _dir: dir,
        url: server.url.clone(),
        _server: server,
        http,
        publisher,
    }
}

fn tree_size(http: &Http) -> u64 {
    let (_, _, body) = http.get("/v1/log");
    serde_json::from_slice::<serde_json::Value>(&body).unwrap()["treeSize"]
        .as_u64()
        .unwrap()
}

/// Asserts a problem+json answer with `status` whose detail mentions `needle`.
fn expect_problem(answer: (u16, String, Vec<u8>), status: u16, needle: &str) {
    let (got, content_type, body) = answer;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(got, status, "body: {text}");
    assert_eq!(content_type, "application/problem+json", "body: {text}");
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["status"], status);
    let all = format!("{} {}", problem["detail"], problem["errors"]);
    assert!(all.contains(needle), "expected {needle:?} in {all}");
}

#[test]
fn bad_submissions_get_precise_errors_and_change_nothing() {
    let f = fixture();
    let before = tree_size(&f.http);
    let good = canonical(&request_json(
        "quay.io/h/s",
        1,
        "sourceos://catalog/images/h",
        "dev",
    ));

    // Oversized body: 413 before anything is parsed, whether the size is declared
    // up front or only discovered while streaming a chunked body.
    let declared = format!(
        "POST /v1/publications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{",
        (1 << 20) + 1
    );
    let (status, text) = common::raw_http(&f.url, declared.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("application/problem+json") && text.contains("limited to"),
        "{text}"
    );
    let mut chunked =
        b"POST /v1/publications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..17 {
        chunked.extend_from_slice(b"10000\r\n");
        chunked.extend_from_slice(&[b' '; 0x10000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, text) = common::raw_http(&f.url, &chunked);
    assert_eq!(status, 413, "{}", &text[..text.len().min(300)]);
    // Not JSON, truncated JSON, not an envelope.
    expect_problem(
        f.http.post("/v1/publications", b"\x00\xffgarbage".to_vec()),
        400,
        "",
    );
    let full = envelope(&good, &f.publisher, None).to_string();
    expect_problem(
        f.http.post(
            "/v1/publications",
            full.as_bytes()[..full.len() / 2].to_vec(),
        ),
        400,
        "",
    );
    // Bad base64 in the payload and in the signature.
    let mut bad = envelope(&good, &f.publisher, None);
    bad["payload"] = serde_json::json!("!!!not base64!!!");
    expect_problem(
        f.http
            .post("/v1/publications", bad.to_string().into_bytes()),
        400,
        "base64",
    );
    let mut bad = envelope(&good, &f.publisher, None);
    bad["signatures"][0]["sig"] = serde_json::json!("%%%");
    let answer = f
        .http
        .post("/v1/publications", bad.to_string().into_bytes());
    assert!(
        answer.0 == 400 || answer.0 == 403,
        "bad signature base64: {}",
        answer.0
    );
    // Unknown fields, in the envelope and in the payload.
    let mut bad = envelope(&good, &f.publisher, None);
    bad["extra"] = serde_json::json!(1);
    expect_problem(
        f.http
            .post("/v1/publications", bad.to_string().into_bytes()),
        422,
        "extra",
    );
    let with_unknown = good_with_field(&good, "sneaky");
    expect_problem(
        f.http.post(
            "/v1/publications",
            envelope(&with_unknown, &f.publisher, None)
                .to_string()
                .into_bytes(),
        ),
        422,
        "sneaky",
    );
    // Several bad fields at once: every one is listed.
    let many = canonical(
        &request_json("", 1, "sourceos://catalog/images/h", "NOT A CHANNEL")
            .replace("\"sha256\":\"", "\"sha256\":\"XYZ"),
    );
    let (status, _, body) = f.http.post(
        "/v1/publications",
        envelope(&many, &f.publisher, None).to_string().into_bytes(),
    );
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        problem["errors"].as_array().unwrap().len() >= 3,
        "all problems listed: {problem}"
    );
    // Wrong key ID: a valid signature under a keyid that is not the signer's.
    let stranger = Signer::generate("stranger.example/k", KeyType::Ed25519).unwrap();
    expect_problem(
        f.http.post(
            "/v1/publications",
            envelope(&good, &f.publisher, Some(&stranger.verifier().short_id()))
                .to_string()
                .into_bytes(),
        ),
        403,
        "",
    );
    // A signature by a key nobody granted.
    expect_problem(
        f.http.post(
            "/v1/publications",
            envelope(&good, &stranger, None).to_string().into_bytes(),
        ),
        403,
        "",
    );
    // Granted key, but outside its grant: target and channel.
    let outside = canonical(&request_json(
        "quay.io/h/s",
        2,
        "sourceos://catalog/isos/h",
        "dev",
    ));
    expect_problem(
        f.http.post(
            "/v1/publications",
            envelope(&outside, &f.publisher, None)
                .to_string()
                .into_bytes(),
        ),
        403,
        "",
    );
    let wrong_channel = canonical(&request_json(
        "quay.io/h/s",
        3,
        "sourceos://catalog/images/h",
        "stable",
    ));
    expect_problem(
        f.http.post(
            "/v1/publications",
            envelope(&wrong_channel, &f.publisher, None)
                .to_string()
                .into_bytes(),
        ),
        403,
        "",
    );
    // A publisher cannot grant.
    expect_problem(
        f.http.post(
            "/v1/admin/grants",
            envelope(&good, &f.publisher, None).to_string().into_bytes(),
        ),
        422,
        "",
    );
    // A tampered payload no longer matches its signature.
    let mut bad = envelope(&good, &f.publisher, None);
    let other = canonical(&request_json(
        "quay.io/h/s",
        9,
        "sourceos://catalog/images/h",
        "dev",
    ));
    bad["payload"] = serde_json::json!(B64.encode(other));
    expect_problem(
        f.http
            .post("/v1/publications", bad.to_string().into_bytes()),
        403,
        "",
    );

    assert_eq!(
        tree_size(&f.http),
        before,
        "refused requests must not change the log"
    );
    // And the good request still goes through.
    let (status, _, _) = f.http.post(
        "/v1/publications",
        envelope(&good, &f.publisher, None).to_string().into_bytes(),
    );
    assert_eq!(status, 201);
    assert_eq!(tree_size(&f.http), before + 1);
}

fn good_with_field(payload: &[u8], field: &str) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(payload).unwrap();
    value[field] = serde_json::json!("x");
    serde_jcs::to_vec(&value).unwrap()
}

#[test]
fn bad_reads_get_precise_errors() {
    let f = fixture();
    let size = tree_size(&f.http);
    expect_problem(f.http.get("/tile/0/0000"), 404, "not a tlog-tiles path");
    expect_problem(f.http.get("/tile/0/000.p/0"), 404, "");
    expect_problem(f.http.get("/tile/0/000.p/200"), 404, "not part of the tree");
    expect_problem(f.http.get("/tile/entries/x001/000"), 404, "");
    expect_problem(f.http.get("/tile/99/000"), 404, "");
    expect_problem(f.http.get("/v1/entries/abc"), 400, "canonical decimal");
    expect_problem(f.http.get("/v1/entries/007"), 400, "canonical decimal");
    expect_problem(f.http.get("/v1/entries/18446744073709551615"), 404, "");
    expect_problem(f.http.get(&format!("/v1/entries/{size}")), 404, "beyond");
    expect_problem(f.http.get("/v1/receipts/0?tree_size=99999"), 404, "");
    expect_problem(f.http.get("/v1/receipts/1?tree_size=1"), 404, "");
    expect_problem(
        f.http.get("/v1/proofs/inclusion?leaf_hash=zz&tree_size=1"),
        400,
        "not hex",
    );
    expect_problem(
        f.http.get(&format!(
            "/v1/proofs/inclusion?leaf_hash={}&tree_size=1",
            "ab".repeat(31)
        )),
        400,
        "31 bytes",
    );
    expect_problem(
        f.http.get(&format!(
            "/v1/proofs/inclusion?leaf_hash={}&tree_size=1",
            "AB".repeat(32)
        )),
        400,
        "lowercase",
    );
    expect_problem(
        f.http.get(&format!(
            "/v1/proofs/inclusion?leaf_hash={}&tree_size=1",
            "ab".repeat(32)
        )),
        404,
        "no entry",
    );
    expect_problem(
        f.http.get("/v1/proofs/inclusion?tree_size=1"),
        400,
        "leaf_hash",
    );
    expect_problem(
        f.http.get("/v1/proofs/consistency?first=2&second=1"),
        400,
        "0 < first",
    );
    expect_problem(
        f.http.get("/v1/proofs/consistency?first=0&second=1"),
        400,
        "0 < first",
    );
    expect_problem(
        f.http.get("/v1/proofs/consistency?first=1&second=99"),
        404,
        "beyond",
    );
    expect_problem(
        f.http.get("/v1/proofs/consistency?first=1&second=2&x=1"),
        400,
        "",
    );
    expect_problem(f.http.get("/nope"), 404, "no such endpoint");
}
