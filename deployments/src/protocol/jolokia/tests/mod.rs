//! Tests of the Jolokia protocol, one file per concern, and the helpers they share.

use super::*;

fn on(s: &str) -> ObjectName {
    ObjectName::parse(s).unwrap()
}

fn post(body: &str) -> Result<PostBody, ProtocolError> {
    parse_post_body(body.as_bytes())
}

fn single(body: &str) -> Request {
    let parsed = post(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    assert!(!parsed.is_bulk);
    assert_eq!(parsed.requests.len(), 1);
    parsed.requests.into_iter().next().unwrap()
}

fn post_err(body: &str) -> ProtocolError {
    post(body).expect_err(body)
}

mod get;
mod list;
mod post;
mod response;
