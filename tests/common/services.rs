//! The real servers some tests need (PostgreSQL 15 and an S3 server with atomic
//! create-only writes), found through the environment `.ci/services.sh` writes.
//!
//! A test asks for a server with [`postgres_url`] or [`s3`]. When the variables are not
//! set it gets `None` and skips, printing why; when `CI` is set a missing server is a
//! failure instead, so CI can never pass by skipping.

/// The S3 settings `.ci/services.sh` exports.
#[derive(Debug, Clone)]
pub struct S3Env {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// A bucket that exists.
    pub bucket: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Region (radosgw accepts any).
    pub region: String,
}

impl S3Env {
    /// The environment `srcos-catalog` reads the bucket's endpoint, region and
    /// credentials from (`cli::backends`), for a child process.
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SRCOS_S3_ENDPOINT", self.endpoint.clone()),
            ("AWS_REGION", self.region.clone()),
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
        ]
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Skips (prints the reason, returns `None`) or, under `CI`, fails.
fn missing<T>(test: &str, what: &str) -> Option<T> {
    let reason = format!(
        "{test}: {what} not set; start the servers with `.ci/services.sh start` and \
         `. /tmp/srcos-ci/env` (README: Real PostgreSQL and S3)"
    );
    if var("CI").is_some() {
        panic!("{reason} (CI is set, so this is a failure, not a skip)");
    }
    eprintln!("SKIPPED {reason}");
    None
}

/// The test database's URL (`SRCOS_TEST_POSTGRES_URL`), or `None` (skip).
pub fn postgres_url(test: &str) -> Option<String> {
    match var("SRCOS_TEST_POSTGRES_URL") {
        Some(url) => Some(url),
        None => missing(test, "SRCOS_TEST_POSTGRES_URL"),
    }
}

/// The test S3 server (`SRCOS_TEST_S3_*`), or `None` (skip).
pub fn s3(test: &str) -> Option<S3Env> {
    let get = |n: &str| var(n);
    match (
        get("SRCOS_TEST_S3_ENDPOINT"),
        get("SRCOS_TEST_S3_BUCKET"),
        get("SRCOS_TEST_S3_ACCESS_KEY_ID"),
        get("SRCOS_TEST_S3_SECRET_ACCESS_KEY"),
    ) {
        (Some(endpoint), Some(bucket), Some(access_key_id), Some(secret_access_key)) => {
            Some(S3Env {
                endpoint,
                bucket,
                access_key_id,
                secret_access_key,
                region: get("SRCOS_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
            })
        }
        _ => missing(
            test,
            "SRCOS_TEST_S3_ENDPOINT/BUCKET/ACCESS_KEY_ID/SECRET_ACCESS_KEY",
        ),
    }
}

/// A prefix no other test run uses, so tests can share one bucket and one database.
pub fn unique_prefix(test: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{test}-{}-{nanos}", std::process::id())
}
