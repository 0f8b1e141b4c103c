//! CORS for the management endpoint, like Jolokia's `<cors>` with strict checking: only an
//! `Origin` listed in `[management] allowed_origins` gets `Access-Control-Allow-*` headers
//! (credentials included, since every request authenticates); preflights (`OPTIONS`) are
//! answered without credentials; every answer says `Vary: Origin`. An unknown origin gets
//! no CORS headers, and its actual requests stay refused by the `Origin` check.

use crate::body::{full, Body};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

/// Methods a browser may use on the endpoint.
const METHODS: &str = "GET, POST, OPTIONS";
/// Request headers allowed when a preflight names none.
const HEADERS: &str = "Authorization, Content-Type";
/// How long a browser may cache a preflight answer (seconds).
pub const MAX_AGE: u32 = 3600;

/// The request's `Origin` when it is one of `allowed` (compared exactly, as configured).
pub fn allowed_origin(headers: &HeaderMap, allowed: &[String]) -> Option<String> {
    let origin = headers.get(http::header::ORIGIN)?.to_str().ok()?;
    allowed
        .iter()
        .any(|o| o == origin)
        .then(|| origin.to_owned())
}

/// Adds `Vary: Origin`, and for an allowed origin the CORS response headers.
pub fn decorate(headers: &mut HeaderMap, origin: Option<&str>) {
    headers.append(http::header::VARY, HeaderValue::from_static("Origin"));
    let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    headers.insert(http::header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.insert(
        http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
}

/// The answer to an `OPTIONS` request: 204 with `Allow`; for an allowed origin also the
/// methods, the requested headers (or Authorization and Content-Type) and a max age.
pub fn preflight(request: &HeaderMap, origin: Option<&str>) -> Response<Body> {
    let mut r = Response::new(full(Vec::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(http::header::ALLOW, HeaderValue::from_static(METHODS));
    decorate(h, origin);
    if origin.is_some() {
        h.insert(
            http::header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(METHODS),
        );
        let asked = request
            .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .filter(|v| !v.is_empty());
        h.insert(
            http::header::ACCESS_CONTROL_ALLOW_HEADERS,
            asked.unwrap_or(HeaderValue::from_static(HEADERS)),
        );
        h.insert(
            http::header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from(MAX_AGE),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_origins_get_cors_headers() {
        let allowed = vec!["http://console.example".to_owned()];
        let mut req = HeaderMap::new();
        req.insert("origin", HeaderValue::from_static("http://console.example"));
        let origin = allowed_origin(&req, &allowed);
        assert_eq!(origin.as_deref(), Some("http://console.example"));
        let r = preflight(&req, origin.as_deref());
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "http://console.example"
        );
        assert_eq!(r.headers()["access-control-allow-headers"], HEADERS);
        req.insert("origin", HeaderValue::from_static("http://evil.example"));
        assert_eq!(allowed_origin(&req, &allowed), None);
        let r = preflight(&req, None);
        assert!(r.headers().get("access-control-allow-origin").is_none());
        assert_eq!(r.headers()["vary"], "Origin");
    }
}
