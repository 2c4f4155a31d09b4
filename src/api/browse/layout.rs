//! The frame every browser page shares (head, navigation, footer), the HTML response with
//! its security headers, and the error page.
//!
//! Every page is built with `maud`, which escapes every interpolated string: subject
//! names, refs and comments come from publishers and reviewers, so nothing they wrote can
//! become markup. The pages carry no script and no inline style (the CSS is
//! [`STYLE_PATH`], served from the binary), and the Content-Security-Policy forbids both
//! anyway.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::http::routes;
use crate::http::Problem;

/// The Content-Security-Policy of every browser response: nothing but same-origin
/// stylesheets and images, no script at all, no framing, forms only to this origin.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; \
                       form-action 'self'; frame-ancestors 'none'";

/// The stylesheet, compiled into the binary.
pub const STYLE: &str = include_str!("style.css");

/// Where the stylesheet is served.
pub const STYLE_PATH: &str = routes::BROWSE_STYLE;

/// The security headers every browser response carries.
fn secure(mut response: Response, content_type: &'static str) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    response
}

/// A page: `status`, the markup as `text/html`, and the security headers.
pub fn html_response(status: StatusCode, page: Markup) -> Response {
    secure(
        (status, page.into_string()).into_response(),
        "text/html; charset=utf-8",
    )
}

/// The stylesheet, with the same headers (a day of caching: it changes only with the
/// binary).
pub fn style_response() -> Response {
    let mut response = (StatusCode::OK, STYLE).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    secure(response, "text/css; charset=utf-8")
}

/// The whole document: `title` in the head and the heading, `body` in `<main>`.
pub fn page(title: &str, origin: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · srcos-catalog" }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body {
                header.site {
                    a.brand href=(routes::BROWSE_SEARCH) { "srcos-catalog" }
                    span.origin { (origin) }
                    nav {
                        a href=(routes::BROWSE_SEARCH) { "Search" }
                        a href=(routes::BROWSE_LOG) { "Log" }
                        a href=(routes::POLICY) { "Policy (JSON)" }
                        a href=(routes::OPENAPI) { "API" }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
                footer {
                    "Read-only view of the catalog authority's transparency log. Every decision \
                     links to its receipt; verify receipts offline with "
                    code { "srcos-catalog verify" } "."
                }
            }
        }
    }
}

/// The error page of `problem`, with its status.
pub fn error_page(origin: &str, problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = html! {
        p.error { (problem.detail) }
        @if !problem.errors.is_empty() {
            ul { @for e in &problem.errors { li { (e) } } }
        }
        p { a href=(routes::BROWSE_SEARCH) { "Back to the search" } }
    };
    let mut response = html_response(status, page(&problem.title, origin, body));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// `sha256:0123…cdef`: a digest shortened for tables (the full value is in the title
/// attribute and on the entry page).
pub fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    match (hex.get(..12), hex.len() > 16) {
        (Some(head), true) => format!("sha256:{head}…"),
        _ => digest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolated_text_is_escaped() {
        let hostile = "<script>document.title='x'</script>\"'&";
        let out = page(hostile, hostile, html! { p { (hostile) } }).into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;document.title="));
        assert!(out.contains("&quot;"));
        assert!(out.contains("&amp;"));
    }

    #[test]
    fn digests_are_shortened_only_when_long() {
        let cases = [
            (
                format!("sha256:{}", "ab".repeat(32)),
                "sha256:abababababab…",
            ),
            ("sha256:abc".to_string(), "sha256:abc"),
            ("x".to_string(), "x"),
        ];
        for (digest, want) in cases {
            assert_eq!(short_digest(&digest), want);
        }
    }
}
