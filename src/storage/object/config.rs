//! Where a bucket is and how to reach it: `s3://BUCKET/PREFIX` from the command line,
//! everything else (endpoint, region, path style, credentials) from the environment or
//! the config file, never from the command line and never logged.
//!
//! May import: the storage error only.

use std::fmt;

use super::super::StorageError;

/// `s3://BUCKET[/PREFIX]`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// The bucket.
    pub bucket: String,
    /// The key prefix every object is written under (no leading or trailing `/`; may be
    /// empty).
    pub prefix: String,
}

impl StoreUrl {
    /// Parses `s3://BUCKET[/PREFIX]`. The bucket follows S3's naming rules (3–63 of
    /// `a-z0-9.-`); the prefix is `/`-separated segments of printable ASCII without `..`.
    pub fn parse(url: &str) -> Result<StoreUrl, StorageError> {
        let bad = |why: &str| StorageError::Refused(format!("store URL {url:?}: {why}"));
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("must start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_end_matches('/');
        if !(3..=63).contains(&bucket.len())
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return Err(bad(
                "the bucket name must be 3-63 characters of a-z 0-9 . -",
            ));
        }
        if !prefix.is_empty()
            && prefix.split('/').any(|seg| {
                seg.is_empty()
                    || seg == "."
                    || seg == ".."
                    || !seg.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
            })
        {
            return Err(bad(
                "the prefix must be non-empty /-separated printable segments",
            ));
        }
        Ok(StoreUrl {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// How to reach the bucket. `Debug` never shows the secret.
#[derive(Clone, Default)]
pub struct ObjectStoreConfig {
    /// `https://…` or `http://…` of an S3-compatible server; `None`: AWS.
    pub endpoint: Option<String>,
    /// The region (S3-compatible servers usually accept any).
    pub region: Option<String>,
    /// Address the bucket as `ENDPOINT/BUCKET/…` (path style, what most self-hosted
    /// servers need) rather than `BUCKET.ENDPOINT/…`.
    pub path_style: bool,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key.
    pub secret_access_key: Option<String>,
    /// Accept a store that silently overwrites create-only writes (start-up probe): the
    /// log then relies on the coordinator's journal alone for tiles never being rewritten
    /// with other bytes.
    pub accept_overwriting_store: bool,
}

impl fmt::Debug for ObjectStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("accept_overwriting_store", &self.accept_overwriting_store)
            .finish()
    }
}

impl ObjectStoreConfig {
    /// From the environment: `SRCOS_S3_ENDPOINT` (else `AWS_ENDPOINT_URL`),
    /// `AWS_REGION` (else `AWS_DEFAULT_REGION`), `SRCOS_S3_PATH_STYLE` (`true`/`false`;
    /// default `true` when an endpoint is set), `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub fn from_env() -> ObjectStoreConfig {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let endpoint = var("SRCOS_S3_ENDPOINT").or_else(|| var("AWS_ENDPOINT_URL"));
        let path_style = match var("SRCOS_S3_PATH_STYLE").as_deref() {
            Some("false") | Some("0") => false,
            Some(_) => true,
            None => endpoint.is_some(),
        };
        ObjectStoreConfig {
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            endpoint,
            path_style,
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            accept_overwriting_store: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        let ok = |u: &str, b: &str, p: &str| {
            let parsed = StoreUrl::parse(u).unwrap();
            assert_eq!(
                (parsed.bucket.as_str(), parsed.prefix.as_str()),
                (b, p),
                "{u}"
            );
        };
        ok("s3://logs", "logs", "");
        ok("s3://logs/", "logs", "");
        ok("s3://my.logs-1/a/b", "my.logs-1", "a/b");
        ok("s3://logs/a/b/", "logs", "a/b");
        for bad in [
            "logs",
            "http://logs/a",
            "s3://",
            "s3://ab",
            "s3://Logs",
            "s3://logs//a",
            "s3://logs/a/../b",
            "s3://logs/a/./b",
            "s3://logs/a b",
            "s3://a_b",
        ] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config = ObjectStoreConfig {
            secret_access_key: Some("very-secret".into()),
            ..ObjectStoreConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret") && shown.contains("<redacted>"));
    }
}
